"""The command line: ``python -m sktransfer demo|pretrain|transfer|predict``.

Most cases call ``sktransfer._cli.main`` in-process (TensorFlow is imported
once); a few run ``python -m sktransfer`` in a subprocess to check the real
entry point, the exit status and that no traceback reaches the user. CSV
files are written from ``load_digits``; epochs are tiny.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sktransfer import PretrainedClassifier, TransferClassifier, load
from sktransfer._cli import main

REPO = Path(__file__).resolve().parents[1]
FEATURES = [f"px{i}" for i in range(64)]


def _write_csv(path, X, y, target, names=FEATURES):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, target])
        for row, label in zip(X, y):
            writer.writerow([*(f"{v:.4g}" for v in row), label])
    return str(path)


def run_cli(args, capsys):
    """``main(args)`` in-process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help, usage errors
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def run_module(args, tmp_path, timeout=240, env=None):
    """``python -m sktransfer ARGS`` in a subprocess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "sktransfer", *map(str, args)],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def plain_output(monkeypatch):
    """Output as in a pipe or CI, whatever terminal runs the tests."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


#: a row of a freeze-depth table: "  1 (1 of 2)   0.500 ± 0.100   1.2s   *"
TABLE_ROW = re.compile(
    r"^\s*(?P<spec>-?\d+|all) \((?P<frozen>\d+) of (?P<layers>\d+)\)\s+"
    r"(?P<mean>\d\.\d{3}) ± (?P<std>\d\.\d{3})\s+(?:[\d.]+s\s+)?(?P<star>\*?)\s*$"
)


def table_rows(out):
    """The freeze-depth table's rows in ``out``: (spec, mean CV accuracy, star)."""
    rows = []
    for line in out.splitlines():
        match = TABLE_ROW.match(line)
        if match:
            spec = match["spec"] if match["spec"] == "all" else int(match["spec"])
            rows.append((spec, float(match["mean"]), match["star"] == "*"))
    return rows


def read_predictions(path_or_text):
    if os.path.exists(str(path_or_text)):
        with open(path_or_text, newline="") as handle:
            return list(csv.reader(handle))
    return list(csv.reader(str(path_or_text).splitlines()))


