"""The command line: ``python -m sktransfer demo|pretrain|transfer|predict``.

Most cases call ``sktransfer._cli.main`` in-process (TensorFlow is imported
once); a few run ``python -m sktransfer`` in a subprocess to check the real
entry point, the exit status and that no traceback reaches the user. CSV
files are written from ``load_digits``; epochs are tiny.
"""

from __future__ import annotations

import csv
import os
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
        "source": str(folder / "source.keras"),
        "model": str(folder / "model.keras"),
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


def test_transfer_prints_table_and_saves_best(files, capsys, tmp_path):
    out_path = tmp_path / "best.keras"
    status, out, err = run_cli(
        [
            "transfer",
            files["source"],
            files["target_csv"],
            "--target",
            "parity",
            "--freeze",
            "1",
            "all",
            "--cv",
            "2",
            "--epochs",
            "1",
            "--out",
            out_path,
        ],
        capsys,
    )
    assert status == 0, err
    assert "CV accuracy" in out
    table = [line for line in out.splitlines() if "of 2)" in line]
    assert [line.split()[0] for line in table] == ["1", "all"]
    assert sum(line.rstrip().endswith("*") for line in table) == 1
    model = load(out_path)
    assert isinstance(model, TransferClassifier)
    assert model.freeze in (1, "all")
    assert set(model.classes_) == {"even", "odd"}


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


def test_usage_error_exits_2(capsys):
    status, _, err = run_cli(["transfer", "a.keras", "b.csv"], capsys)
    assert status == 2
    assert "--target" in err


# ------------------------------------------------------------ real processes
def test_module_entry_point_reports_bad_input(files, tmp_path):
    _bad_files(files["folder"])
    result = run_module(
        ["predict", files["model"], files["folder"] / "text_feature.csv"], tmp_path
    )
    assert_one_line_error(result.returncode, result.stderr)
    assert result.stderr.strip().splitlines()[-1].startswith("sktransfer: error:")
    assert result.stdout == ""


def test_demo_quick_prints_tables_and_writes_figure(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    result = run_module(["demo", "--quick", "--out", out], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    text = result.stdout
    assert "Freeze depth vs 2-fold CV accuracy" in text
    for depth in ("0 (0 of 2)", "1 (1 of 2)", "2 (2 of 2)", "all (2 of 2)"):
        assert depth in text
    assert "Test accuracy on 777 held-out target digits" in text
    assert "gain of transfer" in text
    assert "] 1. pretraining" in text  # progress lines with elapsed seconds
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


def test_quickstart_example_runs_small(tmp_path, run_example):
    pytest.importorskip("matplotlib")
    result = run_example("plot_quickstart.py")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "chosen freeze=" in result.stdout
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
