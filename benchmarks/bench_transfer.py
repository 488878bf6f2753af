"""Few-shot transfer panel (issue 11): TransferClassifier against baselines.

Three kinds of few-shot target on scikit-learn's bundled digits (see
``_tasks.py``), 10 labelled rows per class, each with a source network
(``PretrainedClassifier``, hidden (128, 64)) trained on other rows:

* ``parity``: new labels derived from the source's classes (even/odd);
* ``unseen``: classes the source never saw (source 0-4, target 5-9);
* ``shift``: the source's 10 classes, target images translated 1 px right.

Methods (tuned ones: ``GridSearchCV`` over the same 5 stratified folds):

* ``scratch tuned``: a from-scratch MLP (128, 64) trained well: full-batch
  Adam, 500 steps, grid over learning rate x L2 (``_recipe_proto.train_scratch``);
* ``scratch default``: ``PretrainedClassifier()`` with its defaults;
* ``LR raw tuned``: ``StandardScaler + LogisticRegression`` on the pixels, C grid;
* ``LP penult tuned``: the linear probe baseline: ``TransferFeatures(cut=
  "penultimate") + StandardScaler + LogisticRegression``, C grid;
* ``TC default``: ``TransferClassifier(source)`` with its defaults (the
  probe on the "multi" features, C by inner CV);
* ``TC LP-FT``: ``TransferClassifier(source, freeze=0)``: the same probe,
  then every layer fine-tuned at a hundredth of the learning rate;
* ``TC AnB+``: ``TransferClassifier(source, cut=2, freeze=0,
  head_solver="adam")``: only the source's first hidden layer transferred
  (``layers[:2]``), fine-tuned with a new random head at the full learning
  rate (Yosinski et al.'s AnB+ with n = 1);
* ``TC tuned``: ``TransferClassifier`` by ``GridSearchCV`` over two
  (cut, freeze) settings: the probe on the source's class scores
  (``cut="scores"``, ``freeze="all"``) and AnB+ (above), with ``memory=`` as
  README recommends.

The defaults and the tuned grid were chosen on the dev tasks and seeds
(``explore_recipe.py``, seeds 100+), never on these test rows. The grid: on
the dev tasks (seeds 100-108) richer grids of 8-12 candidates (the probe on
three cuts, LP-FT at several rates, surgical fine-tuning, hidden heads) were
never better and often worse: with 5 folds of 4-20 rows, cross-validation is
too coarse to pick among many close candidates (one such grid picked the
scores probe where it lost 11 points). These two candidates cover the two
regimes: labels the source's classes explain (the scores probe: gt4, prime,
mod3, chosen 26 of 27 times) and classes or inputs it never saw (AnB+:
unseen-rev, shift-down, chosen 18 of 18 times). AnB+ variants measured on
the same dev tasks and seeds (100-105) were no better: a new hidden layer of
64 under the head (scratch's architecture) and ``cut=3`` lost 0.6-0.8 points
on unseen-rev and shift-down, ``learning_rate=3e-3`` and ``epochs=400``
were within 0.1, and a third candidate that transfers nothing (a random
network of the source's architecture) left the grid unchanged (unseen-rev
0.951, shift-down 0.914, gt4 0.902).

Run: ``python benchmarks/bench_transfer.py [--seeds 3] [--quick]``.
``--quick``: 1 seed. ``bench_transfer_results.txt``: the output of the
last full run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _recipe_proto as rp  # noqa: E402
import _tasks as T  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

FOLDS = 5
C_GRID = [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0]


# ------------------------------------------------ estimators for the search
class _Encoded(ClassifierMixin, BaseEstimator):
    def _encode(self, y):
        self.classes_, yi = np.unique(y, return_inverse=True)
        return yi

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(1)]


class ScratchClassifier(_Encoded):
    """From-scratch MLP trained for a step budget (full batch)."""

    def __init__(self, steps=500, learning_rate=1e-3, l2=0.0, random_state=0):
        self.steps = steps
        self.learning_rate = learning_rate
        self.l2 = l2
        self.random_state = random_state

    def fit(self, X, y):
        yi = self._encode(y)
        self.model_ = rp.train_scratch(
            X,
            yi,
            steps=self.steps,
            learning_rate=self.learning_rate,
            l2=self.l2,
            seed=self.random_state,
            n_classes=len(self.classes_),
        )
        return self

    def predict_proba(self, X):
        return rp.extract(self.model_, X)


def _lr():
    return LogisticRegression(max_iter=2000)


# ------------------------------------------------------------------ methods
#: AnB+ (Yosinski et al.): only the first hidden layer transferred (the
#: source network's layers[:2]), fine-tuned under a new random head
ANB_PLUS = {"cut": 2, "freeze": 0, "head_solver": "adam"}
#: the tuned TransferClassifier's grid (chosen on the dev tasks, see the
#: module docstring): the scores probe first (GridSearchCV breaks ties
#: towards the first candidate), then AnB+
TC_GRID = [
    {"cut": ["scores"], "freeze": ["all"]},
    {key: [value] for key, value in ANB_PLUS.items()},
]
#: the issue's speed target: freeze x cut, 6 candidates; and 6 candidates
#: that only solve the probe (no Keras training loop)
SPEED_GRIDS = {
    "freeze x cut": {"freeze": ["all", 1, 0], "cut": ["multi", "penultimate"]},
    "probe only": {
        "freeze": ["all"],
        "cut": ["multi", "scores", "penultimate"],
        "class_weight": [None, "balanced"],
    },
}


def methods(task, seed, memory):
    """``{name: (estimator, grid or None)}``."""
    from sktransfer import PretrainedClassifier, TransferClassifier, TransferFeatures

    source = T.source_model(task)
    scratch_grid = [
        {"learning_rate": [lr], "l2": [l2]} for lr in (1e-3, 3e-3) for l2 in (0.0, 1e-4)
    ]
    c_grid = {"logisticregression__C": C_GRID}
    probe = make_pipeline(
        TransferFeatures(source, cut="penultimate", memory=memory),
        StandardScaler(),
        _lr(),
    )
    return {
        "scratch tuned": (ScratchClassifier(random_state=seed), scratch_grid),
        "scratch default": (PretrainedClassifier(random_state=seed), None),
        "LR raw tuned": (make_pipeline(StandardScaler(), _lr()), c_grid),
        "LP penult tuned": (probe, c_grid),
        "TC default": (TransferClassifier(source, random_state=seed), None),
        "TC LP-FT": (TransferClassifier(source, freeze=0, random_state=seed), None),
        "TC AnB+": (TransferClassifier(source, random_state=seed, **ANB_PLUS), None),
        "TC tuned": (
            TransferClassifier(source, random_state=seed, memory=memory),
            TC_GRID,
        ),
    }


BASELINES = ("scratch tuned", "scratch default", "LR raw tuned", "LP penult tuned")


def run_one(task, seed, memory):
    d = T.load_task(task, seed)
    cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    rows = {}
    for name, (est, grid) in methods(task, seed, memory).items():
        t0 = time.perf_counter()
        if grid is not None:
            est = GridSearchCV(est, grid, cv=cv, error_score="raise").fit(
                d.X_target, d.y_target
            )
        else:
            est.fit(d.X_target, d.y_target)
        fit_s = time.perf_counter() - t0
        acc = float(np.mean(est.predict(d.X_test) == d.y_test))
        extra = str(est.best_params_) if grid is not None else ""
        rows[name] = (acc, fit_s, extra)
    return rows


def speed(seeds):
    """The issue's grid (freeze x cut) and a probe-only grid, 20 rows."""
    from sktransfer import TransferClassifier

    source = T.source_model("parity")
    for title, search_grid in SPEED_GRIDS.items():
        print(
            f"\nspeed, {title}: GridSearchCV over {search_grid} (6 candidates x "
            f"{FOLDS} folds + refit), 20 rows (parity), memory= in a fresh folder"
        )
        times = []
        for seed in seeds:
            d = T.load_task("parity", seed)
            cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
            memory = tempfile.mkdtemp(prefix="bench_transfer_speed_")
            try:
                est = TransferClassifier(source, random_state=seed, memory=memory)
                t0 = time.perf_counter()
                grid = GridSearchCV(est, search_grid, cv=cv)
                grid.fit(d.X_target, d.y_target)
                times.append(time.perf_counter() - t0)
            finally:
                shutil.rmtree(memory, ignore_errors=True)
            print(
                f"  seed {seed}: {times[-1]:5.1f} s (best {grid.best_params_}, "
                f"test {grid.score(d.X_test, d.y_test):.3f})"
            )
        print(f"  median {np.median(times):.1f} s (target: under 10 s on 2 cores)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(T.PANEL))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--speed-only", action="store_true", help="only the grid-search timings"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    seeds = [0] if args.quick else list(range(args.seeds))
    tasks = args.tasks.split(",")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    start = time.perf_counter()
    import sktransfer

    print(f"sktransfer from {os.path.dirname(sktransfer.__file__)}")
    print(f"load average at start: {os.getloadavg()}  (cpus: {os.cpu_count()})")
    t0 = time.perf_counter()
    for task in tasks:
        T.source_model(task)
    print(f"sources trained in {time.perf_counter() - t0:.1f} s")
    memory = tempfile.mkdtemp(prefix="bench_transfer_")
    results = {}  # task -> method -> list of (acc, seconds, extra)
    if args.speed_only:
        tasks = []
    try:
        # tiny linear problems: BLAS threads only cost (same for all methods)
        with threadpool_limits(1, user_api="blas"):
            for task in tasks:
                for seed in seeds:
                    rows = run_one(task, seed, memory)
                    for name, row in rows.items():
                        results.setdefault(task, {}).setdefault(name, []).append(row)
                    if args.verbose:
                        for name, row in rows.items():
                            acc, secs, extra = row
                            print(
                                f"  {task} {seed} {name:16s} {acc:.3f} "
                                f"{secs:5.1f}s {extra}"
                            )
                    print(
                        f"done {task} seed {seed} "
                        f"({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
    finally:
        shutil.rmtree(memory, ignore_errors=True)
    if results:
        report(results, tasks, seeds)
    with threadpool_limits(1, user_api="blas"):
        speed(seeds)
    print(
        f"\nwall time {time.perf_counter() - start:.0f} s; "
        f"load average at end: {os.getloadavg()}"
    )


def report(results, tasks, seeds):
    names = list(next(iter(results.values())))
    print(
        f"\ntest accuracy, mean ± std over seeds {seeds}; mean fit time "
        f"(grids: every candidate x {FOLDS} folds + refit)"
    )
    print(f"{'method':18s}" + "".join(f"{t:>26s}" for t in tasks))
    for name in names:
        line = f"{name:18s}"
        for t in tasks:
            a = np.array([r[0] for r in results[t][name]])
            s = np.array([r[1] for r in results[t][name]])
            line += f"   {a.mean():.3f} ± {a.std():.3f} {s.mean():6.1f}s"
        print(line)

    def mean(t, name):
        return float(np.mean([r[0] for r in results[t][name]]))

    print("\nper task (points):")
    checks = []
    for t in tasks:
        best_name = max(BASELINES, key=lambda n: mean(t, n))
        best = mean(t, best_name)
        tuned, default = mean(t, "TC tuned"), mean(t, "TC default")
        probe = mean(t, "LP penult tuned")
        scratch = max(mean(t, "scratch tuned"), mean(t, "scratch default"))
        lpft = mean(t, "TC LP-FT")
        print(
            f"  {t:8s} tuned - best baseline ({best_name}) {100 * (tuned - best):+5.1f}"
            f" | default - linear probe {100 * (default - probe):+5.1f}"
            f" | tuned - scratch {100 * (tuned - scratch):+5.1f}"
            f" | default - scratch {100 * (default - scratch):+5.1f}"
            f" | LP-FT - probe {100 * (lpft - default):+5.1f}"
        )
        checks += [
            (f"{t}: tuned >= best baseline - 0.5", tuned >= best - 0.005),
            (f"{t}: default >= linear probe - 1", default >= probe - 0.01),
            (
                f"{t}: tuned, default >= scratch - 0.5",
                min(tuned, default) >= scratch - 0.005,
            ),
            (f"{t}: LP-FT >= probe alone (mean)", lpft >= default - 1e-9),
        ]
        if t == "parity":
            checks.append((f"{t}: tuned >= scratch + 8", tuned >= scratch + 0.08))
    print("\ntargets:")
    for text, ok in checks:
        print(f"  [{'x' if ok else ' '}] {text}")
    for t in tasks:
        chosen = [r[2] for r in results[t]["TC tuned"]]
        print(f"  {t} TC tuned chose: {chosen}")


if __name__ == "__main__":
    main()
