"""Scale-out: grid searches on worker processes, and tf.distribute strategies.

A grid search over freeze depth is the signature use of TransferClassifier,
and it is embarrassingly parallel. These tests check that it gives the same
numbers wherever the fits run:

* with joblib's default (loky) process pool and on a Dask
  ``LocalCluster(processes=True)``, the cross-validation scores of every
  candidate and split equal the sequential ones (every random op is seeded
  from ``random_state``, so nothing may depend on which process or thread
  drew from a global RNG first), for ``pretrained`` given as a ``.keras``
  path (read by the workers from the shared filesystem), as a fitted
  PretrainedClassifier and as a ``keras.Model`` (both travel in the pickle);
* a worker never writes next to the user's source file;
* a one-device ``MirroredStrategy`` builds, trains and predicts, the
  estimators carrying it pickle to workers and clones share it;
* ``examples/plot_dask_grid_search.py`` runs in its small mode.

All three ways of passing the source hold the same weights (the file is the
saved fitted estimator), so a single sequential search is the reference for
all of them. Networks, grids and data are tiny: the module is about process
boundaries, not accuracy.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from sktransfer import PretrainedClassifier, TransferClassifier

#: end-to-end runs (whole scripts, worker processes): the slow job of
#: .ci/run (`python -m pytest -q -m slow`), not the main suite
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
GRID = {"freeze": [0, 1, "all"]}
N_TARGET = 120  # 80 training rows per fold of 3
# a seeded Dropout in the new head: the random op most likely to differ
# between processes if anything drew from a global RNG
SETTINGS = dict(
    random_state=0,
    epochs=8,
    learning_rate=1e-2,
    batch_size=16,
    early_stopping=False,
    head_hidden_layer_sizes=(16,),
    head_dropout=0.2,
)
SOURCE_KINDS = ("path", "estimator", "model")


def _search(pretrained, n_jobs=None, grid=GRID, cv=3, **params):
    estimator = TransferClassifier(pretrained, **{**SETTINGS, **params})
    return GridSearchCV(estimator, grid, cv=cv, n_jobs=n_jobs, refit=False)


def _scores(search):
    """Mean and per-split test scores, one row per candidate."""
    results = search.cv_results_
    splits = [results[f"split{i}_test_score"] for i in range(search.n_splits_)]
    return np.column_stack([results["mean_test_score"], *splits])


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def target(digits_target):
    X, y = digits_target
    return X[:N_TARGET], y[:N_TARGET]


@pytest.fixture(scope="module")
def source_file(pretrained_source, tmp_path_factory):
    """The session source saved alone in a folder of its own."""
    path = tmp_path_factory.mktemp("distributed_source") / "source.keras"
    pretrained_source.save(path)
    return str(path)


@pytest.fixture(scope="module")
def sources(source_file, pretrained_source):
    return {
        "path": source_file,
        "estimator": pretrained_source,
        "model": pretrained_source.model_,
    }


@pytest.fixture(scope="module")
def sequential(source_file, target):
    """The reference: the grid search run in this process, one fit at a time."""
    search = _search(source_file).fit(*target)
    scores = _scores(search)
    assert np.isfinite(scores).all()
    # not degenerate: some candidate learns the new task
    assert scores[:, 0].max() > 0.5
    return scores


@pytest.fixture(scope="module")
def loky_pool():
    """joblib's default backend; its reusable worker pool is shut down after."""
    yield "loky"
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


@pytest.fixture(scope="module")
def dask_client():
    """A two-process Dask cluster, closed (workers joined) after the module."""
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


