"""Bad inputs: the error the commands raise and the checks on paths.

A bad input ends the program with one line on stderr, ``sktransfer: error:
...``, and exit status 2 (see ``main``). This module is the bottom of the
command-line package: it imports nothing from sktransfer.
"""

from __future__ import annotations

import os

__all__ = ["CommandError", "check_input_file", "check_output_path", "one_line"]


class CommandError(ValueError):
    """A bad input, reported as one line on stderr with exit status 2."""


def one_line(exc):
    """The first meaningful line of an exception's message.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    message : str
        At most 600 characters, never a traceback.

    Examples
    --------
    >>> one_line(ValueError("bad shape\\n  (wrapped)\\nTraceback (most recent..."))
    'bad shape (wrapped)'
    >>> one_line(FileNotFoundError(2, "No such file or directory", "x.csv"))
    "No such file or directory: 'x.csv'"
    """
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename!r}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # Keras and scikit-learn messages wrap; join them, but never a traceback
    kept = []
    for line in lines:
        if line.startswith("Traceback"):
            break
        kept.append(line)
    message = " ".join(kept) or lines[0]
    return message if len(message) <= 600 else message[:597] + "..."


def check_input_file(path, what):
    """Raise :class:`CommandError` unless ``path`` is an existing file."""
    if not os.path.exists(path):
        raise CommandError(f"{what} {path!r} does not exist.")
    if os.path.isdir(path):
        raise CommandError(f"{what} {path!r} is a directory, not a file.")


def check_output_path(path, suffix=None, what="output file"):
    """Raise :class:`CommandError` unless ``path`` can be written."""
    if suffix is not None and not path.endswith(suffix):
        raise CommandError(f"{what} {path!r} must end in {suffix!r}.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandError(
            f"cannot write {what} {path!r}: directory {parent!r} does not exist."
        )
    if os.path.isdir(path):
        raise CommandError(f"cannot write {what} {path!r}: it is a directory.")
