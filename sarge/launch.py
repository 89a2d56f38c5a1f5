"""The launcher's old name, kept for homes made before 0.2, whose files name it
(``python -I -m sarge.launch``): see :mod:`sarge.supervisord.launch`."""

import sys

from .commands import module_argv  # noqa: F401 (its old place)
from .supervisord.launch import main

if __name__ == "__main__":
    sys.exit(main())
