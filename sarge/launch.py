"""The launcher's old name, kept for homes made before 0.2, whose files name it
(``python -I -m sarge.launch``): see :mod:`sarge.supervisord.launch`."""

import sys

from .supervisord.launch import main, module_argv  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
