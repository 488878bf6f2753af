"""Drop-in check: default PretrainedClassifier vs MLPClassifier, 5-fold CV.

Both run in a ``make_pipeline(StandardScaler(), ...)`` with their default
parameters (``random_state=0``; MLPClassifier with the same hidden layers as
our default network, ``(128, 64)``, and its default ``max_iter``) on iris,
wine, breast_cancer and digits, with the same stratified, shuffled folds.
For each dataset it prints both mean accuracies, the difference in
percentage points (target: within 1.5 points) and the fit-time ratio
(median over folds of ours / MLPClassifier's, measured in the same run).

Run: ``python benchmarks/bench_dropin.py [--quick]`` (``--quick``: 3 folds,
digits subsampled to 600 rows).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import PretrainedClassifier  # noqa: E402

DATASETS = {
    "iris": load_iris,
    "wine": load_wine,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}
TARGET_POINTS = 1.5


def make_estimators():
    return {
        "sktransfer": make_pipeline(
            StandardScaler(), PretrainedClassifier(random_state=0)
        ),
        "mlp": make_pipeline(
            StandardScaler(),
            MLPClassifier(hidden_layer_sizes=(128, 64), random_state=0),
        ),
    }


def evaluate(X, y, n_folds):
    """Per-fold accuracy and fit time of both estimators, folds interleaved
    so that both see the same machine load."""
    cv = StratifiedKFold(n_folds, shuffle=True, random_state=0)
    scores = {"sktransfer": [], "mlp": []}
    times = {"sktransfer": [], "mlp": []}
    for train, test in cv.split(X, y):
        for name, est in make_estimators().items():
            start = time.perf_counter()
            est.fit(X[train], y[train])
            times[name].append(time.perf_counter() - start)
            scores[name].append(est.score(X[test], y[test]))
    return scores, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="3 folds, digits subsampled to 600"
    )
    args = parser.parse_args(argv)
    n_folds = 3 if args.quick else 5
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    header = (
        f"{'dataset':<14}{'n':>6}{'ours':>9}{'MLP':>9}{'diff pts':>10}"
        f"{'fit ours s':>12}{'fit MLP s':>11}{'fit ratio':>11}  target"
    )
    print(f"{n_folds}-fold CV accuracy, StandardScaler + default estimator")
    print(header)
    print("-" * len(header))
    misses = []
    for name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        if args.quick and name == "digits":
            keep = np.random.RandomState(0).permutation(len(y))[:600]
            X, y = X[keep], y[keep]
        scores, times = evaluate(X, y, n_folds)
        ours, mlp = np.mean(scores["sktransfer"]), np.mean(scores["mlp"])
        diff = 100 * (ours - mlp)
        t_ours, t_mlp = np.median(times["sktransfer"]), np.median(times["mlp"])
        ok = abs(diff) <= TARGET_POINTS or diff > 0
        if not ok:
            misses.append(name)
        print(
            f"{name:<14}{len(y):>6}{ours:>9.4f}{mlp:>9.4f}{diff:>+10.2f}"
            f"{t_ours:>12.2f}{t_mlp:>11.2f}{t_ours / t_mlp:>11.2f}  "
            f"{'ok' if ok else 'MISS'}",
            flush=True,
        )
    print(
        f"\ndiff pts = (ours - MLP) x 100; target: not worse than MLP by more "
        f"than {TARGET_POINTS} points. fit ratio = median fit time ours / MLP."
    )
    if misses:
        print(f"MISSED on: {', '.join(misses)}")


if __name__ == "__main__":
    main()
