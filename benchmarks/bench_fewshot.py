"""Few-shot transfer on digits: grid-searched freeze depth vs training from scratch.

The task (``sktransfer.datasets.load_parity_transfer``): pretrain on the first
1,000 digits (10 classes), then tell even from odd on the other digits with
only ``--shots`` labelled examples per class. For each seed (which target
examples are labelled, and the estimators' ``random_state``) we compare on the
remaining target digits:

* ``TransferClassifier`` with the freeze depth chosen by ``GridSearchCV``;
* ``PretrainedClassifier`` trained from scratch on the same examples;
* ``make_pipeline(StandardScaler(), LogisticRegression())`` on the same examples.

Run: ``python benchmarks/bench_fewshot.py [--seeds 5] [--shots 10]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import PretrainedClassifier, TransferClassifier  # noqa: E402
from sktransfer.datasets import load_parity_transfer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shots", type=int, default=10)
    args = parser.parse_args()

    data = load_parity_transfer(shots=args.shots, random_state=0)
    start = time.perf_counter()
    source = PretrainedClassifier(random_state=0).fit(data.X_source, data.y_source)
    path = os.path.join(tempfile.mkdtemp(), "source.keras")
    source.save(path)
    print(
        f"source: {len(data.y_source)} digits, pretrained in "
        f"{time.perf_counter() - start:.1f} s"
    )

    rows = []
    for seed in range(args.seeds):
        d = load_parity_transfer(shots=args.shots, random_state=seed)
        cv = StratifiedKFold(5, shuffle=True, random_state=seed)
        grid = GridSearchCV(
            TransferClassifier(path, random_state=seed),
            {"freeze": [0, 1, 2, "all"]},
            cv=cv,
        )
        t0 = time.perf_counter()
        grid.fit(d.X_target, d.y_target)
        t_grid = time.perf_counter() - t0
        scratch = PretrainedClassifier(random_state=seed).fit(d.X_target, d.y_target)
        logreg = make_pipeline(StandardScaler(), LogisticRegression()).fit(
            d.X_target, d.y_target
        )
        row = (
            grid.score(d.X_test, d.y_test),
            scratch.score(d.X_test, d.y_test),
            logreg.score(d.X_test, d.y_test),
        )
        rows.append(row)
        print(
            f"seed {seed}: transfer (freeze={grid.best_params_['freeze']!r}) "
            f"{row[0]:.3f} | scratch {row[1]:.3f} | logreg {row[2]:.3f} "
            f"| grid {t_grid:.0f} s"
        )
    rows = np.array(rows)
    mean = rows.mean(axis=0)
    gain = rows[:, 0] - rows[:, 1]
    print(f"\nmean test accuracy over {args.seeds} seeds, {args.shots} shots/class:")
    print(f"  TransferClassifier + GridSearchCV(freeze): {mean[0]:.3f}")
    print(f"  PretrainedClassifier from scratch:         {mean[1]:.3f}")
    print(f"  StandardScaler + LogisticRegression:       {mean[2]:.3f}")
    print(
        f"gain of transfer over scratch: {100 * gain.mean():+.1f} points "
        f"(median {100 * np.median(gain):+.1f}, better on "
        f"{int((gain > 0).sum())}/{len(gain)} seeds)"
    )


if __name__ == "__main__":
    main()
