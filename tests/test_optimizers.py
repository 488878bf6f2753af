"""Optimizers users bring: objects with their own learning rate or schedule,
callables, routed ``optimizer__learning_rate``, and the precedence rules.

Each test compares a fit with an equivalent one spelled another way (same
seed, real Keras training on iris or digits), so it fails when the
optimizer's own setting is replaced or the user's object is trained in place.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import PretrainedClassifier, TransferClassifier


def _scratch(**params):
    return PretrainedClassifier(
        hidden_layer_sizes=(8,), epochs=5, random_state=0, **params
    )


def _proba(iris, **params):
    X, y = iris
    return _scratch(**params).fit(X, y).predict_proba(X)


def _decay():
    return keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=5, decay_rate=0.5
    )


def test_an_optimizer_objects_own_learning_rate_is_used(iris):
    own = _proba(iris, optimizer=keras.optimizers.SGD(learning_rate=0.05))
    same = _proba(iris, optimizer="sgd", learning_rate=0.05)
    default = _proba(iris, optimizer="sgd")  # 1e-3: far fewer changes
    assert_allclose(own, same, atol=1e-6)
    assert np.abs(own - default).max() > 1e-3


def test_the_users_optimizer_object_is_never_trained_or_changed(iris):
    X, y = iris
    optimizer = keras.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    config = optimizer.get_config()
    first = _scratch(optimizer=optimizer).fit(X, y)
    second = _scratch(optimizer=optimizer).fit(X, y)
    assert first.model_.optimizer is not optimizer
    assert int(optimizer.iterations) == 0
    assert not optimizer.built
    assert optimizer.get_config() == config
    # a second fit starts afresh (no momentum or step count carried over)
    assert_allclose(first.predict_proba(X), second.predict_proba(X), atol=1e-6)


def test_a_schedule_in_an_optimizer_object_is_honoured_and_copied(iris):
    X, y = iris
    schedule = _decay()
    clf = _scratch(optimizer=keras.optimizers.Adam(schedule)).fit(X, y)
    used = clf.model_.optimizer
    assert isinstance(used._learning_rate, type(schedule))
    assert used._learning_rate is not schedule
    # the schedule advanced with the steps: 5 epochs x 5 batches, halving
    # every 5 steps
    assert float(used.learning_rate) == pytest.approx(0.1 * 0.5**5, rel=1e-4)
    constant = _proba(iris, optimizer="adam", learning_rate=0.1)
    direct = _proba(iris, optimizer="adam", learning_rate=_decay())
    assert_allclose(clf.predict_proba(X), direct, atol=1e-6)
    assert np.abs(direct - constant).max() > 1e-3


def test_a_callable_learning_rate(iris):
    def rate():
        return 0.05

    called = _proba(iris, optimizer="sgd", learning_rate=rate)
    assert_allclose(
        called, _proba(iris, optimizer="sgd", learning_rate=0.05), atol=1e-6
    )


def test_explicit_learning_rate_replaces_the_objects_own(iris):
    given = _proba(iris, optimizer=keras.optimizers.SGD(0.5), learning_rate=0.05)
    assert_allclose(given, _proba(iris, optimizer="sgd", learning_rate=0.05), atol=1e-6)
    with_schedule = _proba(
        iris, optimizer=keras.optimizers.Adam(_decay()), learning_rate=0.05
    )
    assert_allclose(
        with_schedule, _proba(iris, optimizer="adam", learning_rate=0.05), atol=1e-6
    )


def test_routed_optimizer_learning_rate_and_its_conflict(iris):
    X, y = iris
    routed = _proba(iris, optimizer="sgd", optimizer__learning_rate=0.05)
    assert_allclose(
        routed, _proba(iris, optimizer="sgd", learning_rate=0.05), atol=1e-6
    )
    both = _scratch(learning_rate=0.05, optimizer__learning_rate=0.01)
    with pytest.raises(ValueError, match="both set; they name the same setting"):
        both.fit(X, y)


def test_a_grid_over_learning_rate_with_an_optimizer_object(iris):
    X, y = iris
    search = GridSearchCV(
        _scratch(optimizer=keras.optimizers.SGD(momentum=0.9)),
        {"learning_rate": [None, 0.05]},
        cv=2,
        error_score="raise",
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert clone(search.best_estimator_).learning_rate in (None, 0.05)


@pytest.mark.parametrize("value", [0, -0.1, "fast"])
def test_invalid_learning_rates_are_rejected(iris, value):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        _scratch(learning_rate=value).fit(X, y)


# ------------------------------------------------ the transfer recipe's phases
def _transfer(source, **params):
    return TransferClassifier(
        source, freeze=1, warmup_epochs=2, epochs=3, random_state=0, **params
    )


def test_warmup_then_a_tenth_of_an_optimizer_objects_own_rate(
    pretrained_source, digits_target
):
    X, y = digits_target
    X, y = X[:200], y[:200]
    own = _transfer(pretrained_source, optimizer=keras.optimizers.SGD(0.05))
    given = _transfer(pretrained_source, optimizer="sgd", learning_rate=0.05)
    explicit = _transfer(
        pretrained_source, optimizer="sgd", learning_rate=0.05,
        fine_tune_learning_rate=0.005,
    )  # fmt: skip
    probas = [clf.fit(X, y).predict_proba(X) for clf in (own, given, explicit)]
    assert_allclose(probas[0], probas[1], atol=1e-6)
    assert_allclose(probas[0], probas[2], atol=1e-6)


def test_a_schedule_restarts_in_the_fine_tuning_phase(pretrained_source, digits_target):
    X, y = digits_target
    X, y = X[:200], y[:200]
    scheduled = _transfer(pretrained_source, optimizer=keras.optimizers.Adam(_decay()))
    scheduled.fit(X, y)
    assert scheduled.n_warmup_epochs_ == 2
    assert np.isfinite(scheduled.history_["loss"]).all()
    direct = _transfer(pretrained_source, learning_rate=_decay()).fit(X, y)
    assert_allclose(scheduled.predict_proba(X), direct.predict_proba(X), atol=1e-6)
    # a fine-tuning rate given as a float replaces the schedule after warm-up
    tuned = _transfer(
        pretrained_source, learning_rate=_decay(), fine_tune_learning_rate=1e-4
    ).fit(X, y)
    assert np.abs(tuned.predict_proba(X) - direct.predict_proba(X)).max() > 1e-4
