"""A freeze-depth grid search, sequential versus two Dask worker processes.

``GridSearchCV(TransferClassifier(pretrained=<.keras file>), {"freeze": [0, 1,
2, "all"]}, cv=3, refit=False)``: 12 fits on a few-shot digits task (digits
5-9, a source pretrained on digits 0-4), run in this process one fit at a time
and under ``joblib.parallel_config(backend="dask")`` on a
``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``. Every
process has run one warm-up fit first, so neither side pays TensorFlow's
start-up.

The four searches (sequential, Dask, and the trivial grid both ways) run in
rounds whose order alternates (``_common.py``). Prints, as medians over
``--repeats`` rounds:

* the wall times and the speed-up ``sequential / dask`` (ideal: 2x);
* the per-fit overhead of the cluster, two ways: the excess over a perfect
  split, ``(dask - sequential / 2) / 12``, and the scheduling cost alone,
  measured with a grid of 12 trivial fits (``DummyClassifier``) on the same
  cluster;
* that both searches give the same cross-validation scores;
* the cores each search kept busy (CPU seconds of this process, or of the
  workers, per wall-clock second), the CPU seconds per fit, and the machine's
  load average: on a machine shared with other work, or when one fit already
  keeps several cores busy, two workers cannot reach 2x.

``--tf-threads N`` sets ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS``
in the workers (default: TensorFlow's own choice, one thread per core in each
worker); two workers on two cores then compete for them.

Run: ``python benchmarks/bench_scale.py [--repeats 3] [--epochs 15]
[--tf-threads N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import joblib  # noqa: E402
import numpy as np  # noqa: E402
from _common import alternate, load_line  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from sktransfer import PretrainedClassifier, TransferClassifier  # noqa: E402
from sktransfer.datasets import load_digit_classes  # noqa: E402

FREEZE = [0, 1, 2, "all"]
FOLDS = 3
N_FITS = len(FREEZE) * FOLDS
N_WORKERS = 2
SHOTS = 30  # labelled target digits per class


def warm_up():
    """One tiny fit: the first fit in a process pays TensorFlow's set-up."""
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 8).astype("float32"), np.arange(40) % 2
    PretrainedClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)


def make_task(folder, epochs):
    X_source, y_source = load_digit_classes(range(5))
    source = PretrainedClassifier(
        hidden_layer_sizes=(64, 48, 32),
        learning_rate=3e-3,
        epochs=30,
        random_state=0,
    ).fit(X_source, y_source)
    path = os.path.join(folder, "source.keras")
    source.save(path)
    X, y = load_digit_classes(range(5, 10))
    rng = np.random.RandomState(0)
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), SHOTS, replace=False) for c in range(5, 10)]
    )
    estimator = TransferClassifier(
        path, epochs=epochs, learning_rate=1e-2, random_state=0
    )
    return estimator, X[rows], y[rows]


def _cpu_seconds(client):
    """CPU seconds used so far by this process, or by all of ``client``'s workers."""
    if client is None:
        return time.process_time()
    return sum(client.run(time.process_time).values())


def timed_search(estimator, grid, X, y, client=None):
    """Wall time, cores kept busy (CPU s per wall s) and the fitted search.

    ``client=None`` runs the search here, one fit at a time; otherwise on
    ``client``'s workers through joblib's Dask backend.
    """
    search = GridSearchCV(estimator, grid, cv=FOLDS, refit=False, n_jobs=None)
    cpu = _cpu_seconds(client)
    start = time.perf_counter()
    if client is None:
        search.fit(X, y)
    else:
        search.set_params(n_jobs=-1)
        with joblib.parallel_config(backend="dask"):
            search.fit(X, y)
    wall = time.perf_counter() - start
    return wall, (_cpu_seconds(client) - cpu) / wall, search


