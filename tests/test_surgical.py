"""Surgical fine-tuning (``train_layers``) and keeping the source's head.

Real networks on ``load_digits``: the session's pretrained source (digits
0-4, hidden layers 32 and 16) and targets drawn from the other rows. Which
layers moved is read from the weights, never assumed.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from sktransfer import TransferClassifier


def weights_by_name(model):
    return {
        layer.name: [np.array(w) for w in layer.get_weights()]
        for layer in model.layers
        if layer.weights
    }


def moved(before, after, name):
    return not all(np.array_equal(a, b) for a, b in zip(before[name], after[name]))


def surgical(source, **params):
    params = {
        "cut": "penultimate",
        "epochs": 5,
        "early_stopping": False,
        "fine_tune_learning_rate": 1e-2,
        "random_state": 0,
        **params,
    }
    return TransferClassifier(source, **params)


def hidden_names(source):
    """The source's two hidden Dense layers (names depend on test order)."""
    return [layer.name for layer in source.model_.layers if layer.weights][:2]


@pytest.fixture(scope="module")
def few(digits_target):
    X, y = digits_target
    return X[:60], y[:60]


@pytest.mark.parametrize(
    "train_layers, memory", [(0, False), ("first by name", True), (-2, True)]
)
def test_only_the_chosen_layer_trains(
    pretrained_source, few, tmp_path, train_layers, memory
):
    X, y = few
    source = weights_by_name(pretrained_source.model_)
    first, second = hidden_names(pretrained_source)
    if train_layers == "first by name":
        train_layers = [first]
    clf = surgical(
        pretrained_source,
        train_layers=train_layers,
        memory=str(tmp_path) if memory else None,
    ).fit(X, y)
    fitted = weights_by_name(clf.model_)
    assert clf.base_layers_ == [first, second]
    assert moved(source, fitted, first)
    assert not moved(source, fitted, second)
    assert clf.n_frozen_ == 0
    assert clf.score(X, y) > 0.5


def test_an_upper_layer_trains_above_a_cached_prefix(pretrained_source, few, tmp_path):
    """train_layers=1: the first layer is a frozen prefix the cache holds."""
    X, y = few
    source = weights_by_name(pretrained_source.model_)
    first, second = hidden_names(pretrained_source)
    clf = surgical(pretrained_source, train_layers=[1], memory=str(tmp_path))
    clf.fit(X, y)
    fitted = weights_by_name(clf.model_)
    assert not moved(source, fitted, first)
    assert moved(source, fitted, second)
    assert clf.n_frozen_ == 1
    assert any(tmp_path.rglob("*")), "the frozen prefix's features were cached"
    # the same fit without the cache trains the same layers to the same place
    plain = surgical(pretrained_source, train_layers=[1]).fit(X, y)
    np.testing.assert_allclose(
        plain.predict_proba(X), clf.predict_proba(X), rtol=1e-4, atol=1e-5
    )


def test_train_layers_is_grid_searchable(pretrained_source, few):
    X, y = few
    grid = GridSearchCV(
        surgical(pretrained_source, epochs=2),
        {"train_layers": [0, -1]},
        cv=2,
    ).fit(X, y)
    assert grid.best_params_["train_layers"] in (0, -1)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize(
    "params, match",
    [
        ({"train_layers": 0, "freeze": 1}, r"set one.*freeze='all'"),
        ({"train_layers": 5}, r"out of range.*0\.\.1.*-2\.\.-1"),
        ({"train_layers": "nope"}, r"'nope'.*not a freezable layer.*\['dense"),
        ({"train_layers": []}, r"trains no layer"),
        ({"train_layers": [0.5]}, r"indices or names.*float"),
    ],
)
def test_bad_train_layers_fail_before_training(pretrained_source, few, params, match):
    X, y = few
    clf = surgical(pretrained_source, **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


def test_the_source_head_is_kept_for_the_source_classes(
    pretrained_source, digits_source
):
    """cut="scores" keeps the source's own head: on a target with the
    source's classes, a few labelled rows recover the source's accuracy,
    which the penultimate features alone do not reach from so few rows."""
    X, y = digits_source
    X_few, y_few = X[-25:], y[-25:]  # 5 rows a class
    X_test, y_test = X[:300], y[:300]
    source_accuracy = pretrained_source.score(X_test, y_test)
    kept = TransferClassifier(pretrained_source, cut="scores", random_state=0)
    kept.fit(X_few, y_few)
    assert kept.score(X_test, y_test) >= source_accuracy - 0.03
    # and with an input-level shift, the first layer alone can adapt
    shifted = TransferClassifier(
        pretrained_source, cut="scores", train_layers=0, random_state=0, epochs=20
    ).fit(1.0 - X_few, y_few)
    assert shifted.score(1.0 - X_test, y_test) > 0.5
