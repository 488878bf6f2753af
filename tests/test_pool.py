"""Pooled trainers (``_pool``): a repeated architecture reuses its traced
train step, and training through the pool is the same arithmetic as
training the network itself.

Routing any ``compile__*`` keyword turns pooling off, so
``compile__jit_compile=False`` (what the backend defaults already set on
TensorFlow) gives the unpooled fit to compare with.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from joblib import parallel_backend
from numpy.testing import assert_allclose
from sklearn.model_selection import GridSearchCV

from sktransfer import PretrainedClassifier, TransferClassifier, _pool
from sktransfer._network import build_default_network

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the pool serves TensorFlow"
)


def _pooled_trainers():
    return sum(len(v) for v in _pool._POOL.values())


@pytest.mark.parametrize(
    "params",
    [
        {},  # chunked epochs, no validation
        {"dropout": 0.3},  # seed generator states travel with the weights
        {"early_stopping": True, "validation_split": 0.2, "patience": 3},
    ],
    ids=["plain", "dropout", "early-stopping"],
)
def test_pooled_fit_equals_training_the_network_itself(iris, params):
    X, y = iris
    common = dict(hidden_layer_sizes=(16, 8), epochs=30, random_state=3, **params)
    unpooled = PretrainedClassifier(compile__jit_compile=False, **common).fit(X, y)
    first = PretrainedClassifier(**common).fit(X, y)  # a new trainer, or reused
    second = PretrainedClassifier(**common).fit(X, y)  # reused for sure
    expected = unpooled.predict_proba(X)
    assert_allclose(first.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert_allclose(second.predict_proba(X), expected, rtol=1e-5, atol=1e-6)
    assert first.history_.keys() == unpooled.history_.keys()
    assert_allclose(second.history_["loss"], unpooled.history_["loss"], rtol=1e-5)
    # the optimizer state comes back too: same step count and moments
    steps = int(unpooled.model_.optimizer.iterations.numpy())
    assert steps > 0
    assert int(second.model_.optimizer.iterations.numpy()) == steps
    for mine, theirs in zip(
        second.model_.optimizer.variables, unpooled.model_.optimizer.variables
    ):
        assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-5, atol=1e-7)


def test_a_repeated_architecture_reuses_one_trainer(iris):
    X, y = iris
    _pool.clear()
    for seed in range(3):
        PretrainedClassifier(hidden_layer_sizes=(7,), epochs=5, random_state=seed).fit(
            X, y
        )
    assert _pooled_trainers() == 1
    # another learning rate is the same trace (the rate is a variable) ...
    PretrainedClassifier(hidden_layer_sizes=(7,), epochs=5, learning_rate=0.01).fit(
        X, y
    )
    assert _pooled_trainers() == 1
    # ... another width is not
    PretrainedClassifier(hidden_layer_sizes=(9,), epochs=5).fit(X, y)
    assert _pooled_trainers() == 2


def test_key_separates_what_the_trace_depends_on():
    def network(units=4, activation="relu", seed=0):
        return build_default_network(
            (3,), 2, hidden_layer_sizes=(units,), activation=activation,
            dropout=0.0, seed=seed,
        )  # fmt: skip

    def key(model, optimizer=None, loss="sparse_categorical_crossentropy", spe=8):
        optimizer = optimizer or keras.optimizers.Adam(1e-3)
        return _pool.trainer_key(model, optimizer, loss, spe, {})

    base = key(network())
    assert base is not None
    assert key(network(seed=5)) == base  # other initial weights
    assert key(network(), keras.optimizers.Adam(0.1)) == base  # other rate
    assert key(network(units=5)) != base
    assert key(network(activation="tanh")) != base
    assert key(network(), keras.optimizers.SGD(1e-3)) != base
    assert key(network(), keras.optimizers.Adam(1e-3, beta_1=0.5)) != base
    assert key(network(), loss="binary_crossentropy") != base
    assert key(network(), spe=16) != base
    frozen = network()
    frozen.layers[1].trainable = False
    assert key(frozen) != base
    # routed compile keywords, custom layers and subclassed models: no pool
    assert (
        _pool.trainer_key(
            network(), keras.optimizers.Adam(), "mse", 1, {"jit_compile": False}
        )
        is None
    )

    class Scale(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((3,))
    custom = keras.Model(inputs, keras.layers.Dense(2)(Scale()(inputs)))
    assert key(custom) is None


def test_transfer_grid_through_the_pool_matches_unpooled(
    pretrained_source, digits_target
):
    """LP-FT folds train the same architecture: the pooled grid picks and
    predicts as one without the pool (threads share the pool safely)."""
    X, y = digits_target
    X, y = X[:60], y[:60]
    grid = {"freeze": ["all", 1]}

    def search(**extra):
        est = TransferClassifier(pretrained_source, epochs=10, random_state=0, **extra)
        return GridSearchCV(est, grid, cv=3).fit(X, y)

    unpooled = search(compile__jit_compile=False)
    with parallel_backend("threading", n_jobs=2):
        pooled = search()
    assert pooled.best_params_ == unpooled.best_params_
    assert_allclose(
        pooled.cv_results_["mean_test_score"], unpooled.cv_results_["mean_test_score"]
    )
    assert_allclose(pooled.predict_proba(X), unpooled.predict_proba(X), atol=1e-5)
