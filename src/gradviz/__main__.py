"""``python -m gradviz``: the same as the ``gradviz`` command."""

import sys

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
