"""What the commands print: timed log lines, tables and a progress bar (rich).

In a terminal the tables are drawn in bold and the progress bar redraws in
place, with the time remaining. When stdout is not a terminal (a pipe, a
file, CI) rich writes plain text: no colour or cursor codes, the tables as
aligned columns, and the progress bar once, when it is done. Log lines are
never wrapped, so a long path or note stays on one line for ``grep``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = ["Report"]


def _console(stderr=False):
    # no markup, emoji codes or highlighting: paths and column names are
    # printed as they are ("[1]" or ":x:" in a file name stays as written)
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


class Report:
    """A command's output: stdout for progress and results, stderr for warnings.

    The consoles follow ``sys.stdout`` and ``sys.stderr`` as they are when
    something is printed, so redirecting them (pytest's ``capsys``) works.
    """

    def __init__(self):
        self.console = _console()
        self.errors = _console(stderr=True)
        self.start = time.perf_counter()

    def elapsed(self):
        """Seconds since the command started."""
        return time.perf_counter() - self.start

    def log(self, message):
        """One line, prefixed with the seconds since the start: ``[  1.2s] ...``."""
        self.console.print(f"[{self.elapsed():6.1f}s] {message}", soft_wrap=True)

    def say(self, message=""):
        """One plain line (or an empty one)."""
        self.console.print(message, soft_wrap=True)

    def warn(self, message):
        """``sktransfer: warning: ...`` on stderr."""
        self.errors.print(f"sktransfer: warning: {message}", soft_wrap=True)

    def table(self, title, header, rows, best=None):
        """Print ``title``, then a table: first column left-aligned, rest right.

        Parameters
        ----------
        title : str
        header : list of str
        rows : list of list of str
        best : int, default=None
            Index of the row to draw in bold (its "best" cell holds the star).
        """
        self.say(title)
        table = Table(
            box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold"
        )
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for i, row in enumerate(rows):
            table.add_row(*row, style="bold" if i == best else None)
        self.console.print(Padding(table, (0, 0, 0, 2), expand=False))

    @contextmanager
    def fits(self, total, description):
        """A progress bar over ``total`` fits; yields a ``step`` callable.

        ``step(message=None)`` counts one fit done and, with a message, logs
        it above the bar.
        """
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("fits"),
            TimeElapsedColumn(),
            TextColumn("elapsed,"),
            TimeRemainingColumn(),
            TextColumn("left"),
            console=self.console,
        )
        with progress:
            task = progress.add_task(description, total=total)

            def step(message=None):
                if message is not None:
                    self.log(message)
                progress.advance(task)

            yield step