def main(repeats=3, epochs=15, tf_threads=None):
    from dask.distributed import Client, LocalCluster

    env = {}
    if tf_threads:
        env = {
            "TF_NUM_INTRAOP_THREADS": str(tf_threads),
            "TF_NUM_INTEROP_THREADS": str(tf_threads),
        }
    with tempfile.TemporaryDirectory(prefix="sktransfer-bench-scale-") as folder:
        estimator, X, y = make_task(folder, epochs)
        grid = {"freeze": FREEZE}
        trivial = DummyClassifier(random_state=0)
        trivial_grid = {"strategy": ["prior", "most_frequent", "stratified", "uniform"]}
        print(
            f"GridSearchCV: {len(FREEZE)} freeze values x {FOLDS} folds = {N_FITS} "
            f"fits of TransferClassifier (source from a .keras file) on {len(y)} "
            f"digits, {epochs} epochs each; {os.cpu_count()} CPU cores"
        )
        print(
            f"Dask: LocalCluster({N_WORKERS} worker processes x 1 thread), "
            f"TensorFlow threads per worker: {tf_threads or 'default'}"
        )
        with (
            LocalCluster(
                n_workers=N_WORKERS,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=env,
            ) as cluster,
            Client(cluster) as client,
        ):
            warm_up()
            client.run(warm_up)
            print(load_line("before"))
            names = ("sequential", "dask", "trivial seq", "trivial dask")
            runs = alternate(
                {
                    "sequential": lambda: timed_search(estimator, grid, X, y),
                    "dask": lambda: timed_search(estimator, grid, X, y, client),
                    "trivial seq": lambda: timed_search(trivial, trivial_grid, X, y),
                    "trivial dask": lambda: timed_search(
                        trivial, trivial_grid, X, y, client
                    ),
                },
                repeats,
                warmup=0,  # every process has run warm_up() above
                measure=lambda result: result[0],
            )
            times = runs.values
            busy = {
                name: [cores for _, cores, _ in runs.results[name]] for name in names
            }
            same = all(
                np.allclose(
                    seq[2].cv_results_["mean_test_score"],
                    dask[2].cv_results_["mean_test_score"],
                    rtol=0,
                    atol=1e-6,
                )
                for seq, dask in zip(runs.results["sequential"], runs.results["dask"])
            )
            for repeat in range(repeats):
                print(
                    f"  run {repeat + 1}: sequential {times['sequential'][repeat]:6.2f}"
                    f" s ({busy['sequential'][repeat]:.2f} cores busy), dask "
                    f"{times['dask'][repeat]:6.2f} s ({busy['dask'][repeat]:.2f} "
                    "cores busy); trivial grid: sequential "
                    f"{times['trivial seq'][repeat]:5.3f} s, dask "
                    f"{times['trivial dask'][repeat]:5.3f} s"
                )
            print(load_line("after"))
        median = {name: statistics.median(values) for name, values in times.items()}
        ratio = runs.ratio("sequential", "dask")
        excess = (median["dask"] - median["sequential"] / N_WORKERS) / N_FITS
        scheduling = (median["trivial dask"] - median["trivial seq"]) / N_FITS
        print()
        print(
            f"median of {repeats}: sequential {median['sequential']:.2f} s "
            f"({median['sequential'] / N_FITS:.2f} s per fit), "
            f"{N_WORKERS} Dask workers {median['dask']:.2f} s"
        )
        print(
            f"speed-up sequential / dask (median of per-round ratios): {ratio:.2f}x "
            f"(ideal {N_WORKERS:.0f}x; efficiency {ratio / N_WORKERS:.0%})"
        )
        print(
            f"per-fit overhead over a perfect split, (dask - seq/{N_WORKERS})/"
            f"{N_FITS}: {excess * 1000:.0f} ms"
        )
        print(
            f"per-fit scheduling cost (trivial fits, dask - sequential)/{N_FITS}: "
            f"{scheduling * 1000:.1f} ms"
        )
        print(
            "cores kept busy (median): sequential "
            f"{statistics.median(busy['sequential']):.2f}, Dask workers "
            f"{statistics.median(busy['dask']):.2f}, of {os.cpu_count()}"
        )
        cpu_per_fit = {
            name: statistics.median(
                wall * cores / N_FITS
                for wall, cores in zip(times[name], busy[name], strict=True)
            )
            for name in ("sequential", "dask")
        }
        print(
            f"CPU seconds per fit (median): sequential {cpu_per_fit['sequential']:.2f}"
            f", on a worker {cpu_per_fit['dask']:.2f}"
        )
        print(f"same cross-validation scores sequential and on Dask: {same}")
        return ratio, excess, scheduling


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--tf-threads",
        type=int,
        default=None,
        help="TensorFlow intra- and inter-op threads in each worker",
    )
    options = parser.parse_args()
    main(options.repeats, options.epochs, options.tf_threads)
