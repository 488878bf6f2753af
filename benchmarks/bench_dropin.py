"""Drop-in check: default PretrainedClassifier vs MLPClassifier, 5-fold CV.

Both run in a ``make_pipeline(StandardScaler(), ...)`` with their default
parameters (``random_state=0``; MLPClassifier with the same hidden layers as
our default network, ``(128, 64)``, and its default ``max_iter``) on a
60-row table (``make_moons(n_samples=60, noise=0.2, random_state=0)``),
iris, wine, breast_cancer and digits, with the same stratified, shuffled
folds. For each dataset it prints both mean accuracies and the difference in
percentage points (target: not worse than MLP by more than 1.5 points).

Fit time: a round fits both estimators on every fold (the time of the
``fit`` calls only, summed over the folds); after one untimed warm-up fit of
each, ``--repeats`` rounds alternate which estimator goes first
(``_common.py``). Printed: the median over rounds of each side's total fit
time, and the median of the per-round ratios ours / MLP's, beside the load
average (on a shared machine single runs of these ratios swung from 0.2x to
18x).

Run: ``python benchmarks/bench_dropin.py [--repeats 3] [--quick]``
(``--quick``: 3 folds, digits subsampled to 600 rows).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _common import alternate, load_line, markdown_table  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_moons,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import PretrainedClassifier  # noqa: E402


def load_moons60(return_X_y=True):
    return make_moons(n_samples=60, noise=0.2, random_state=0)


DATASETS = {
    "moons60": load_moons60,
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}
TARGET_POINTS = 1.5
SIDES = ("ours", "MLP")


def make_estimator(side):
    if side == "ours":
        return make_pipeline(StandardScaler(), PretrainedClassifier(random_state=0))
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0),
    )


def cross_validate(side, X, y, folds):
    """Accuracy per fold and the summed time of the ``fit`` calls."""
    seconds, scores = 0.0, []
    for train, test in folds:
        estimator = make_estimator(side)
        start = time.perf_counter()
        estimator.fit(X[train], y[train])
        seconds += time.perf_counter() - start
        scores.append(estimator.score(X[test], y[test]))
    return seconds, scores


def compare(X, y, folds, repeats):
    """Both sides' cross-validation, in alternating rounds."""
    train = folds[0][0]
    return alternate(
        {side: (lambda s=side: cross_validate(s, X, y, folds)) for side in SIDES},
        repeats,
        warmups={
            side: (lambda s=side: make_estimator(s).fit(X[train], y[train]))
            for side in SIDES
        },
        measure=lambda result: result[0],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="3 folds, digits subsampled to 600"
    )
    args = parser.parse_args(argv)
    n_folds = 3 if args.quick else 5
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    print(
        f"{n_folds}-fold CV, StandardScaler + default estimator; fit time: "
        f"median of {args.repeats} alternating rounds after one warm-up fit each"
    )
    print(load_line("at start"))
    rows, misses = [], []
    for name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        if args.quick and name == "digits":
            keep = np.random.RandomState(0).permutation(len(y))[:600]
            X, y = X[keep], y[keep]
        folds = list(StratifiedKFold(n_folds, shuffle=True, random_state=0).split(X, y))
        runs = compare(X, y, folds, args.repeats)
        scores = {side: runs.results[side][0][1] for side in SIDES}
        stable = all(
            result[1] == scores[side] for side in SIDES for result in runs.results[side]
        )
        ours, mlp = np.mean(scores["ours"]), np.mean(scores["MLP"])
        diff = 100 * (ours - mlp)
        ok = diff >= -TARGET_POINTS
        if not ok:
            misses.append(name)
        ratios = runs.ratios("ours", "MLP")
        rows.append(
            [
                name,
                len(y),
                f"{ours:.4f}",
                f"{mlp:.4f}",
                f"{diff:+.2f}",
                f"{runs.median('ours'):.2f}",
                f"{runs.median('MLP'):.2f}",
                f"{runs.ratio('ours', 'MLP'):.2f}x",
                f"{min(ratios):.2f}-{max(ratios):.2f}",
                f"{runs.load['timed']:.1f}-{runs.load['end']:.1f}",
                ("ok" if ok else "MISS") + ("" if stable else " (scores vary)"),
            ]
        )
        print(f"{name}: done, {runs.load_text()}", flush=True)
    print()
    print(
        markdown_table(
            [
                "dataset",
                "n",
                "acc ours",
                "acc MLP",
                "diff pts",
                "fit ours s",
                "fit MLP s",
                "ours/MLP",
                "ratio range",
                "load avg",
                "target",
            ],
            rows,
            align="lrrrrrrrrrl",
        )
    )
    print(
        f"\ndiff pts = (ours - MLP) x 100; target: not worse than MLP by more "
        f"than {TARGET_POINTS} points. fit s = total fit time of the {n_folds} "
        "folds, median over rounds; ours/MLP = median of per-round ratios "
        "(range: smallest and largest per-round ratio); load avg = 1-minute "
        "load average at the first timed round and at the end."
    )
    print(load_line("at end"))
    if misses:
        print(f"MISSED on: {', '.join(misses)}")


if __name__ == "__main__":
    main()
