"""Reading the command line's CSV tables with the standard library.

The ``csv`` module reads what pandas (``DataFrame.to_csv``) and spreadsheets
write: quoted fields, CRLF line endings, a UTF-8 byte-order mark. pandas is
not needed, so the command line works with the base install and starts fast.

A first column with no name in the header line is the index pandas writes
unless ``index=False`` (read back and written again, it is named
``Unnamed: 0``). It is no feature: it is dropped, and ``Table.warnings``
says so. Any other column without a name is an error.
"""

from __future__ import annotations

import csv
import re

import numpy as np

from ._errors import CommandError, check_input_file

__all__ = ["Table", "read_csv", "training_data"]

#: a header cell pandas writes for an index without a name, after a round trip
_PANDAS_UNNAMED = re.compile(r"Unnamed: \d+")


def _finite(cell):
    try:
        return bool(np.isfinite(float(cell)))
    except ValueError:
        return False


class Table:
    """The text cells of a CSV file, column by column.

    Attributes
    ----------
    path : str
    columns : list of str
        Column names, from the header line (a dropped index column excluded).
    cells : dict of str to ndarray of str
    lines : ndarray of int
        File line number of each data row (for error messages).
    warnings : list of str
        What was done that the user should know (an index column dropped).
    """

    def __init__(self, path, columns, rows, lines, warnings=()):
        self.path = path
        self.columns = columns
        data = np.array(rows, dtype=str).reshape(len(rows), len(columns))
        self.cells = {name: data[:, i] for i, name in enumerate(columns)}
        self.lines = np.asarray(lines)
        self.warnings = list(warnings)

    def __len__(self):
        return len(self.lines)

    def require(self, names, why):
        """Raise :class:`CommandError` naming the first missing column."""
        missing = [name for name in names if name not in self.cells]
        if missing:
            shown = ", ".join(repr(c) for c in self.columns[:8])
            more = (
                f" (and {len(self.columns) - 8} more)" if len(self.columns) > 8 else ""
            )
            others = (
                f" (nor {len(missing) - 1} other column(s) it needs)"
                if len(missing) > 1
                else ""
            )
            raise CommandError(
                f"{self.path!r} has no column {missing[0]!r} ({why}){others}; its "
                f"columns are {shown}{more}."
            )

    def numeric(self, names):
        """The named columns as a float32 matrix; clear errors otherwise."""
        self.require(names, "needed as a feature")
        columns = []
        for name in names:
            text = self.cells[name]
            try:
                values = text.astype(np.float64)
            except ValueError:
                values = None
            if values is None or not np.isfinite(values).all():
                i = next(i for i, cell in enumerate(text) if not _finite(cell))
                cell = str(text[i])
                problem = "an empty cell" if not cell.strip() else f"{cell!r}"
                raise CommandError(
                    f"feature column {name!r} of {self.path!r} must be numeric, but "
                    f"line {self.lines[i]} holds {problem}. Encode or drop "
                    "non-numeric columns (--ignore COLUMN), and fill missing values."
                )
            columns.append(values)
        return np.column_stack(columns).astype(np.float32)

    def labels(self, name):
        """A target column: integers when every label is one, else strings."""
        self.require([name], "given as --target")
        text = np.char.strip(self.cells[name])
        empty = np.flatnonzero(text == "")
        if empty.size:
            raise CommandError(
                f"target column {name!r} of {self.path!r} has an empty cell on line "
                f"{self.lines[empty[0]]}."
            )
        try:
            as_int = np.array([int(v) for v in text])
        except ValueError:
            return text.astype(object)
        return as_int


def _index_columns(header):
    """How many leading columns are a pandas index (no name, or Unnamed: k)."""
    n = 0
    while n < len(header) - 1 and (
        not header[n] or _PANDAS_UNNAMED.fullmatch(header[n])
    ):
        n += 1
    return n


def _check_header(path, header):
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        sep = "';'" if ";" in header[0] else "tabs"
        raise CommandError(
            f"data file {path!r} has one column; its fields seem separated by "
            f"{sep}. The command line reads comma-separated files: save the "
            "table as CSV with commas."
        )
    if not any(header):
        raise CommandError(f"data file {path!r} has an empty header line.")
    unnamed = [i for i, name in enumerate(header) if not name]
    if unnamed:
        raise CommandError(
            f"column {unnamed[0] + 1} of {path!r} has no name in the header line "
            "(only a first column, a pandas index, may go without one); name it, "
            "or remove the column."
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise CommandError(
            f"data file {path!r} names column {duplicated[0]!r} more than once."
        )


def read_csv(path):
    """Read a comma-separated file with a header line into a :class:`Table`.

    Parameters
    ----------
    path : str
        The file; its first line names the columns.

    Returns
    -------
    table : Table
        Leading index columns (no header name) dropped, with a warning.
    """
    check_input_file(path, "data file")
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CommandError(f"data file {path!r} is empty.")
            header = [name.strip() for name in header]
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise CommandError(
                        f"data file {path!r} is not a CSV table like its header: "
                        f"line {reader.line_num} has {len(row)} fields, the header "
                        f"has {len(header)}."
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise CommandError(
            f"data file {path!r} is not a text CSV file (it is not UTF-8 text)."
        ) from None
    except csv.Error as exc:
        raise CommandError(
            f"data file {path!r} is not a valid CSV file: {exc}."
        ) from None
    n_index = _index_columns(header)
    warnings = []
    if n_index:
        shown = ", ".join(repr(name) for name in header[:n_index])
        what = "column" if n_index == 1 else f"{n_index} columns"
        warnings.append(
            f"dropped the first {what} of {path!r} ({shown} in the header): a "
            "first column without a name is the index pandas writes unless "
            "DataFrame.to_csv(..., index=False). Name it in the header to use "
            "it as a feature."
        )
        header = header[n_index:]
        rows = [row[n_index:] for row in rows]
    _check_header(path, header)
    if not rows:
        raise CommandError(f"data file {path!r} has a header but no data rows.")
    return Table(path, header, rows, lines, warnings)


def training_data(table, target, ignore):
    """Feature matrix, labels and feature names of a training CSV.

    Parameters
    ----------
    table : Table
    target : str
        The label column.
    ignore : list of str
        Columns that are neither features nor the target.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features), float32
    y : ndarray of int or object
    names : list of str
        The feature columns, in file order.
    """
    table.labels(target)  # the target exists and is complete, checked first
    if ignore:
        table.require(ignore, "given to --ignore")
    names = [c for c in table.columns if c != target and c not in set(ignore)]
    if not names:
        raise CommandError(
            f"{table.path!r} has no feature columns besides the target {target!r}."
        )
    y = table.labels(target)
    classes = np.unique(y)
    if classes.size < 2:
        raise CommandError(
            f"target column {target!r} of {table.path!r} holds only one class "
            f"({str(classes[0])!r}); a classifier needs at least two."
        )
    return table.numeric(names), y, names
