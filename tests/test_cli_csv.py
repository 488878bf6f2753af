"""The command line's CSV reader against files written by pandas and spreadsheets.

The command line reads CSV with the standard library (no pandas needed), so
these tests write files the way users' tools do and check that the reader
sees the same table pandas does: ``DataFrame.to_csv`` with and without its
index, a re-saved file with an ``Unnamed: 0`` column, and a spreadsheet-like
file (every field quoted, CRLF line endings, a UTF-8 byte-order mark). No
TensorFlow here: only the reader.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

from sktransfer._cli._csv import read_csv, training_data
from sktransfer._cli._errors import CommandError

pd = pytest.importorskip("pandas")

FEATURES = ["sepal length", "sepal width", "petal length", "petal width"]


@pytest.fixture
def frame():
    """Iris with string labels, a shuffled integer index (as after a split)."""
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))[:60]
    df = pd.DataFrame(X[order], columns=FEATURES, index=order)
    df["species"] = np.array(["setosa", "versicolor", "virginica"])[y[order]]
    return df


def _assert_same_table(table, df):
    assert table.columns == list(df.columns)
    X, y, names = training_data(table, "species", [])
    assert names == FEATURES
    np.testing.assert_array_equal(X, df[FEATURES].to_numpy(np.float32))
    assert list(y) == list(df["species"])


def test_pandas_without_index(frame, tmp_path):
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    table = read_csv(str(path))
    assert table.warnings == []
    _assert_same_table(table, frame)


def test_pandas_index_column_is_dropped_with_a_warning(frame, tmp_path):
    path = tmp_path / "iris.csv"
    frame.to_csv(path)  # first header cell empty, then the index values
    assert path.read_text().startswith(",sepal length,")
    table = read_csv(str(path))
    _assert_same_table(table, frame)  # the index is no feature
    assert len(table.warnings) == 1
    assert "dropped the first column" in table.warnings[0]
    assert "index=False" in table.warnings[0]


def test_pandas_round_trip_drops_the_unnamed_columns(frame, tmp_path):
    """Read back without index_col and saved again: ``,Unnamed: 0,...``."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    frame.to_csv(first)
    pd.read_csv(first).to_csv(second)
    assert second.read_text().startswith(",Unnamed: 0,sepal length,")
    table = read_csv(str(second))
    _assert_same_table(table, frame)
    assert "dropped the first 2 columns" in table.warnings[0]
    assert "'Unnamed: 0'" in table.warnings[0]


def test_named_index_is_a_column(frame, tmp_path):
    """An index with a name is an ordinary column: use --ignore to leave it."""
    path = tmp_path / "iris.csv"
    frame.rename_axis("id").to_csv(path)
    table = read_csv(str(path))
    assert table.warnings == []
    assert table.columns == ["id", *frame.columns]
    X, _, names = training_data(table, "species", ["id"])
    assert names == FEATURES
    np.testing.assert_array_equal(X, frame[FEATURES].to_numpy(np.float32))


def test_spreadsheet_like_file(frame, tmp_path):
    """Every field quoted, CRLF line endings, a UTF-8 BOM, a comma in a name."""
    df = frame.rename(columns={"petal width": "petal width, cm"})
    df["species"] = df["species"].str.replace("setosa", 'setosa, "wild"')
    path = tmp_path / "sheet.csv"
    df.to_csv(
        path, index=False, quoting=1, lineterminator="\r\n", encoding="utf-8-sig"
    )  # quoting=1 is csv.QUOTE_ALL
    raw = path.read_bytes()
    assert raw.startswith(b'\xef\xbb\xbf"sepal length"') and b"\r\n" in raw
    assert raw.count(b"\r\n") == len(df) + 1
    table = read_csv(str(path))
    assert table.columns == list(df.columns) == list(pd.read_csv(path).columns)
    X, y, names = training_data(table, "species", [])
    np.testing.assert_array_equal(X, df[names].to_numpy(np.float32))
    assert list(y) == list(pd.read_csv(path)["species"])
    assert 'setosa, "wild"' in set(y)
    assert list(table.lines[:2]) == [2, 3]  # CRLF counted as one line end


def test_missing_values_written_by_pandas_are_reported(frame, tmp_path):
    frame.iloc[4, 1] = np.nan  # pandas writes an empty field
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    table = read_csv(str(path))
    with pytest.raises(CommandError, match="'sepal width'.*line 6 holds an empty"):
        training_data(table, "species", [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,,y\n1,2,x\n3,4,z\n", "column 2 of .* has no name"),
        ("a,b,\n1,2,\n3,4,\n", "column 3 of .* has no name"),
        ("a;b;y\n1;2;x\n3;4;z\n", "separated by ';'"),
        ("a\tb\ty\n1\t2\tx\n", "separated by tabs"),
        (",\n1,2\n", "empty header line"),
    ],
    ids=["unnamed middle column", "trailing comma", "semicolons", "tabs", "no names"],
)
def test_header_problems_are_clear_errors(text, message, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CommandError, match=message):
        read_csv(str(path))
