"""What users bring: NumPy hyperparameters, metadata routing, unbuilt and
subclassed source networks.

Real (small) fits on iris and digits; each test compares against the same
fit made with plain Python values or without the meta-estimator, so it fails
when the conversion or the routing is lost.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn import config_context
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_predict,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedClassifier, TransferClassifier

_X, _Y = load_iris(return_X_y=True)
X_IRIS = ((_X - _X.mean(0)) / _X.std(0)).astype(np.float32)
Y_IRIS = _Y

INT_TYPES = [int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16]
FLOAT_TYPES = [float, np.float16, np.float32, np.float64]


def _python(value):
    return value.item() if isinstance(value, np.generic) else value


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    int_type=st.sampled_from(INT_TYPES),
    float_type=st.sampled_from(FLOAT_TYPES),
)
def test_numpy_scalar_hyperparameters_fit_like_python_ones(int_type, float_type):
    numpy_params = dict(
        hidden_layer_sizes=(int_type(8),),
        learning_rate=float_type(0.02),
        epochs=int_type(5),
        batch_size=int_type(16),
        patience=int_type(3),
        dropout=float_type(0.125),
        optimizer__beta_1=float_type(0.875),
    )
    python_params = {
        name: tuple(map(_python, value)) if isinstance(value, tuple) else _python(value)
        for name, value in numpy_params.items()
    }
    ours = PretrainedClassifier(random_state=0, **numpy_params).fit(X_IRIS, Y_IRIS)
    ref = PretrainedClassifier(random_state=0, **python_params).fit(X_IRIS, Y_IRIS)
    assert_allclose(ours.predict_proba(X_IRIS), ref.predict_proba(X_IRIS), atol=1e-6)


def test_numpy_scalars_reach_transfer_parameters(pretrained_source, digits_target):
    X, y = digits_target
    X, y = X[:200], y[:200]
    params = dict(freeze=1, head_hidden_layer_sizes=(8,), epochs=3, random_state=0)
    ours = TransferClassifier(
        pretrained_source,
        learning_rate=np.float32(0.01),
        head_dropout=np.float32(0.25),
        **{**params, "freeze": np.int64(1), "head_hidden_layer_sizes": (np.int64(8),)},
    ).fit(X, y)
    ref = TransferClassifier(
        pretrained_source,
        learning_rate=float(np.float32(0.01)),
        head_dropout=0.25,
        **params,
    ).fit(X, y)
    assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


def test_a_numpy_built_random_search_scores_every_candidate():
    search = RandomizedSearchCV(
        PretrainedClassifier(hidden_layer_sizes=(8,), epochs=5, random_state=0),
        {"learning_rate": np.logspace(-3, -1, 4).astype(np.float32)},
        n_iter=3,
        cv=2,
        random_state=0,
        error_score="raise",
    ).fit(X_IRIS, Y_IRIS)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


# -------------------------------------------------------- metadata routing
def test_clone_keeps_metadata_requests():
    with config_context(enable_metadata_routing=True):
        est = PretrainedClassifier(epochs=2).set_fit_request(sample_weight=True)
        routing = clone(est).get_metadata_routing()
        assert routing.fit.requests == {"sample_weight": True}


def _weights(y):
    """Zero weight on every row of class 0: a model that honours it rarely
    predicts class 0."""
    return np.where(y == 0, 0.0, 1.0)


@pytest.mark.parametrize("kind", ["pretrained", "transfer"])
def test_routed_sample_weight_through_pipeline_and_cross_validation(
    kind, pretrained_source, digits_target
):
    if kind == "pretrained":
        X, y = X_IRIS, Y_IRIS
        make = lambda: PretrainedClassifier(  # noqa: E731
            hidden_layer_sizes=(16,), learning_rate=0.02, epochs=30, random_state=0
        )
    else:
        X, y = digits_target
        X, y = X[:250], y[:250] - 5
        make = lambda: TransferClassifier(  # noqa: E731
            pretrained_source, freeze="all", learning_rate=0.02, epochs=30,
            random_state=0,
        )  # fmt: skip
    weights = _weights(y)
    with config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            make()
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=True),
        )
        predicted = cross_val_predict(
            pipe, X, y, cv=3, params={"sample_weight": weights}
        )
        unweighted = cross_val_predict(clone(pipe), X, y, cv=3)
        search = GridSearchCV(
            pipe,
            {pipe.steps[-1][0] + "__learning_rate": [0.02, 0.03]},
            cv=2,
            error_score="raise",
        ).fit(X, y, sample_weight=weights)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert (unweighted == 0).mean() > 0.1
    assert (predicted == 0).mean() < 0.5 * (unweighted == 0).mean()
    assert (search.predict(X) == 0).mean() < 0.5 * (unweighted == 0).mean()


# ---------------------------------------------------- sources users bring
@keras.saving.register_keras_serializable(package="sktransfer_tests")
class TwoLayerNet(keras.Model):
    """A subclassed network: no functional graph, no known input."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(
            16,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(0),
        )
        self.out = keras.layers.Dense(
            3,
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(1),
        )

    def call(self, x):
        return self.out(self.hidden(x))


def test_a_subclassed_source_transfers_whole_and_refuses_a_cut():
    source = TwoLayerNet()
    source.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    source.fit(X_IRIS, Y_IRIS, epochs=20, verbose=0)
    before = [w.copy() for w in source.get_weights()]
    binary = (Y_IRIS == 2).astype(int)
    est = TransferClassifier(source, cut=None, freeze="all", epochs=30,
                             learning_rate=0.05, random_state=0)  # fmt: skip
    est.fit(X_IRIS, binary)
    assert est.score(X_IRIS, binary) > 0.85
    assert len(est.base_layers_) == 2  # the subclass's two Dense layers
    for old, new in zip(before, source.get_weights()):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match=r"(?s)subclassed.*cut=None"):
        TransferClassifier(TwoLayerNet(), epochs=1).fit(X_IRIS, binary)


def test_an_unbuilt_sequential_source_is_built_on_the_data():
    def source():
        return keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(3)])

    est = TransferClassifier(
        source, cut="penultimate", freeze=0, epochs=2, random_state=0
    )
    est.fit(X_IRIS, Y_IRIS)
    assert est.input_shape_ == (4,)
    assert len(est.base_layers_) == 1  # the cut dropped the last Dense
