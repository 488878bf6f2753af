"""
Grid search over freeze depth on a Dask cluster
===============================================

How many layers of a pretrained network should stay frozen? It depends on the
data, so the answer is a hyperparameter, found by cross-validation: every
candidate depth is trained once per fold, each fit independent of the others.
That is embarrassingly parallel, and ``joblib``'s Dask backend hands those
fits to the workers of a Dask cluster without changing a line of the
scikit-learn code.

This example starts a small local cluster (two worker *processes*, as a real
cluster would have separate machines), pretrains a source network on digits
0-4, saves it, and searches the freeze depth of a
:class:`~sktransfer.TransferClassifier` for digits 5-9 from a few labelled
examples, with the fits running on the workers. It shows which worker ran
each fit, checks that the scores equal those of a sequential search (every
random op is seeded from ``random_state``, so the result does not depend on
where a fit runs), and plots the cross-validated accuracy against the freeze
depth.

Run ``python examples/plot_dask_grid_search.py [--small] [--out FOLDER]``.
"""

# %%
# Setup
# -----
# ``SKTRANSFER_EXAMPLE_SMALL=1`` (or ``--small``) runs a reduced version for
# continuous integration; ``SKTRANSFER_EXAMPLE_OUT`` (or ``--out``) is the
# folder the figure goes to.
#
# Dask starts its worker processes with multiprocessing's ``spawn`` method,
# which imports this script once more in every new process (under the name
# ``__mp_main__``). Everything that *does* something is therefore guarded by
# ``if MAIN:``, so that a worker only picks up the definitions. In a notebook
# the guard is always true.
import argparse
import os
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from dask.distributed import Client, LocalCluster, get_task_stream, get_worker
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from sktransfer import PretrainedClassifier, TransferClassifier
from sktransfer.datasets import load_digit_classes

MAIN = __name__ == "__main__"

parser = argparse.ArgumentParser(description="Freeze-depth grid search on Dask")
parser.add_argument("--small", action="store_true", help="a quick reduced run")
parser.add_argument("--out", help="folder for the figure")
args, _ = parser.parse_known_args()  # tolerate a notebook kernel's arguments

SMALL = args.small or os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = Path(args.out or os.environ.get("SKTRANSFER_EXAMPLE_OUT", "."))

SHOTS = 20 if SMALL else 30  # labelled target examples per class
FOLDS = 3 if SMALL else 5
EPOCHS = 10 if SMALL else 40
LEARNING_RATE = 1e-2  # few examples, few epochs: a fast learning rate
FREEZE = [0, 1, 2, "all"]


def warm_up():
    """One tiny fit: the first fit in a process pays TensorFlow's set-up."""
    rng = np.random.RandomState(0)
    X, y = rng.rand(40, 8).astype("float32"), np.arange(40) % 2
    PretrainedClassifier(hidden_layer_sizes=(4,), epochs=1, random_state=0).fit(X, y)


# Two extra "scorers" record where and when each fit was scored. Scorers run
# in the same task as the fit they score, so the search's ``cv_results_`` then
# says which worker trained every (candidate, fold), and when it finished.
def worker_id(address):
    """A number standing for a worker's address (scores must be numbers)."""
    return float(zlib.crc32(address.encode()))


def worker_of_fit(estimator, X, y):
    """Which Dask worker runs this task (-1 outside one)."""
    try:
        return worker_id(get_worker().address)
    except ValueError:  # not inside a Dask worker
        return -1.0


def scored_at(estimator, X, y):
    """The wall-clock time of scoring (seconds since the epoch)."""
    return time.time()


def accuracy(estimator, X, y):
    return accuracy_score(y, estimator.predict(X))


SCORING = {"accuracy": accuracy, "worker": worker_of_fit, "scored_at": scored_at}

# %%
# Start a cluster
# ---------------
# A ``LocalCluster`` runs a scheduler and two single-threaded worker
# processes on this machine. Against a real cluster, only this cell changes:
#
# * an existing cluster: ``client = Client("tcp://scheduler-address:8786")``;
# * an HPC batch system: ``from dask_jobqueue import SLURMCluster``, then
#   ``cluster = SLURMCluster(cores=4, processes=1, memory="16GB")``,
#   ``cluster.scale(jobs=8)`` and ``client = Client(cluster)`` (PBS, SGE,
#   LSF... work the same way);
# * Kubernetes: ``from dask_kubernetes.operator import KubeCluster``,
#   ``cluster = KubeCluster(name="sktransfer", n_workers=8)``.
#
# Give each worker process one thread: TensorFlow already uses the cores of
# its machine within a fit. Where several workers share a machine, split its
# cores between them, e.g. ``LocalCluster(..., env={"TF_NUM_INTRAOP_THREADS":
# "4"})``. On GPU machines, run one worker per GPU, or one worker per machine
# with ``distribution_strategy=tf.distribute.MirroredStrategy()`` on the
# estimator to train each fit across its GPUs (the strategy travels to the
# worker and is rebuilt there). The workers need the same Python packages as
# this process.
if MAIN:
    script_start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = Client(cluster)
    workers = sorted(client.scheduler_info()["workers"])
    id_to_worker = {worker_id(w): w for w in workers}
    # import TensorFlow and run a tiny fit on every worker now, so that the
    # first grid-search fits do not pay for TensorFlow's set-up (seconds)
    client.run(warm_up)
    print(f"cluster with {len(workers)} workers: {', '.join(workers)}")