# ------------------------------------------------------------ process pools
@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_loky_grid_search_equals_sequential(
    kind, sources, target, sequential, loky_pool
):
    with joblib.parallel_config(backend=loky_pool):
        search = _search(sources[kind], n_jobs=2).fit(*target)
    np.testing.assert_allclose(_scores(search), sequential, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_dask_grid_search_equals_sequential(
    kind, sources, source_file, target, sequential, dask_client
):
    from dask.distributed import get_task_stream

    folder = Path(source_file).parent
    listing, digest = sorted(os.listdir(folder)), _sha256(source_file)
    with get_task_stream(dask_client) as stream:
        with joblib.parallel_config(backend="dask"):
            search = _search(sources[kind], n_jobs=2).fit(*target)
    np.testing.assert_allclose(_scores(search), sequential, rtol=0, atol=1e-6)
    # the fits ran on the cluster's worker processes, both of them
    workers = set(dask_client.scheduler_info()["workers"])
    used = {task["worker"] for task in stream.data}
    assert used == workers, (used, workers)
    # nothing was written next to the user's file, and the file is unchanged
    assert sorted(os.listdir(folder)) == listing
    assert _sha256(source_file) == digest


def test_pickled_estimator_carries_the_source(pretrained_source, target):
    """What a worker receives: a fitted source inside the pickle, fit there."""
    X, y = target
    estimator = TransferClassifier(pretrained_source, freeze=1, **SETTINGS)
    received = pickle.loads(pickle.dumps(estimator))
    assert received.pretrained is not pretrained_source
    np.testing.assert_array_equal(
        received.fit(X, y).predict_proba(X), clone(estimator).fit(X, y).predict_proba(X)
    )


# ----------------------------------------------------- tf.distribute strategy
@pytest.fixture(scope="module")
def tf():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute strategies need Keras' TensorFlow backend")
    return pytest.importorskip("tensorflow")


def _one_device(tf):
    return tf.distribute.MirroredStrategy(["/cpu:0"])


# Under a MirroredStrategy an epoch costs most of a second on CPU whatever its
# size, so these fits are short: few epochs at a high learning rate.
@pytest.fixture(scope="module")
def mirrored_source(tf, digits_source):
    """A source pretrained under a one-device MirroredStrategy."""
    X, y = digits_source
    strategy = _one_device(tf)
    source = PretrainedClassifier(
        hidden_layer_sizes=(32, 16),
        learning_rate=1e-2,
        epochs=8,
        early_stopping=False,
        random_state=0,
        distribution_strategy=strategy,
    ).fit(X[:400], y[:400])
    return source, strategy


def test_mirrored_strategy_pretrained(mirrored_source, digits_source):
    source, strategy = mirrored_source
    X, y = digits_source
    # built and trained under the strategy: its variables are mirrored
    assert source.model_.distribute_strategy is strategy
    assert type(source.model_.weights[0].value).__name__ == "MirroredVariable"
    predictions = source.predict(X[400:])
    assert np.unique(predictions).size == 5
    assert np.mean(predictions == y[400:]) > 0.85


def test_mirrored_strategy_transfer(tf, mirrored_source, digits_target):
    source, source_strategy = mirrored_source
    X, y = digits_target
    # another strategy object than the source's: its weights are read across
    strategy = _one_device(tf)
    clf = TransferClassifier(
        source,
        freeze=1,
        learning_rate=1e-2,
        epochs=8,
        early_stopping=False,
        random_state=0,
        distribution_strategy=strategy,
    ).fit(X[:200], y[:200])
    assert clf.model_.distribute_strategy is strategy
    predictions = clf.predict(X[200:])
    assert np.unique(predictions).size == 5
    assert np.mean(predictions == y[200:]) > 0.6
    assert source.model_.distribute_strategy is source_strategy  # untouched


def test_strategy_is_shared_by_clones_and_travels_in_pickles(
    tf, mirrored_source, digits_target
):
    source, strategy = mirrored_source
    X, y = digits_target
    clf = TransferClassifier(
        source, freeze=1, epochs=2, random_state=0, distribution_strategy=strategy
    )
    # a handle on devices, not state: clones use the same object (a copy is
    # another strategy, and the source's variables belong to this one)
    assert clone(clf).distribution_strategy is strategy
    clf.fit(X[:100], y[:100])
    restored = pickle.loads(pickle.dumps(clf))
    rebuilt = restored.distribution_strategy
    assert isinstance(rebuilt, tf.distribute.MirroredStrategy)
    assert rebuilt.extended.worker_devices == strategy.extended.worker_devices
    np.testing.assert_allclose(
        restored.predict_proba(X[100:200]), clf.predict_proba(X[100:200]), atol=1e-6
    )
    # the unpickled estimator refits under its rebuilt strategy
    assert restored.fit(X[:100], y[:100]).model_.distribute_strategy is rebuilt


def test_loky_grid_search_with_strategy_equals_sequential(
    mirrored_source, target, loky_pool
):
    source, strategy = mirrored_source
    grid = {"freeze": [0, "all"]}
    params = dict(grid=grid, cv=2, epochs=2, distribution_strategy=strategy)
    reference = _scores(_search(source, **params).fit(*target))
    with joblib.parallel_config(backend=loky_pool):
        search = _search(source, n_jobs=2, **params).fit(*target)
    np.testing.assert_allclose(_scores(search), reference, rtol=0, atol=1e-6)


# ------------------------------------------------------------------- example
def test_dask_example_runs_small(tmp_path, run_example):
    pytest.importorskip("dask.distributed")
    pytest.importorskip("matplotlib")
    result = run_example("plot_dask_grid_search.py")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same scores as the sequential search: True" in result.stdout
    assert (tmp_path / "plot_dask_grid_search.png").stat().st_size > 10_000
