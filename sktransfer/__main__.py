"""Command line: ``python -m sktransfer demo``."""

from __future__ import annotations

import sys


def main(argv=None):
    """Entry point of ``python -m sktransfer`` and the ``sktransfer`` script."""
    from ._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