def assert_one_line_error(status, err):
    assert status == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("sktransfer: error: "), err
    # the message is one line with something to say
    assert len(errors[0]) > len("sktransfer: error: ") + 10


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Source / target / new CSV files of digits, and two model files."""
    folder = tmp_path_factory.mktemp("cli")
    X, digit = load_digits(return_X_y=True)
    X = X / 16.0
    parity = np.where(digit % 2 == 0, "even", "odd")
    paths = {
        "folder": folder,
        "source_csv": _write_csv(folder / "source.csv", X[:400], digit[:400], "digit"),
        "target_csv": _write_csv(
            folder / "target.csv", X[1000:1030], parity[1000:1030], "parity"
        ),
        # rows to predict, with the target column still in it
        "new_csv": _write_csv(
            folder / "new.csv", X[1100:1125], parity[1100:1125], "parity"
        ),
        # three integer classes (digit % 3), for a multiclass transfer
        "target3_csv": _write_csv(
            folder / "target3.csv", X[1000:1045], digit[1000:1045] % 3, "rest"
        ),
        "source": str(folder / "source.keras"),
        "model": str(folder / "model.keras"),
        "model3": str(folder / "model3.keras"),
    }
    status = main(
        [
            "pretrain",
            paths["source_csv"],
            "--target",
            "digit",
            "--out",
            paths["source"],
            "--epochs",
            "3",
            "--hidden",
            "16",
            "8",
        ]
    )
    assert status == 0
    status = main(
        [
            "transfer",
            paths["source"],
            paths["target_csv"],
            "--target",
            "parity",
            "--freeze",
            "0",
            "all",
            "--cv",
            "2",
            "--epochs",
            "2",
            "--out",
            paths["model"],
        ]
    )
    assert status == 0
    status = main(
        ["transfer", paths["source"], paths["target3_csv"], "--target", "rest",
         "--freeze", "all", "--cv", "2", "--epochs", "2", "--out", paths["model3"]]
    )  # fmt: skip
    assert status == 0
    return paths


# ------------------------------------------------------------------ commands
def test_pretrain_saves_a_fitted_classifier(files):
    source = load(files["source"])
    assert isinstance(source, PretrainedClassifier)
    assert source.hidden_layer_sizes == (16, 8)
    assert list(source.feature_names_in_) == FEATURES
    assert list(source.classes_) == list(range(10))


def test_pretrain_prints_progress(files, capsys, tmp_path):
    out_path = tmp_path / "s.keras"
    status, out, err = run_cli(
        [
            "pretrain",
            files["target_csv"],
            "--target",
            "parity",
            "--out",
            out_path,
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--ignore",
            "px0",
        ],
        capsys,
    )
    assert status == 0, err
    assert "30 rows, 63 features, 2 classes" in out
    assert out_path.exists()
    assert "px0" not in load(out_path).feature_names_in_


def test_transfer_saves_the_starred_row_of_its_table(files, capsys, tmp_path):
    out_path = tmp_path / "best.keras"
    status, out, err = run_cli(
        ["transfer", files["source"], files["target_csv"], "--target", "parity",
         "--freeze", "1", "0", "all", "--cv", "2", "--epochs", "20",
         "--out", out_path],
        capsys,
    )  # fmt: skip
    # (20 epochs: enough for the depths to score apart here, the best not
    # first; with a tie every check below still holds)
    assert status == 0, err
    assert "CV accuracy" in out
    rows = table_rows(out)
    assert [spec for spec, _, _ in rows] == [1, 0, "all"]  # the order asked for
    starred = [(spec, mean) for spec, mean, star in rows if star]
    assert len(starred) == 1, out
    best_spec, best_mean = starred[0]
    # the star marks the highest mean CV accuracy (the first one on a tie) ...
    means = [mean for _, mean, _ in rows]
    assert best_mean == max(means)
    assert best_spec == rows[means.index(max(means))][0]
    # ... and the saved model is that row's, refitted on all rows
    model = load(out_path)
    assert isinstance(model, TransferClassifier)
    assert model.freeze == best_spec
    assert f"saved the best TransferClassifier (freeze={best_spec!r}" in out
    assert set(model.classes_) == {"even", "odd"}
    assert list(model.feature_names_in_) == FEATURES


def test_transfer_shows_a_progress_bar_over_the_fits(files, capsys, tmp_path):
    """In a pipe (capsys) the bar is printed once, done, with no escape codes."""
    status, out, err = run_cli(
        ["transfer", files["source"], files["target_csv"], "--target", "parity",
         "--freeze", "0", "all", "--cv", "2", "--epochs", "1",
         "--out", tmp_path / "m.keras"],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert "(4 fits, then one refit)" in out
    bars = [line for line in out.splitlines() if line.startswith("grid search ")]
    assert len(bars) == 1, out
    assert re.search(r"5/5 fits \d+:\d\d:\d\d elapsed, 0:00:00 left$", bars[0])
    assert "\x1b" not in out  # no colour or cursor codes in a pipe
    # each candidate's CV accuracy is logged as it completes, before the table
    logged = re.findall(r"\] +freeze=(\S+) +CV accuracy (\d\.\d{3})", out)
    assert [spec for spec, _ in logged] == ["0", "all"]
    assert [float(m) for _, m in logged] == [m for _, m, _ in table_rows(out)]


def test_transfer_progress_bar_in_a_terminal(files, capsys, tmp_path, monkeypatch):
    """In a terminal rich redraws the bar in place, with the time left."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    status, out, err = run_cli(
        ["transfer", files["source"], files["target_csv"], "--target", "parity",
         "--freeze", "all", "--cv", "2", "--epochs", "1",
         "--out", tmp_path / "m.keras"],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert "\x1b[" in out  # drawn with cursor control
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "3/3" in plain and "fits" in plain and "left" in plain
    assert "Freeze depth vs 2-fold CV accuracy" in plain


