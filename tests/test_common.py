"""scikit-learn's own estimator checks on the estimators.

Every check must pass on the classifiers except the two listed in
``EXPECTED_FAILED_CHECKS``, each with the reason it cannot pass (the sparse
twin of the sample-weight check is not run: the estimator's tags say it
refuses sparse input). They are run in strict xfail mode: if one of them
starts passing, the suite fails and the entry must go. ``TransferFeatures``
passes every check but the one in ``FEATURES_EXPECTED_FAILED_CHECKS``, which
passes or fails by chance and so is not strict.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scikeras.wrappers import BaseWrapper
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import PretrainedClassifier, TransferClassifier, TransferFeatures
from sktransfer._base import ScikerasSeam
from sktransfer._classifier import KerasClassifierBase

EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "stochastic minibatch training: rows with zero weight still change "
        "the minibatch composition, the shuffling order and Keras' per-batch "
        "loss normalisation, so zero weights cannot give exactly the "
        "network that removing those rows gives"
    ),
    "check_estimator_tags_renamed": (
        "walks the whole MRO and flags scikeras' BaseWrapper, which defines "
        "_more_tags; our classes define __sklearn_tags__ only"
    ),
}


#: TransferFeatures has no scikeras in its MRO and trains nothing; its one
#: declared failure passes or fails by chance, so it is not strict (below)
FEATURES_EXPECTED_FAILED_CHECKS = {
    "check_methods_sample_order_invariance": (
        "TensorFlow's float32 matmul kernels round a row's dot products "
        "differently depending on the row's position in the batch (float32 "
        "rounding, about 1e-7 of the summed terms); the check compares at "
        "rtol=1e-7 and atol=1e-9, finer than that, after an unseeded "
        "permutation, so it passes or fails by chance. Features agree to "
        "float32 rounding in any row order (tests/test_features.py)"
    ),
}


#: checks that pass or fail by chance: a failure is reported as xfail with
#: the reason, a pass as a pass (the two above are strict)
CHANCE_FAILED_CHECKS = {
    "check_methods_sample_order_invariance": (
        "TensorFlow's float32 matmul kernels round a row's dot products "
        "differently depending on the row's position in the batch (one "
        "float32 step, 1e-7 to 3e-7 relative, measured); the check compares "
        "predict_proba at rtol=1e-7 after an unseeded permutation, so it "
        "passes or fails by chance. Labels and probabilities agree to "
        "float32 rounding in any row order (test_row_order_changes_only_rounding)"
    ),
    "check_methods_subset_invariance": (
        "the same float32 rounding: a row's result depends on the batch it "
        "is computed in (measured: up to 2.4e-7 absolute, 1.8e-6 relative "
        "on the checks' 3-class toy data) and the check compares at 1e-7"
    ),
}


#: the checks the JAX job of .ci/run also runs (``-m backends``): training,
#: refitting, pickling, string labels; the whole file
#: takes about 10 minutes on JAX (each fit compiles its train step)
BACKEND_SUBSET = (
    "check_classifiers_train(",
    "check_fit_idempotent",
    "check_estimators_pickle(",
    "check_classifiers_classes",
    "test_row_order_changes_only_rounding",
)


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


def _small_estimator():
    # small and quick, yet learns the checks' toy problems reliably
    # (check_classifiers_train needs > 83% training accuracy)
    return PretrainedClassifier(
        hidden_layer_sizes=(16,),
        learning_rate=0.01,
        epochs=20,
        random_state=0,
    )


def _source_network():
    """A pretrained-style base for any feature count: built on the data.

    scikit-learn's checks use 1 to 20 features, so the source is an unbuilt
    Sequential network (``cut=None`` keeps it whole); fitting builds a
    private copy on the data's shape. A module-level function, so the
    estimator pickles.
    """
    return keras.Sequential(
        [
            keras.layers.Dense(
                16,
                activation="relu",
                kernel_initializer=keras.initializers.GlorotUniform(0),
            )
        ]
    )


def _small_transfer():
    # the checks' toy problems are not related to any source task: the
    # whole base trains (freeze=0), with the same budget as above
    return TransferClassifier(
        _source_network,
        cut=None,
        freeze=0,
        learning_rate=0.01,
        epochs=20,
        random_state=0,
    )


@parametrize_with_checks(
    [_small_estimator(), _small_transfer()],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    try:
        check(estimator)
    except AssertionError:
        if name in CHANCE_FAILED_CHECKS:
            pytest.xfail(CHANCE_FAILED_CHECKS[name])
        raise


def test_row_order_changes_only_rounding(iris):
    """What the chance failure above leaves: the same labels, and
    probabilities equal to float32 rounding, in any row order."""
    X, y = iris
    clf = _small_estimator().fit(X, y)
    order = np.random.RandomState(0).permutation(len(X))
    for _ in range(5):
        np.testing.assert_array_equal(clf.predict(X)[order], clf.predict(X[order]))
        np.testing.assert_allclose(
            clf.predict_proba(X)[order], clf.predict_proba(X[order]), rtol=2e-6,
            atol=1e-7,
        )  # fmt: skip
        order = np.random.RandomState(order[0]).permutation(len(X))


@parametrize_with_checks(
    # the same unbuilt source, kept whole: 16 ReLU features of any table
    [TransferFeatures(_source_network, cut=None)],
    expected_failed_checks=lambda estimator: FEATURES_EXPECTED_FAILED_CHECKS,
    xfail_strict=False,  # its one expected failure is a matter of chance
)
def test_sklearn_transformer_checks(estimator, check):
    check(estimator)


def test_tags_renamed_failure_is_scikeras_only():
    """The one tags failure comes from scikeras' class, not from ours."""
    assert "_more_tags" in vars(BaseWrapper)
    for cls in (PretrainedClassifier, TransferClassifier, KerasClassifierBase):
        assert "_more_tags" not in vars(cls)
        assert "_get_tags" not in vars(cls)
    assert "__sklearn_tags__" in vars(ScikerasSeam)
    tags = PretrainedClassifier().__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert tags.input_tags.sparse is False
    assert tags.input_tags.allow_nan is False


@pytest.mark.parametrize("kwargs", [{"kwargs": -1}, {"optimizer__beta_1": 0.8}])
def test_extra_keywords_round_trip_through_get_set_params(kwargs):
    """Keywords beyond the signature are parameters: clone keeps them and
    set_params accepts them, as scikit-learn's init/set_params contract asks."""
    from sklearn.base import clone

    est = PretrainedClassifier(**kwargs)
    params = est.get_params()
    for key, value in kwargs.items():
        assert params[key] == value
        assert clone(est).get_params()[key] == value
    est.set_params(**kwargs)
