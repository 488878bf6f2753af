"""Few-shot transfer on digits: tuned transfer vs equally tuned baselines.

The task (``sktransfer.datasets.load_parity_transfer``): pretrain on the first
1,000 digits (10 classes), then tell even from odd on the other digits with
only ``--shots`` labelled examples per class. For each seed (which target
examples are labelled, the folds, and the estimators' ``random_state``)
every method gets the same tuning budget: a ``GridSearchCV`` with
``N_CANDIDATES`` = 4 candidates over its own main hyperparameters, on the
same stratified, shuffled 5 folds of the labelled examples, refitted on all
of them, then scored on the remaining target digits:

* ``transfer``: ``TransferClassifier(<source .keras file>)`` over
  ``freeze`` in ``[0, 1, 2, "all"]``;
* ``scratch``: ``PretrainedClassifier`` (the same default network, trained
  from scratch on the labelled examples) over ``hidden_layer_sizes`` in
  ``[(128, 64), (32,)]`` x ``learning_rate`` in ``[1e-3, 1e-2]``;
* ``logreg``: ``make_pipeline(StandardScaler(), LogisticRegression())`` on
  the pixels, over ``C`` in ``[0.01, 0.1, 1, 10]``;
* ``linear probe``: the same logistic-regression pipeline and ``C`` grid on
  the source network's frozen features (the output of its last hidden layer,
  64 units: what ``TransferClassifier``'s default cut keeps), computed once
  with ``source.model_``.

Prints each seed's test accuracies and chosen candidates, then mean ± std
over the seeds and the gain of tuned transfer over each tuned baseline and
over the best of them (per-seed differences, mean ± std, seeds won).

Run: ``python benchmarks/bench_fewshot.py [--seeds 5] [--shots 10]``. An
accuracy benchmark: each seed takes 1-3 minutes on two shared cores (the
two neural grids, 21 fits of up to 200 epochs each), so the default 5 seeds
take longer than the timing benchmarks; ``--seeds 2`` for a quick look.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import load_line, markdown_table  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sktransfer import PretrainedClassifier, TransferClassifier  # noqa: E402
from sktransfer.datasets import load_parity_transfer  # noqa: E402

FOLDS = 5
N_CANDIDATES = 4
C_GRID = {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}
METHODS = ("transfer", "scratch", "logreg", "linear probe")
BASELINES = METHODS[1:]


def logreg():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def searches(path, seed):
    """Each method's estimator and grid (``N_CANDIDATES`` candidates each)."""
    out = {
        "transfer": (
            TransferClassifier(path, random_state=seed),
            {"freeze": [0, 1, 2, "all"]},
        ),
        "scratch": (
            PretrainedClassifier(random_state=seed),
            {"hidden_layer_sizes": [(128, 64), (32,)], "learning_rate": [1e-3, 1e-2]},
        ),
        "logreg": (logreg(), C_GRID),
        "linear probe": (logreg(), C_GRID),
    }
    for _, grid in out.values():
        assert np.prod([len(v) for v in grid.values()]) == N_CANDIDATES
    return out


def chosen(params):
    return ", ".join(f"{k.split('__')[-1]}={v!r}" for k, v in params.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shots", type=int, default=10)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    print(load_line("at start"))

    data = load_parity_transfer(shots=args.shots, random_state=0)
    start = time.perf_counter()
    source = PretrainedClassifier(random_state=0).fit(data.X_source, data.y_source)
    path = os.path.join(tempfile.mkdtemp(), "source.keras")
    source.save(path)
    network = source.model_
    features = keras.Model(network.inputs, network.layers[-2].output)
    print(
        f"source: {len(data.y_source)} digits, pretrained in "
        f"{time.perf_counter() - start:.1f} s; linear probe on "
        f"{features.output.shape[-1]} features of layer {network.layers[-2].name!r}"
    )
    print(
        f"each method: GridSearchCV, {N_CANDIDATES} candidates x {FOLDS} folds, "
        f"{args.shots} labelled examples per class\n"
    )

    scores = {name: [] for name in METHODS}
    for seed in range(args.seeds):
        d = load_parity_transfer(shots=args.shots, random_state=seed)
        cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
        line = []
        for name, (estimator, grid) in searches(path, seed).items():
            X_train, X_test = d.X_target, d.X_test
            if name == "linear probe":
                X_train = features.predict(X_train, verbose=0)
                X_test = features.predict(X_test, verbose=0)
            t0 = time.perf_counter()
            search = GridSearchCV(estimator, grid, cv=cv).fit(X_train, d.y_target)
            seconds = time.perf_counter() - t0
            scores[name].append(search.score(X_test, d.y_test))
            line.append(
                f"{name} {scores[name][-1]:.3f} ({chosen(search.best_params_)}; "
                f"{seconds:.0f} s)"
            )
        print(f"seed {seed}: " + " | ".join(line), flush=True)

    acc = {name: np.array(v) for name, v in scores.items()}
    best = max(BASELINES, key=lambda name: acc[name].mean())
    print(
        f"\ntest accuracy over {args.seeds} seeds, {args.shots} shots per class, "
        "every method tuned by GridSearchCV "
        f"({N_CANDIDATES} candidates x {FOLDS} folds); mean ± std\n"
    )
    print(
        markdown_table(
            ["method", "test accuracy"],
            [
                [name, f"{acc[name].mean():.3f} ± {acc[name].std(ddof=1):.3f}"]
                for name in METHODS
            ],
        )
    )
    rows = []
    for name in BASELINES:
        gain = 100 * (acc["transfer"] - acc[name])
        rows.append(
            [
                f"transfer - {name}" + (" (best baseline)" if name == best else ""),
                f"{gain.mean():+.1f} ± {gain.std(ddof=1):.1f}",
                f"{int((gain > 0).sum())}/{len(gain)}",
            ]
        )
    print()
    print(markdown_table(["gain, points", "mean ± std", "seeds won"], rows))
    gain = 100 * (acc["transfer"] - acc[best])
    print(
        f"\ntuned transfer minus the best tuned baseline ({best}): "
        f"{gain.mean():+.1f} ± {gain.std(ddof=1):.1f} points"
    )
    print(load_line("at end"))


if __name__ == "__main__":
    main()
