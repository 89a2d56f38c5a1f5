"""``python -m sarge``: the command line."""

from sarge.cli import main

if __name__ == "__main__":
    main()
