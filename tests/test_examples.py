"""The gallery examples run end to end (reduced size): figure and printed numbers.

Each example runs as its own process, as a user would run it, with
``SKTRANSFER_EXAMPLE_SMALL=1`` (few epochs, seeds and depths) and
``SKTRANSFER_EXAMPLE_OUT`` pointing at a temporary directory. Its working
directory is another, empty one: an example must write only where it is told.

Beyond the exit code and the figure, the numbers each example prints are
read back and checked: the data sizes it announces against the data set,
accuracies and scores against chance and against each other, and every
sentence it computes from its table against that table. Nothing is compared
with numbers copied from a previous run.

With ``SKTRANSFER_EXAMPLES_FROM_DOCS=docs`` (what .ci/run sets after
``make -C docs html``) the runs checked are the gallery build's, which ran
every example once (``run_example`` in conftest.py); that build fails itself
on an example that raises or writes into ``examples/``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits

#: end-to-end runs (whole scripts, worker processes): the slow job of
#: .ci/run (`python -m pytest -q -m slow`), not the main suite
pytestmark = pytest.mark.slow

pytest.importorskip("matplotlib")

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

#: generous: in small mode each example takes under a minute on two cores
TIMEOUT_S = 300

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def grab(pattern, text, *, convert=float):
    """The groups of the one line of ``text`` matching ``pattern``, converted."""
    found = re.findall(pattern, text, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one line matching {pattern!r}:\n{text}"
    groups = found[0] if isinstance(found[0], tuple) else (found[0],)
    values = tuple(convert(g) for g in groups)
    return values if len(values) > 1 else values[0]


def table(text, header, n_rows):
    """The rows below the line starting with ``header``: ``{label: [numbers]}``.

    A row is a label (words, ``=`` and quotes allowed) followed by numbers;
    parenthesised numbers (standard deviations) are left out.
    """
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = {}
    for line in lines[start + 1 : start + 1 + n_rows]:
        line = re.sub(r"\(\s*" + NUMBER + r"\)", "", line)
        match = re.match(r"^\s*(.*?)\s+((?:" + NUMBER + r"\s*)+)$", line)
        assert match, f"not a table row: {line!r}"
        rows[match.group(1)] = [float(v) for v in match.group(2).split()]
    return rows


# ----------------------------------------------------------- the examples
def check_freeze_depth(out):
    _, y = load_digits(return_X_y=True)
    n_a, n_b = int(np.sum(y < 5)), int(np.sum(y >= 5))
    assert f"task A: {n_a} digits of classes [0, 1, 2, 3, 4]" in out
    assert f"task B: {n_b} digits of classes [5, 6, 7, 8, 9]" in out
    base_b, n_test = grab(
        rf"^seed 0: baseB ({NUMBER}) on (\d+) test digits", out, convert=float
    )
    assert n_test == n_b - 5 * 20  # 20 labelled digits per class of B
    header = "n    " + "".join(
        f"{c:>16}" for c in ("AnB", "AnB+", "BnB", "BnB+", "baseB")
    )
    assert header in out.splitlines()
    rows = table(out, header, 4)
    assert list(rows) == ["0", "1", "2", "4"]  # small mode: depths 1, 2, 4
    anb, anb_plus, bnb, bnb_plus, base = (np.array(c) for c in zip(*rows.values()))
    # nothing copied at n = 0: every condition is baseB itself
    assert rows["0"] == [base_b] * 5
    np.testing.assert_array_equal(base, base_b)
    # 5 classes: chance is 0.2; training from scratch and fine-tuning learn
    assert base_b >= 0.8 and (anb_plus >= 0.8).all() and (bnb_plus >= 0.8).all()
    assert (np.concatenate([anb, bnb]) > 0.35).all()
    # the closing sentences describe this table
    assert grab(rf"^baseB \(from scratch on task B\): ({NUMBER})$", out) == base_b
    first, last = grab(
        rf"^AnB \(frozen layers from A, fresh layers above\): ({NUMBER}) at n=1, "
        rf"({NUMBER}) at n=4: ",
        out,
    )
    assert (first, last) == (anb[1], anb[3])
    loses = "it loses" in out.split("AnB (frozen")[1].splitlines()[0]
    assert loses == (first - last >= 0.01)
    gaps = re.findall(rf"n=(\d): ({NUMBER})", out.split("(BnB - AnB), by n:")[1])
    assert [int(n) for n, _ in gaps] == [1, 2, 4]
    for (_, gap), row in zip(gaps, ("1", "2", "4")):
        assert float(gap) == pytest.approx(
            (rows[row][2] - rows[row][0]) * 100, abs=0.11
        )


def check_pipeline_calibration(out):
    X, _ = load_diabetes(return_X_y=True)
    n_test = math.ceil(0.4 * len(X))
    assert f"{len(X) - n_test} training, {n_test} test patients, 10 features" in out
    assert "is_classifier(pipeline): True" in out
    rows = table(out, "model ", 4)
    names = ["uncalibrated", "sigmoid", "isotonic", "early stopping"]
    assert list(rows) == names
    brier = {name: rows[name][0] for name in names}
    accuracy = {name: rows[name][2] for name in names}
    for name in names:
        brier_score, log_loss, acc, seconds = rows[name]
        # a median split: always saying 0.5 scores Brier 0.25 and accuracy ~0.5
        assert 0 < brier_score < 0.23, (name, brier_score)
        assert 0 < log_loss < 2.0 and seconds > 0
        assert acc >= 0.65, (name, acc)
    for name in ("sigmoid", "isotonic"):
        word, change, percent = grab(
            rf"^{name} calibration (lowers|raises) the over-trained network's Brier "
            rf"score by ({NUMBER}) \(({NUMBER})%\)\.$",
            out,
            convert=str,
        )
        diff = brier[name] - brier["uncalibrated"]
        assert word == ("lowers" if diff < 0 else "raises")
        assert float(change) == pytest.approx(abs(diff), abs=1.1e-4)
        assert float(percent) == pytest.approx(
            100 * diff / brier["uncalibrated"], abs=1
        )
    confident = {}
    for name in names:
        errors, sure = grab(
            rf"^{name}: (\d+) test errors, (\d+) of them made with over 90% "
            r"confidence\.$",
            out,
            convert=int,
        )
        assert errors / n_test == pytest.approx(1 - accuracy[name], abs=6e-4)
        assert sure <= errors
        confident[name] = sure
    # what the example is about: calibration removes the over-confident errors
    assert confident["sigmoid"] < confident["uncalibrated"]
    assert confident["isotonic"] < confident["uncalibrated"]
    assert min(brier["sigmoid"], brier["isotonic"]) < brier["uncalibrated"]
    lowest = grab(r"^lowest Brier score: (.+)$", out, convert=str)
    assert brier[lowest] == min(brier.values())


def check_image_transfer(out):
    assert "images (32, 32, 3), 150 to train on, 200 to test on" in out
    weights, n_layers = grab(
        r"^MobileNetV3Small: ([\d,]+) weights, (\d+) layers$",
        out,
        convert=lambda v: int(v.replace(",", "")),
    )
    assert weights > 100_000 and n_layers > 100
    untrained = grab(rf"^feature spread, untrained statistics: ({NUMBER})$", out)
    calibrated = grab(rf"^feature spread, calibrated statistics: ({NUMBER})$", out)
    assert calibrated > 1e3 * untrained  # the trap, and its fix
    trap_accuracy, trap_classes = grab(
        rf"^freeze='all', uncalibrated: accuracy ({NUMBER}), (\d+) distinct "
        r"class\(es\) predicted$",
        out,
    )
    # one class predicted: the accuracy is that class's share of the test set
    assert trap_classes == 1 and trap_accuracy == pytest.approx(0.1, abs=0.011)
    assert grab(r"^calibrated (\d+) BatchNormalization layers$", out) > 10
    runs = re.findall(
        rf"^freeze=('all'|-1): (\d+) of (\d+) layers frozen, accuracy ({NUMBER}), "
        r"(\d+) distinct classes predicted$",
        out,
        flags=re.MULTILINE,
    )
    assert [run[0] for run in runs] == ["'all'", "-1"]
    (_, frozen_all, total, acc_all, k_all), (_, frozen_1, total_1, acc_1, k_1) = runs
    assert int(frozen_all) == int(total) == int(total_1) == int(frozen_1) + 1
    # 10 classes, chance 0.1: the calibrated features carry the digits
    for accuracy, classes in ((acc_all, k_all), (acc_1, k_1)):
        assert float(accuracy) >= 0.25 and int(classes) >= 5
    listed = {
        label: float(value)
        for label, value in re.findall(
            rf"^  (\S+ freeze=\S+)\s+({NUMBER})$", out, flags=re.MULTILINE
        )
    }
    assert listed == {
        "uncalibrated freeze='all'": trap_accuracy,
        "calibrated freeze='all'": float(acc_all),
        "calibrated freeze=-1": float(acc_1),
    }
    best = grab(r"^best: (.+)$", out, convert=str)
    calibrated_runs = {k: v for k, v in listed.items() if k.startswith("calibrated")}
    assert calibrated_runs[best] == max(calibrated_runs.values())


def check_learning_curves(out):
    epochs, best_loss, best_epoch = grab(
        rf"^source: (\d+) epochs run \(at most 40\), best validation loss "
        rf"({NUMBER}) at epoch (\d+), whose weights were kept$",
        out,
    )
    assert 1 <= best_epoch <= epochs <= 40 and best_loss > 0
    if epochs < 40:  # stopped early: exactly `patience` (10) epochs after the best
        assert epochs == best_epoch + 10
    runs = {}
    for name in ("two-phase", "one-phase"):
        runs[name] = grab(
            rf"^{name} transfer: (\d+) epochs in all, best validation loss "
            rf"({NUMBER}), test accuracy ({NUMBER})$",
            out,
        )
    two_epochs, two_best, two_accuracy = runs["two-phase"]
    one_epochs, one_best, one_accuracy = runs["one-phase"]
    assert 5 < two_epochs <= 5 + 25 and 1 <= one_epochs <= 25
    # five classes (chance 0.2) on top of a network pretrained on digits
    assert two_accuracy >= 0.85 and one_accuracy >= 0.85
    first, last, tuned = grab(
        rf"^warm-up \(head only\): validation loss ({NUMBER}) -> ({NUMBER}); "
        rf"fine-tuning everything: best ({NUMBER})$",
        out,
    )
    assert last < first  # the head learns during the warm-up
    assert min(last, tuned) == pytest.approx(two_best, abs=6e-4)
    start, best_early, best_all = grab(
        rf"^without warm-up the first epochs reach validation loss ({NUMBER}) -> "
        rf"({NUMBER}) \(best of the first 5\); best overall ({NUMBER})$",
        out,
    )
    assert best_all <= best_early <= start
    assert best_all == pytest.approx(one_best, abs=6e-4)
    summary = grab(
        rf"^best validation loss: two-phase ({NUMBER}), one phase ({NUMBER}); "
        rf"test accuracy ({NUMBER}) vs ({NUMBER}): on this task the warm-up "
        r"(helps|does not help)",
        out,
        convert=str,
    )
    two, one, acc_two, acc_one, verdict = summary
    assert float(two) == pytest.approx(two_best, abs=6e-4)
    assert float(one) == pytest.approx(one_best, abs=6e-4)
    assert (float(acc_two), float(acc_one)) == (two_accuracy, one_accuracy)
    assert (verdict == "helps") == (two_best < one_best)


def check_text_transfer(out):
    assert "source: 1200 documents, 8 topics, vocabulary 300, 40 tokens each" in out
    n_train, shots, n_test = grab(
        r"^target: (\d+) labelled documents \((\d+) per class\), (\d+) to test, "
        r"classes \['hobbies', 'news', 'science'\]$",
        out,
        convert=int,
    )
    assert n_train == 3 * shots and n_train + n_test == 2000
    # the estimators followed the network's integer input
    assert "source network input dtype: int32" in out
    rows = table(out, "model ", 4)
    names = [
        "transfer, frozen",
        "transfer, fine-tuned",
        "from scratch",
        "bag-of-words logistic",
    ]
    assert list(rows) == names
    scores = {name: rows[name][0] for name in names}
    # 3 classes: chance is 1/3; the transferred embeddings carry the topics
    assert all(0 <= v <= 1 for v in scores.values())
    assert max(scores["transfer, frozen"], scores["transfer, fine-tuned"]) > 0.6
    assert scores[grab(r"^best: (.+)$", out, convert=str)] == max(scores.values())
    gap = grab(rf"^transfer vs best baseline: ({NUMBER}) points$", out)
    expected = max(scores[n] for n in names[:2]) - max(scores[n] for n in names[2:])
    assert gap == pytest.approx(100 * expected, abs=0.11)


#: examples covered here and what their output must show (plot_quickstart.py
#: and plot_dask_grid_search.py are tested elsewhere)
EXAMPLES = {
    "plot_freeze_depth.py": check_freeze_depth,
    "plot_pipeline_calibration.py": check_pipeline_calibration,
    "plot_image_transfer.py": check_image_transfer,
    "plot_learning_curves.py": check_learning_curves,
    "plot_text_transfer.py": check_text_transfer,
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_example_runs_and_prints_consistent_results(name, tmp_path, run_example):
    if not (EXAMPLES_DIR / name).exists():
        pytest.skip(f"{name} is not in this checkout")
    out = tmp_path / "out"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_example(name, cwd=cwd, out=out, timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{name} exited with {result.returncode}\n--- stdout (tail) ---\n"
        f"{result.stdout[-3000:]}\n--- stderr (tail) ---\n{result.stderr[-3000:]}"
    )
    figures = sorted(out.glob("*.png"))
    assert [figure.name for figure in figures] == [name.replace(".py", ".png")]
    for figure in figures:
        data = figure.read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{figure.name} is not a PNG"
        assert len(data) > 10_000, f"{figure.name} is suspiciously small"
        assert f"figure written to {figure}" in result.stdout
    assert not list(cwd.iterdir()), (
        f"{name} wrote into the working directory: {list(cwd.iterdir())}"
    )
    EXAMPLES[name](result.stdout)
