"""``python -m trio_nodehttp``: the command line of :mod:`trio_nodehttp.cli`."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
