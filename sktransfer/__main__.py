"""``python -m sktransfer``: the demo and the CSV command line (see ``_cli``)."""

from __future__ import annotations

import sys


def main(argv=None):
    """Entry point of ``python -m sktransfer`` and the ``sktransfer`` script.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        The exit status: 0 on success, 2 on a bad input or usage error.
    """
    from ._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
