"""The ``sktransfer`` command line: a demo, and transfer learning on CSV files.

Commands::

    sktransfer demo [--out DIR] [--seeds N] [--quick]
    sktransfer pretrain DATA.csv --target COLUMN --out source.keras
    sktransfer transfer source.keras DATA.csv --target COLUMN --out model.keras
    sktransfer predict model.keras DATA.csv [--out predictions.csv] [--proba]

``python -m sktransfer ...`` is the same program. CSV files are read with the
standard library (pandas is not needed): the first line names the columns,
fields are separated by commas, and every feature column must be numeric.
Models are written with ``estimator.save`` and read with ``sktransfer.load``.

A bad input (a missing or unreadable file, a file that is not a model, a
missing column, a non-numeric feature) ends the program with one line on
stderr, ``sktransfer: error: ...``, and exit status 2. Set the environment
variable ``SKTRANSFER_DEBUG=1`` to see the traceback instead.

The modules, each importing only those listed before it:

``_errors``
    ``CommandError`` and the checks on paths.
``_parser``
    The argparse parser; nothing heavy, so ``--help`` is fast.
``_csv``
    Reading CSV tables.
``_report``
    Log lines, tables and the progress bar (rich).
``_search``
    The freeze-depth grid search, with progress.
``_demo``
    ``sktransfer demo``.
``_commands``
    The commands; imported by :func:`main` once the arguments are parsed.
"""

from __future__ import annotations

import os
import sys
import warnings

from ._errors import one_line
from ._parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv=None):
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on a bad input (one line on stderr); argparse exits
        with status 2 on a usage error.
    """
    args = build_parser().parse_args(argv)
    # only now TensorFlow: --help and usage errors never pay for it
    from sklearn.exceptions import NotFittedError

    from ._commands import COMMANDS

    try:
        with warnings.catch_warnings():
            # Keras warns when a functional sub-model gets a bare tensor where
            # it named its input: harmless, and noise on a command line
            warnings.filterwarnings(
                "ignore", message="The structure of `inputs` doesn't match"
            )
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("sktransfer: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, NotFittedError) as exc:
        if os.environ.get("SKTRANSFER_DEBUG"):
            raise
        print(f"sktransfer: error: {one_line(exc)}", file=sys.stderr)
        return 2