def test_transfer_reorders_columns_like_the_source(files, capsys, tmp_path):
    X, digit = load_digits(return_X_y=True)
    parity = np.where(digit % 2 == 0, "even", "odd")
    shuffled = FEATURES[::-1]
    order = [FEATURES.index(name) for name in shuffled]
    data = _write_csv(
        tmp_path / "reversed.csv", X[1000:1020][:, order] / 16.0, parity[1000:1020],
        "parity", names=shuffled,
    )  # fmt: skip
    out_path = tmp_path / "m.keras"
    status, out, err = run_cli(
        ["transfer", files["source"], data, "--target", "parity", "--freeze", "all",
         "--cv", "2", "--epochs", "1", "--out", out_path],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    assert "columns put in the order the source was trained on" in out
    assert list(load(out_path).feature_names_in_) == FEATURES


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_predict_writes_labels_and_probabilities(files, capsys, tmp_path):
    out_path = tmp_path / "pred.csv"
    status, out, err = run_cli(
        ["predict", files["model"], files["new_csv"], "--out", out_path, "--proba"],
        capsys,
    )
    assert status == 0, err
    assert "wrote 25 predictions" in out
    with open(out_path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["prediction", "proba_even", "proba_odd"]
    assert len(rows) == 1 + 25
    labels = [row[0] for row in rows[1:]]
    proba = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    assert set(labels) <= {"even", "odd"}
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    # the labels agree with the probabilities and with the Python API
    assert labels == [("even", "odd")[i] for i in proba.argmax(axis=1)]
    X = load_digits().data[1100:1125] / 16.0
    assert labels == list(load(files["model"]).predict(X))


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize(
    "which",
    ["model", "model3", "source"],
    ids=["binary strings", "3 integer classes", "10 integer classes (pretrained)"],
)
def test_predict_proba_equals_the_python_api(which, files, capsys, tmp_path):
    out_path = tmp_path / "pred.csv"
    status, _, err = run_cli(
        ["predict", files[which], files["new_csv"], "--out", out_path, "--proba"],
        capsys,
    )
    assert status == 0, err
    model = load(files[which])
    rows = read_predictions(out_path)
    assert rows[0] == ["prediction", *(f"proba_{c}" for c in model.classes_)]
    X = np.loadtxt(
        files["new_csv"], delimiter=",", skiprows=1, usecols=range(64)
    ).astype(np.float32)
    proba = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=1e-6, atol=1e-7)
    assert [row[0] for row in rows[1:]] == [str(c) for c in model.predict(X)]


def test_predict_to_stdout_without_proba(files, capsys):
    status, out, err = run_cli(["predict", files["model"], files["new_csv"]], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "prediction"
    assert len(lines) == 26
    assert "wrote 25 predictions to stdout" in err


def test_predict_model_without_column_names(files, capsys, tmp_path):
    """A model fitted on an array reads every column not given to --ignore."""
    X, digit = load_digits(return_X_y=True)
    model = PretrainedClassifier(hidden_layer_sizes=(8,), epochs=1, random_state=0)
    path = str(tmp_path / "array.keras")
    model.fit(X[:200] / 16.0, digit[:200]).save(path)
    # new.csv has 64 features and the target: one column too many
    status, _, err = run_cli(["predict", path, files["new_csv"]], capsys)
    assert_one_line_error(status, err)
    assert "expects 64 features" in err and "has 65" in err
    status, out, err = run_cli(
        ["predict", path, files["new_csv"], "--ignore", "parity"], capsys
    )
    assert status == 0, err
    assert len(out.splitlines()) == 26


def test_pandas_index_column_is_not_a_feature(files, capsys, tmp_path):
    """``DataFrame.to_csv(path)`` writes the index first, with no name."""
    pd = pytest.importorskip("pandas")
    X, digit = load_digits(return_X_y=True)
    frame = pd.DataFrame(X[1000:1030] / 16.0, columns=FEATURES)
    frame.index += 1000  # as after a split: an index a model could learn
    frame["parity"] = np.where(digit[1000:1030] % 2 == 0, "even", "odd")
    data = tmp_path / "indexed.csv"
    frame.to_csv(data)
    status, out, err = run_cli(
        ["pretrain", data, "--target", "parity", "--out", tmp_path / "s.keras",
         "--epochs", "1", "--hidden", "4"],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("sktransfer: warning: dropped the first column")
    assert "index=False" in warnings[0]
    assert "30 rows, 64 features, 2 classes" in out
    assert list(load(tmp_path / "s.keras").feature_names_in_) == FEATURES
    # a model saved without column names counts the file's columns: the index
    # is not one of them
    model = PretrainedClassifier(hidden_layer_sizes=(8,), epochs=1, random_state=0)
    model.fit(X[:200] / 16.0, digit[:200]).save(tmp_path / "array.keras")
    status, out, err = run_cli(
        ["predict", tmp_path / "array.keras", data, "--ignore", "parity"], capsys
    )
    assert status == 0, err
    assert len(out.splitlines()) == 1 + 30
    assert "dropped the first column" in err


@pytest.mark.parametrize("command", ["pretrain", "transfer", "predict"])
def test_help_states_the_index_column_policy(command, capsys):
    status, out, _ = run_cli([command, "--help"], capsys)
    assert status == 0
    text = " ".join(out.split())
    assert "A first column with no name in the header" in text
    assert "index=False" in text and "dropped, with a warning" in text


# ------------------------------------------------------- plain Keras models
def _plain_keras_model():
    """A Keras network that sktransfer did not write (no estimator metadata)."""
    import keras

    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_transfer_from_a_plain_keras_model_file(suffix, files, capsys, tmp_path):
    source = tmp_path / f"plain{suffix}"
    _plain_keras_model().save(source)  # .h5: Keras 3's legacy writer (it warns)
    out_path = tmp_path / "m.keras"
    status, out, err = run_cli(
        ["transfer", source, files["target_csv"], "--target", "parity",
         "--freeze", "0", "all", "--cv", "2", "--epochs", "1", "--out", out_path],
        capsys,
    )  # fmt: skip
    assert status == 0, err
    rows = table_rows(out)
    assert [spec for spec, _, _ in rows] == [0, "all"]
    # its two Dense layers below the head and the copy of the head that
    # gives the source's class scores (the default cut, "multi")
    assert "all (3 of 3)" in out
    model = load(out_path)
    assert isinstance(model, TransferClassifier)
    assert model.freeze == next(spec for spec, _, star in rows if star)
    assert list(model.feature_names_in_) == FEATURES
    status, out, err = run_cli(["predict", out_path, files["new_csv"]], capsys)
    assert status == 0, err
    assert len(out.splitlines()) == 1 + 25


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_predict_refuses_a_plain_keras_model(suffix, files, capsys, tmp_path):
    path = tmp_path / f"plain{suffix}"
    _plain_keras_model().save(path)
    status, out, err = run_cli(["predict", path, files["new_csv"]], capsys)
    assert_one_line_error(status, err)
    assert "is a plain Keras model, not a saved sktransfer estimator" in err
    assert f"sktransfer transfer {path} DATA.csv" in err  # what to do instead
    assert out == ""


@pytest.mark.parametrize("command", [[], ["demo"], ["pretrain"], ["transfer"]])
def test_help(command, capsys):
    status, out, _ = run_cli([*command, "--help"], capsys)
    assert status == 0
    assert out.startswith("usage: sktransfer")


def test_predict_help_names_the_proba_columns(capsys):
    status, out, _ = run_cli(["predict", "--help"], capsys)
    assert status == 0
    assert "proba_<class>" in out


# ---------------------------------------------------------------- bad inputs
def _bad_files(folder):
    (folder / "not_a_model.keras").write_text("hello, I am text")
    (folder / "binary.csv").write_bytes(bytes(range(256)) * 8)
    lines = (folder / "target.csv").read_text().splitlines()
    short = [",".join(line.split(",")[:10] + line.split(",")[-1:]) for line in lines]
    cells = lines[3].split(",")
    cells[5] = "n/a"
    lines[3] = ",".join(cells)
    (folder / "text_feature.csv").write_text("\n".join(lines) + "\n")
    (folder / "ten_features.csv").write_text("\n".join(short) + "\n")
    (folder / "ragged.csv").write_text("a,b,y\n1,2,x\n3,4\n")
    (folder / "unnamed_column.csv").write_text("a,,y\n1,2,x\n3,4,z\n")


BAD_CASES = {
    "missing data file": (
        ["pretrain", "{folder}/nope.csv", "--target", "digit", "--out",
         "{tmp}/x.keras"],
        "does not exist",
    ),
    "data file not text": (
        ["pretrain", "{folder}/binary.csv", "--target", "y", "--out", "{tmp}/x.keras"],
        "not a text CSV file",
    ),
    "ragged csv": (
        ["pretrain", "{folder}/ragged.csv", "--target", "y", "--out", "{tmp}/x.keras"],
        "line 3 has 2 fields",
    ),
    "column without a name": (
        ["pretrain", "{folder}/unnamed_column.csv", "--target", "y", "--out",
         "{tmp}/x.keras"],
        "column 2 of",
    ),
    "missing target column": (
        ["pretrain", "{source_csv}", "--target", "label", "--out", "{tmp}/x.keras"],
        "no column 'label'",
    ),
    "non-numeric feature": (
        ["pretrain", "{folder}/text_feature.csv", "--target", "parity", "--out",
         "{tmp}/x.keras"],
        "'px5'",
    ),
    "output not .keras": (
        ["pretrain", "{source_csv}", "--target", "digit", "--out", "{tmp}/x.pkl"],
        "must end in '.keras'",
    ),
    "missing source model": (
        ["transfer", "{folder}/nope.keras", "{target_csv}", "--target", "parity",
         "--out", "{tmp}/m.keras"],
        "does not exist",
    ),
    "source not a model": (
        ["transfer", "{folder}/not_a_model.keras", "{target_csv}", "--target",
         "parity", "--out", "{tmp}/m.keras"],
        "not a valid .keras archive",
    ),
    "source is a csv": (
        ["transfer", "{target_csv}", "{target_csv}", "--target", "parity", "--out",
         "{tmp}/m.keras"],
        "expected a .keras archive",
    ),
    "transfer feature count": (
        ["transfer", "{source}", "{folder}/ten_features.csv", "--target", "parity",
         "--out", "{tmp}/m.keras"],
        "10 feature columns",
    ),
    "freeze out of range": (
        ["transfer", "{source}", "{target_csv}", "--target", "parity", "--freeze",
         "5", "--out", "{tmp}/m.keras"],
        "freeze=5 is out of range",
    ),
    "too many folds": (
        ["transfer", "{source}", "{target_csv}", "--target", "parity", "--cv", "20",
         "--out", "{tmp}/m.keras"],
        "too few for --cv 20",
    ),
    "predict with a non-model": (
        ["predict", "{folder}/not_a_model.keras", "{new_csv}"],
        "not a valid .keras archive",
    ),
    "predict with a plain data file as model": (
        ["predict", "{new_csv}", "{new_csv}"],
        "expected a .keras archive",
    ),
    "predict wrong feature count": (
        ["predict", "{model}", "{folder}/ten_features.csv"],
        "no column 'px10'",
    ),
    "predict non-numeric feature": (
        ["predict", "{model}", "{folder}/text_feature.csv"],
        "'px5'",
    ),
    "transfer onto its own source": (
        ["transfer", "{source}", "{target_csv}", "--target", "parity", "--out",
         "{source}"],
        "is the source model itself",
    ),
    "predict ignoring a trained column": (
        ["predict", "{model}", "{new_csv}", "--ignore", "px3"],
        "--ignore px3: the model",
    ),
    "predict missing data file": (
        ["predict", "{model}", "{folder}/nope.csv"],
        "does not exist",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_line_and_status_2(case, files, capsys, tmp_path):
    _bad_files(files["folder"])
    args, expected = BAD_CASES[case]
    names = {key: value for key, value in files.items()}
    args = [a.format(tmp=tmp_path, **names) for a in args]
    status, _, err = run_cli(args, capsys)
    assert_one_line_error(status, err)
    assert expected in err
    assert not list(tmp_path.glob("*.keras"))  # nothing half-written


def test_transfer_saves_an_absolute_source_path(files, capsys, tmp_path, monkeypatch):
    """The saved model names its source absolutely: refitting it after
    loading works from any working directory."""
    monkeypatch.chdir(files["folder"])
    out = str(tmp_path / "relative.keras")
    status, _, _ = run_cli(
        ["transfer", "source.keras", "target.csv", "--target", "parity",
         "--freeze", "all", "--cv", "2", "--out", out],
        capsys,
    )  # fmt: skip
    assert status == 0
    loaded = load(out)
    assert loaded.pretrained == str(files["folder"] / "source.keras")
    monkeypatch.chdir(tmp_path)  # refit from another folder
    X, digit = load_digits(return_X_y=True)
    X, y = X[1000:1030] / 16.0, np.where(digit[1000:1030] % 2 == 0, "even", "odd")
    assert loaded.fit(X, y).score(X, y) > 0.5


def test_usage_error_exits_2(capsys):
    status, _, err = run_cli(["transfer", "a.keras", "b.csv"], capsys)
    assert status == 2
    assert "--target" in err


# ------------------------------------------------------------ real processes
def test_help_and_usage_errors_do_not_import_tensorflow(tmp_path):
    code = (
        "import sys, sktransfer\n"
        "from sktransfer.__main__ import main\n"
        "for args, code in [(['--help'], 0), (['transfer', '--help'], 0),\n"
        "                   (['predict', '--help'], 0), (['transfer', 'a', 'b'], 2)]:\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == code, (args, exc.code)\n"
        "heavy = ('tensorflow', 'keras', 'scikeras', 'sklearn')\n"
        "print('heavy:', [m for m in heavy if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "heavy: []"


def test_module_entry_point_refuses_a_plain_h5_model(files, tmp_path):
    path = tmp_path / "plain.h5"
    _plain_keras_model().save(path)
    result = run_module(["predict", path, files["new_csv"]], tmp_path)
    assert_one_line_error(result.returncode, result.stderr)
    assert "plain Keras model" in result.stderr
    assert result.stdout == ""


def test_module_entry_point_reports_bad_input(files, tmp_path):
    _bad_files(files["folder"])
    result = run_module(
        ["predict", files["model"], files["folder"] / "text_feature.csv"], tmp_path
    )
    assert_one_line_error(result.returncode, result.stderr)
    assert result.stderr.strip().splitlines()[-1].startswith("sktransfer: error:")
    assert result.stdout == ""


@pytest.mark.slow  # the whole demo in a subprocess: the slow job of .ci/run
def test_demo_quick_prints_tables_and_writes_figure(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    result = run_module(["demo", "--quick", "--out", out], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    text = result.stdout
    assert "Freeze depth vs 2-fold CV accuracy" in text
    for depth in ("0 (0 of 3)", "1 (1 of 3)", "2 (2 of 3)", "all (3 of 3)"):
        assert depth in text
    assert "Test accuracy on 777 held-out target digits" in text
    assert "gain of transfer" in text
    assert "] 1. pretraining" in text  # progress lines with elapsed seconds
    # the grid search's bar, printed once when done (stdout is a pipe): four
    # depths x 2 folds, then the refit
    assert re.search(r"^grid search .* 9/9 fits .* left$", text, re.MULTILINE), text
    assert "\x1b" not in text
    assert (out / "sktransfer-demo.png").stat().st_size > 10_000
    assert isinstance(load(out / "source.keras"), PretrainedClassifier)
    assert isinstance(load(out / "transfer.keras"), TransferClassifier)


def test_demo_figure_is_skipped_without_matplotlib(monkeypatch, tmp_path):
    from sktransfer._cli import _demo

    for name in [n for n in sys.modules if n.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    path = _demo.save_figure(
        str(tmp_path / "f.png"), ["0", "all"], [0.8, 0.7], [0.1, 0.1], 0,
        ["a", "b"], [0.8, 0.7], None,
    )  # fmt: skip
    assert path is None
    assert not (tmp_path / "f.png").exists()


@pytest.mark.slow  # a whole example script: the slow job of .ci/run
def test_quickstart_example_runs_small(tmp_path, run_example):
    pytest.importorskip("matplotlib")
    result = run_example("plot_quickstart.py")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "chosen freeze=" in result.stdout
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
