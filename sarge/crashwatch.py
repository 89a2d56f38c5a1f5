"""The crash watch's old name, kept for homes made before 0.2, whose files name it
(``python -I -m sarge.crashwatch``): see :mod:`sarge.supervisord.crashwatch`."""

import sys

from .supervisord.crashwatch import main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