# %%
# Pretrain and save the source network
# ------------------------------------
# The source task is digits 0-4, with plenty of labelled examples. The saved
# ``.keras`` file is what the workers load; here it goes to a temporary
# folder, which the local workers see. On a real cluster it must be on a
# filesystem they all see (NFS, a shared home). Alternatively pass the fitted
# estimator itself as ``pretrained=``: it then travels to the workers inside
# the pickled estimator. Workers only read the file; every fit trains a private
# copy of the network.
if MAIN:
    X_source, y_source = load_digit_classes(range(5))
    source = PretrainedClassifier(
        hidden_layer_sizes=(64, 48, 32),
        learning_rate=3e-3,
        epochs=15 if SMALL else 100,
        random_state=0,
    ).fit(X_source, y_source)
    # removed at the end, or when the script exits early
    source_folder = tempfile.TemporaryDirectory(prefix="sktransfer-dask-example-")
    source_path = os.path.join(source_folder.name, "source.keras")
    source.save(source_path)
    print(
        f"source: {len(y_source)} digits 0-4, training accuracy "
        f"{source.score(X_source, y_source):.3f}, saved to {source_path}"
    )

# %%
# The target task: digits 5-9 from a few labelled examples
# --------------------------------------------------------
# The source network never saw these classes. ``SHOTS`` labelled examples per
# class are the training set; the other digits of 5-9 are the test set.
if MAIN:
    X_target, y_target = load_digit_classes(range(5, 10))
    rng = np.random.RandomState(0)
    labelled = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_target == c), SHOTS, replace=False)
            for c in range(5, 10)
        ]
    )
    test = np.setdiff1d(np.arange(len(y_target)), labelled)
    X_train, y_train = X_target[labelled], y_target[labelled]
    X_test, y_test = X_target[test], y_target[test]
    print(f"target: {len(y_train)} labelled digits 5-9, {len(y_test)} to test on")

# %%
# The grid search, on the cluster
# -------------------------------
# ``joblib.parallel_config(backend="dask")`` sends the fits of ``GridSearchCV``
# (``len(FREEZE)`` candidates x ``FOLDS`` folds) to the workers. ``freeze``
# counts the base's Dense layers from the input: 0 fine-tunes all of them,
# ``"all"`` trains the new head alone. ``get_task_stream`` records what ran
# where and when.
if MAIN:
    search = GridSearchCV(
        TransferClassifier(
            source_path, epochs=EPOCHS, learning_rate=LEARNING_RATE, random_state=0
        ),
        {"freeze": FREEZE},
        cv=StratifiedKFold(FOLDS, shuffle=True, random_state=0),
        scoring=SCORING,
        refit="accuracy",
        n_jobs=-1,
    )
    t0 = time.perf_counter()
    with get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        search.fit(X_train, y_train)
    dask_time = time.perf_counter() - t0
    print(f"grid search on the cluster: {dask_time:.1f} s")

# %%
# Where each fit ran
# ------------------
# The ``worker`` "score" of every (candidate, fold) names the worker that
# trained it; its ``scored_at`` time is the end of one task of the task
# stream, which gives the fit's start and end. (joblib sends one fit per task
# here; it batches only calls that take under 0.2 s.) The refit on all the
# training data runs in this process.
if MAIN:
    results = search.cv_results_
    computes = [
        (task["worker"], part["start"], part["stop"])
        for task in stream.data
        for part in task["startstops"]
        if part["action"] == "compute"
    ]
    t_first = min(start for _, start, _ in computes)
    rows = []
    for i, params in enumerate(results["params"]):
        for fold in range(FOLDS):
            worker = id_to_worker[results[f"split{fold}_test_worker"][i]]
            when = results[f"split{fold}_test_scored_at"][i]
            # scoring ends the task: the task on that worker that ended then
            # (the task stream's clock may be a few milliseconds off)
            _, start, stop = min(
                (c for c in computes if c[0] == worker),
                key=lambda c, when=when: abs(c[2] - when),
            )
            rows.append(
                {
                    "freeze": str(params["freeze"]),
                    "fold": fold,
                    "worker": worker,
                    "start (s)": start - t_first,
                    "end (s)": stop - t_first,
                    "accuracy": results[f"split{fold}_test_accuracy"][i],
                }
            )
    placement = pd.DataFrame(rows).sort_values("start (s)")
    print(placement.to_string(index=False, float_format="%.2f"))
    print("\nfits per worker:")
    print(placement["worker"].value_counts().sort_index().to_string())

