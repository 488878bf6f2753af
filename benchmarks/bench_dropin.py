"""Drop-in check: default PretrainedClassifier vs MLPClassifier, 5-fold CV.

Both run in a ``make_pipeline(StandardScaler(), ...)`` with their default
parameters (``random_state=0``; MLPClassifier with the same hidden layers as
our default network, ``(128, 64)``, and its default ``max_iter``) on a
60-row table (``make_moons(n_samples=60, noise=0.2, random_state=0)``),
iris, wine, breast_cancer and digits, with the same stratified, shuffled
folds. For each dataset it prints both mean accuracies and the difference in
percentage points (target: not worse than MLP by more than 1.5 points).

``MLP 1 thread`` is the same MLPClassifier fitted inside
``threadpoolctl.threadpool_limits(1)`` (one BLAS thread; scores identical):
on two cores shared with other jobs, OpenBLAS's default two threads can make
MLPClassifier's fit 10x slower (26 s against 2 s for one digits fold), which
is what made the ratios swing; ours runs with TensorFlow's default threads.

Fit time (the ``fit`` call only): after one untimed warm-up fit of each
estimator, a round fits both on one fold, and the rounds go through the
folds ``--repeats`` times (5 folds x 1 repeat: 5 rounds), alternating which
estimator goes first (``_common.py``). Printed: the median per-fold fit time
of each, and the median of the per-round ratios ours / MLP's (both fits of a
round on the same fold, under the same load) with their range, beside the
load average (on a shared machine single runs of these ratios swung from
0.2x to 18x).

Run: ``python benchmarks/bench_dropin.py [--repeats 1] [--quick]``
(``--quick``: 3 folds, digits subsampled to 600 rows; the default run took
4.5 minutes on two cores shared with other jobs, load average 4).
"""

from __future__ import annotations

import argparse
import itertools
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
from threadpoolctl import threadpool_limits  # noqa: E402

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
SIDES = ("ours", "MLP", "MLP 1 thread")


def fit(side, estimator, X, y):
    """``estimator.fit``; the "MLP 1 thread" side with one BLAS thread."""
    if side != "MLP 1 thread":
        return estimator.fit(X, y)
    with threadpool_limits(1):
        return estimator.fit(X, y)


def make_estimator(side):
    if side == "ours":
        return make_pipeline(StandardScaler(), PretrainedClassifier(random_state=0))
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0),
    )


def fold_runner(side, X, y, folds):
    """A runner that fits ``side`` on the next fold at every call; returns
    ``(fit seconds, fold index, test accuracy)``."""
    calls = itertools.count()

    def run():
        index = next(calls) % len(folds)
        train, test = folds[index]
        estimator = make_estimator(side)
        start = time.perf_counter()
        fit(side, estimator, X[train], y[train])
        seconds = time.perf_counter() - start
        return seconds, index, estimator.score(X[test], y[test])

    return run


def compare(X, y, folds, repeats):
    """Both sides, fold by fold, in rounds of alternating order."""
    train = folds[0][0]
    return alternate(
        {side: fold_runner(side, X, y, folds) for side in SIDES},
        repeats * len(folds),
        warmups={
            side: (lambda s=side: fit(s, make_estimator(s), X[train], y[train]))
            for side in SIDES
        },
        measure=lambda result: result[0],
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="passes over the folds")
    parser.add_argument(
        "--quick", action="store_true", help="3 folds, digits subsampled to 600"
    )
    args = parser.parse_args(argv)
    n_folds = 3 if args.quick else 5
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    print(
        f"{n_folds}-fold CV, StandardScaler + default estimator; fit time: "
        f"{args.repeats} pass(es) over the folds, one round per fold, alternating "
        "order, after one warm-up fit each"
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
        scores = {
            side: [score for _, _, score in runs.results[side][:n_folds]]
            for side in SIDES
        }
        stable = all(
            score == scores[side][index]
            for side in SIDES
            for _, index, score in runs.results[side]
        )
        ours, mlp = np.mean(scores["ours"]), np.mean(scores["MLP"])
        diff = 100 * (ours - mlp)
        ok = diff >= -TARGET_POINTS
        if not ok:
            misses.append(name)
        ratios = runs.ratios("ours", "MLP")
        single = runs.ratios("ours", "MLP 1 thread")
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
                f"{runs.median('MLP 1 thread'):.2f}",
                f"{runs.ratio('ours', 'MLP 1 thread'):.2f}x",
                f"{min(single):.2f}-{max(single):.2f}",
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
                "fit/fold ours s",
                "fit/fold MLP s",
                "ours/MLP",
                "ratio range",
                "fit/fold MLP-1t s",
                "ours/MLP-1t",
                "ratio range",
                "load avg",
                "target",
            ],
            rows,
            align="lrrrrrrrrrrrrl",
        )
    )
    print(
        f"\ndiff pts = (ours - MLP) x 100; target: not worse than MLP by more "
        f"than {TARGET_POINTS} points. fit s = median fit time per fold; "
        "ours/MLP = median of per-round (per-fold) ratios "
        "(range: smallest and largest per-round ratio); load avg = 1-minute "
        "load average at the first timed round and at the end."
    )
    print(load_line("at end"))
    if misses:
        print(f"MISSED on: {', '.join(misses)}")


if __name__ == "__main__":
    main()
