"""A grid search over a frozen base, with and without the feature cache on disk.

``GridSearchCV`` over the new head of a frozen MobileNetV3Small base (the
calibrated, untrained network and random-image task of ``bench_cache.py``,
given as a saved ``.keras`` file, ``cut=None, freeze="all"``): 2 head sizes
(``head_hidden_layer_sizes`` ``()`` and ``(32,)``) x 3 learning rates = 6
candidates x 3 folds, refitted on all the data as scikit-learn does by
default. Once with ``memory=None`` and once with ``memory=`` a temporary
directory, cleared before the run so that its first candidate pays for the
features of every fold.

Without ``memory`` each of the 19 fits computes the base's features for its
training rows and scores its held-out fold through the whole network. With
``memory`` the features of a (frozen part, rows) pair are computed once: the
first candidate's fits compute them, every later candidate reads them for
training and for scoring.

Prints the wall times, the ratio (target >= 2x, aim 3x), that both searches
chose the same candidate, and with ``--profile`` where the time of the run
with ``memory`` goes (cProfile, sorted by cumulative time).

Run: ``python benchmarks/bench_grid.py [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from bench_cache import EPOCHS, make_task  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from sktransfer import TransferClassifier  # noqa: E402

GRID = {
    "head_hidden_layer_sizes": [(), (32,)],
    "learning_rate": [3e-4, 1e-3, 3e-3],
}
FOLDS = 3
TARGET_RATIO = 2.0
AIM_RATIO = 3.0


def search(path, X, y, memory):
    estimator = TransferClassifier(
        path,
        cut=None,
        freeze="all",
        epochs=EPOCHS,
        early_stopping=False,
        memory=memory,
        random_state=0,
    )
    grid = GridSearchCV(
        estimator, GRID, cv=StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    )
    start = time.perf_counter()
    grid.fit(X, y)
    return time.perf_counter() - start, grid


def cache_entries(location):
    """Number of results joblib stored under ``location``."""
    return sum("output.pkl" in files for _, _, files in os.walk(location))


def main(profile=False):
    base, X, y, X_test, y_test = make_task()
    folder = tempfile.mkdtemp(prefix="sktransfer-bench-grid-")
    try:
        path = os.path.join(folder, "base.keras")
        base.save(path)
        n_fits = len(GRID["head_hidden_layer_sizes"]) * len(GRID["learning_rate"])
        print(
            f"GridSearchCV: {n_fits} candidates x {FOLDS} folds + refit on "
            f"{len(X)} images {X.shape[1:]}, frozen {base.name} from a .keras "
            f"file, {EPOCHS} epochs per fit"
        )

        plain, grid_plain = search(path, X, y, None)
        print(f"memory=None      : {plain:7.1f} s")

        location = os.path.join(folder, "cache")
        shutil.rmtree(location, ignore_errors=True)  # the first candidate pays
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        cached, grid_cached = search(path, X, y, location)
        if profiler is not None:
            profiler.disable()
        print(
            f"memory=<tempdir> : {cached:7.1f} s  "
            f"({cache_entries(location)} feature sets stored)"
        )

        for name, grid in (("memory=None", grid_plain), ("memory", grid_cached)):
            labels = grid.predict(X_test)
            if np.unique(labels).size < 2:
                raise RuntimeError(f"{name}: predictions are all one class")
            print(
                f"{name:16s} : best {grid.best_params_}, cv accuracy "
                f"{grid.best_score_:.3f}, test accuracy "
                f"{np.mean(labels == y_test):.3f}"
            )
        same = grid_plain.best_params_ == grid_cached.best_params_
        gap = np.max(
            np.abs(
                grid_plain.cv_results_["mean_test_score"]
                - grid_cached.cv_results_["mean_test_score"]
            )
        )
        print(f"same best candidate: {same}; largest cv-score difference {gap:.4f}")

        ratio = plain / cached
        verdict = (
            "OK (aim met)"
            if ratio >= AIM_RATIO
            else "OK"
            if ratio >= TARGET_RATIO
            else "MISSED"
        )
        print()
        print(
            f"grid search with vs without memory: {ratio:4.2f}x faster "
            f"(target >= {TARGET_RATIO:g}x, aim {AIM_RATIO:g}x) {verdict}"
        )
        if profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
            stats.print_stats(r"sktransfer|cloning|trainer\.py.*\(fit\)", 30)
            print("\nwhere the run with memory spends its time:\n" + out.getvalue())
        return ratio
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", action="store_true", help="profile the run with memory"
    )
    main(parser.parse_args().profile)