# %%
# The cross-validation table
# --------------------------
if MAIN:
    table = pd.DataFrame(
        {
            "freeze": [str(p["freeze"]) for p in results["params"]],
            "mean accuracy": results["mean_test_accuracy"],
            "std": results["std_test_accuracy"],
            "rank": results["rank_test_accuracy"],
            "mean fit time (s)": results["mean_fit_time"],
        }
    )
    print(table.to_string(index=False, float_format="%.3f"))
    best = search.best_params_["freeze"]
    print(
        f"chosen freeze={best!r}: test accuracy "
        f"{search.score(X_test, y_test):.3f} on {len(y_test)} unseen digits"
    )

# %%
# The same numbers as a sequential search
# ---------------------------------------
# Every fit seeds its initialisers, dropout and shuffling from
# ``random_state`` and touches no global random state, so the cluster's
# scores equal those of the same search run here, one fit at a time.
if MAIN:
    sequential = GridSearchCV(
        TransferClassifier(
            source_path, epochs=EPOCHS, learning_rate=LEARNING_RATE, random_state=0
        ),
        {"freeze": FREEZE},
        cv=StratifiedKFold(FOLDS, shuffle=True, random_state=0),
        scoring="accuracy",
        refit=False,
    )
    t0 = time.perf_counter()
    sequential.fit(X_train, y_train)
    sequential_time = time.perf_counter() - t0
    same = np.allclose(
        [results[f"split{k}_test_accuracy"] for k in range(FOLDS)],
        [sequential.cv_results_[f"split{k}_test_score"] for k in range(FOLDS)],
        rtol=0,
        atol=1e-6,
    )
    print(f"same scores as the sequential search: {same}")
    print(
        f"sequential {sequential_time:.1f} s, on {len(workers)} workers "
        f"{dask_time:.1f} s (the cluster's search includes the refit; see "
        "benchmarks/bench_scale.py for the scheduling overhead)"
    )

# %%
# Plot: accuracy against freeze depth, and the workers' timeline
# --------------------------------------------------------------
if MAIN:
    fig, (ax_score, ax_time) = plt.subplots(
        1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    positions = np.arange(len(FREEZE))
    ax_score.errorbar(
        positions,
        results["mean_test_accuracy"],
        yerr=results["std_test_accuracy"],
        marker="o",
        capsize=4,
    )
    ax_score.set_xticks(positions, [str(f) for f in FREEZE])
    ax_score.set_xlabel("freeze (frozen Dense layers of the source network)")
    ax_score.set_ylabel(f"{FOLDS}-fold cross-validated accuracy")
    ax_score.set_title(f"Digits 5-9 from {SHOTS} examples per class")
    ax_score.grid(alpha=0.3)

    lane = {w: i for i, w in enumerate(workers)}
    colors = dict(zip([str(f) for f in FREEZE], plt.cm.viridis([0.0, 0.35, 0.65, 0.9])))
    for row in placement.to_dict("records"):
        ax_time.barh(
            lane[row["worker"]],
            row["end (s)"] - row["start (s)"],
            left=row["start (s)"],
            height=0.6,
            color=colors[row["freeze"]],
            edgecolor="white",
        )
        ax_time.text(
            (row["start (s)"] + row["end (s)"]) / 2,
            lane[row["worker"]],
            f"fold {row['fold']}",
            ha="center",
            va="center",
            fontsize=7,
            color="white",
        )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax_time.legend(
        handles, [f"freeze={f}" for f in colors], fontsize=8, loc="upper center", ncol=4
    )
    ax_time.set_ylim(-0.5, len(workers) + 0.1)  # room for the legend on top
    ax_time.set_yticks(range(len(workers)), workers)
    ax_time.set_xlabel("seconds since the first fit started")
    ax_time.set_title("Which worker trained what, when")
    fig.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "plot_dask_grid_search.png"
    fig.savefig(path, dpi=100)
    print(f"figure written to {path}")

# %%
# Shut the cluster down
# ---------------------
if MAIN:
    client.close()
    cluster.close()
    source_folder.cleanup()
    print(f"total time: {time.perf_counter() - script_start:.0f} s")
