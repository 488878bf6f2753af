"""Input validation (``_validation``): every message word for word, and the
edge cases of each check.

``_validation`` is the one home of sktransfer's input messages; the unit
tests in ``tests/test_units.py`` match them by pattern. These pin each
message whole (a reworded hint is a visible change, so it must show up as
a failing test) and the boundaries of each check: id ranges, ranks,
``None`` dimensions, object arrays, ragged lists, 1-D X, ``reset``.
No network is trained; ``check_network_input`` gets tiny functional models.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator

from sktransfer._validation import (
    check_network_input,
    check_targets,
    combine_weights,
    shape_error,
    validate_X,
)


class Probe(BaseEstimator):
    """The smallest object ``validate_data`` accepts."""


def _message(call, exc=ValueError):
    with pytest.raises(exc) as info:
        call()
    return str(info.value)


# ------------------------------------------------------------ X at fit time
def test_sparse_x():
    X = sp.csr_matrix(np.ones((3, 2)))
    assert _message(lambda: validate_X(Probe(), X, reset=True), TypeError) == (
        "Probe needs dense input, but X is a sparse csr_matrix. Convert it with "
        "X.toarray() (or add a densifying step to your Pipeline)."
    )


def test_text_x():
    X = np.full((3, 2), "a")
    assert _message(lambda: validate_X(Probe(), X, reset=True)) == (
        "Probe needs numeric features, but X holds non-numeric values (dtype <U1). "
        "Encode them first, e.g. with OneHotEncoder or OrdinalEncoder in a Pipeline."
    )


def test_numbers_in_an_object_array_are_numbers():
    converted = validate_X(Probe(), np.array([[1.5, 2]], dtype=object), reset=True)
    assert converted.dtype == np.float32
    assert_array_equal(converted, [[1.5, 2.0]])


@pytest.mark.parametrize("dtype", [np.float64, object])
def test_nan(dtype):
    X = np.array([[1.0, np.nan]], dtype=dtype)
    assert _message(lambda: validate_X(Probe(), X, reset=True)) == (
        "Input X contains NaN. Probe needs complete features: impute the missing "
        "values first (e.g. SimpleImputer in a Pipeline) or drop those rows."
    )


def test_infinity():
    X = np.array([[1.0, -np.inf]])
    assert _message(lambda: validate_X(Probe(), X, reset=True)) == (
        "Input X contains infinity. Probe needs finite features: replace or drop "
        "infinite values first (e.g. np.nan_to_num, or clip them in a Pipeline step)."
    )


def test_too_large_for_float32_without_an_overflow_warning():
    X = np.array([[1e300, 0.0], [-3e301, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cast's overflow is ours to report
        message = _message(lambda: validate_X(Probe(), X, reset=True))
    assert message == (
        "X holds values too large for float32 (the network's precision): largest "
        "magnitude 3e+301. Scale the features first, e.g. with StandardScaler in a "
        "Pipeline."
    )


def test_float32_and_float16_pass_unchanged():
    for dtype in (np.float32, np.float16):
        X = np.array([[1.5, -2.0]], dtype=dtype)
        converted = validate_X(Probe(), X, reset=True)
        assert converted.dtype == np.float32
        assert_array_equal(converted, [[1.5, -2.0]])


def test_images_with_labels():
    X = np.zeros((4, 8, 8))
    y = np.array([0, 1, 0, 1])
    converted, labels = validate_X(Probe(), X, reset=True, y=y)
    assert converted.shape == (4, 8, 8) and converted.dtype == np.float32
    assert_array_equal(labels, y)


# -------------------------------------------------------- X at predict time
def _fitted(X):
    probe = Probe()
    validate_X(probe, X, reset=True)
    return probe


@pytest.mark.parametrize(
    "fitted_shape, X_shape, tail",
    [
        ((8, 8), (4, 64), "Reshape X, e.g. X.reshape(len(X), *(8, 8))."),
        (
            (3,),
            (4, 2),
            "X has 2 features, but Probe is expecting 3 features as input. Pass "
            "data shaped like the training data.",
        ),
        ((3,), (4, 3, 1), "Pass data shaped like the training data."),
    ],
)
def test_sample_shape(fitted_shape, X_shape, tail):
    probe = _fitted(np.ones((2, *fitted_shape)))
    got = X_shape[1:]
    assert _message(
        lambda: validate_X(
            probe, np.ones(X_shape), reset=False, input_shape=fitted_shape
        )
    ) == (
        f"X has sample shape {got}, but Probe was fitted on sample shape "
        f"{fitted_shape}. {tail}"
    )


def test_one_sample_and_ragged_rows_are_left_to_scikit_learn():
    probe = _fitted(np.ones((2, 4)))
    message = _message(
        lambda: validate_X(probe, np.ones(4), reset=False, input_shape=(4,))
    )
    assert message.startswith("Expected 2D array, got 1D array instead")
    message = _message(
        lambda: validate_X(probe, [[1.0, 2.0], [3.0]], reset=False, input_shape=(4,))
    )
    assert "inhomogeneous" in message


def test_predict_time_checks_the_fitted_feature_names_and_count():
    probe = _fitted(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    renamed = pd.DataFrame({"a": [1.0], "c": [2.0]})
    message = _message(lambda: validate_X(probe, renamed, reset=False))
    assert "feature names should match those that were passed during fit" in message
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        message = _message(lambda: validate_X(probe, np.ones((1, 3)), reset=False))
    assert message == "X has 3 features, but Probe is expecting 2 features as input."


def test_reset_ignores_the_fitted_shape():
    probe = _fitted(np.ones((2, 5)))
    converted = validate_X(probe, np.ones((4, 3)), reset=True, input_shape=(5,))
    assert converted.shape == (4, 3) and probe.n_features_in_ == 3


# ------------------------------------------------------ integer network input
def test_integer_ids_within_the_dtype_range():
    X = np.array([[-128, 127], [0, 5]])
    converted = validate_X(Probe(), X, reset=True, dtype="int8")
    assert converted.dtype == np.int8
    assert_array_equal(converted, X)
    floats = validate_X(Probe(), np.array([[1.0, 2.0]]), reset=True, dtype="int8")
    assert floats.dtype == np.int8 and floats.tolist() == [[1, 2]]


@pytest.mark.parametrize("X, shown", [([[0, 128]], "0..128"), ([[-129, 3]], "-129..3")])
def test_integer_ids_out_of_range(X, shown):
    X = np.array(X)
    assert _message(lambda: validate_X(Probe(), X, reset=True, dtype="int8")) == (
        f"X holds ids outside the range of int8, the network's input dtype ({shown})."
    )


def test_non_integer_ids():
    X = np.array([[1.5, 2.0]])
    assert _message(lambda: validate_X(Probe(), X, reset=True, dtype="int32")) == (
        "Probe's network takes int32 inputs (token or category ids), but X holds "
        "non-integer values. Pass integer ids."
    )


# ---------------------------------------------------------------- targets
def test_continuous_target():
    message = _message(lambda: check_targets(np.linspace(0, 1, 10), "Probe"))
    assert message.startswith("Unknown label type: continuous")
    assert message.endswith(
        " Probe is a classifier: y must hold class labels (ints, strings or "
        "bools). For a continuous target use a regressor, or bin y into classes "
        "first (e.g. KBinsDiscretizer)."
    )


@pytest.mark.parametrize(
    "y, shown",
    [
        (np.full(5, 7), "7"),
        (np.array(["a", "a"], dtype=object), "'a'"),
        (np.array([True, True]), "True"),
    ],
    ids=["int", "object", "bool"],
)
def test_one_class(y, shown):
    assert _message(lambda: check_targets(y, "Probe")) == (
        f"Probe needs samples of at least 2 classes, but y has only 1 class "
        f"({shown}). Check the labels, or the split that produced this training set."
    )


def test_two_object_classes_pass():
    check_targets(np.array(["a", "b"], dtype=object), "Probe")


# ---------------------------------------------------------------- weights
def test_weights_are_a_new_float32_array():
    X = np.ones((4, 2))
    y = np.array([0, 0, 1, 1])
    given = np.array([1.0, 2.0, 3.0, 4.0])
    weights = combine_weights(X, y, given, {"b": 0.5}, np.array(["a", "b"]))
    assert weights.dtype == np.float32
    assert_array_equal(weights, [1.0, 2.0, 1.5, 2.0])
    assert_array_equal(given, [1.0, 2.0, 3.0, 4.0])
    plain = combine_weights(X, y, None, None, np.array(["a", "b"]))
    assert plain.dtype == np.float32 and plain.tolist() == [1.0] * 4


def test_negative_weights_are_refused():
    X = np.ones((3, 2))
    message = _message(
        lambda: combine_weights(X, np.array([0, 1, 1]), [1.0, -1.0, 1.0], None, [0, 1])
    )
    assert "Negative values in data passed to" in message


def test_weights_leaving_one_class():
    X = np.ones((4, 2))
    y = np.array([0, 0, 1, 1])
    assert _message(
        lambda: combine_weights(X, y, None, {1: 0.0}, np.array([0, 1]))
    ) == (
        "sample_weight leaves fewer than 2 classes with positive weight (only 1 "
        "class left); training needs at least 2 classes."
    )


def test_unknown_class_weight_label():
    message = _message(
        lambda: combine_weights(
            np.ones((2, 1)), np.array([0, 1]), None, {"c": 1.0}, np.array(["a", "b"])
        )
    )
    assert message.startswith("class_weight names class 'c', which is not among the ")
    assert "'a'" in message and "'b'" in message


# ---------------------------------------------------------------- shapes
def test_shape_error_default_fix():
    assert str(shape_error((3,), (4,), "the model expects")) == (
        "X has sample shape (3,), but the model expects (4,). Pass data shaped like "
        "the training data."
    )


def _network(shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, keras.layers.Flatten()(inputs))


_NETWORK_FIX = (
    "Reshape or resize X to the network's input (e.g. X.reshape(len(X), *shape)), "
    "or change the model's Input."
)


@pytest.mark.parametrize(
    "network_shape, X_shape",
    [
        ((8, 8, 1), (8, 8)),
        ((8, 8), (8, 8, 1)),
        ((8, 8, 1), (8, 7, 1)),
        ((None, 3), (5, 4)),
    ],
)
def test_network_input_mismatch(network_shape, X_shape):
    network = _network(network_shape)
    expected = tuple(network.inputs[0].shape[1:])
    assert _message(lambda: check_network_input(network, X_shape, "the net")) == (
        f"X has sample shape {X_shape}, but the net expects {expected}. {_NETWORK_FIX}"
    )


@pytest.mark.parametrize(
    "network_shape, X_shape",
    [((8, 8, 1), (8, 8, 1)), ((None, 3), (5, 3)), ((None, 3), (9, 3))],
)
def test_network_input_match(network_shape, X_shape):
    check_network_input(_network(network_shape), X_shape, "the net")


def test_unknown_class_weight_label_lists_the_labels_plainly():
    message = _message(
        lambda: combine_weights(
            np.ones((2, 1)), np.array([0, 1]), None, {"c": 1.0}, np.array(["a", "b"])
        )
    )
    assert message == (
        "class_weight names class 'c', which is not among the labels ['a', 'b']."
    )
