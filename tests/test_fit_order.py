"""Same random_state, same data, same model, whatever ran before (issue 12,
items 8 and 9).

A Sequential source saved to a ``.keras`` file, with Dropout above the frozen
part: the first fit from the file must take the feature-cache path as later
fits do, and every fit with the same ``random_state`` must give the same
model, in whatever order fits run in the process (cache on and off,
``memory``, ``cross_val_score`` twice).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.model_selection import cross_val_score

from sktransfer import TransferClassifier


@pytest.fixture
def sequential_file(digits_source, tmp_path):
    """A fresh file per test: the first load of it is the one under test."""
    X, y = digits_source
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu", name="first"),
            keras.layers.Dense(16, activation="relu", name="second"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(5, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=2, verbose=0)
    path = tmp_path / "sequential.keras"
    model.save(path)
    return str(path)


def _fit(path, X, y, **params):
    params = {"freeze": 1, "epochs": 3, "random_state": 0, **params}
    return TransferClassifier(path, **params).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [{}, {"cache_features": False}, {"head_dropout": 0.2}],
    ids=["cache", "no-cache", "head-dropout"],
)
def test_repeated_fits_in_any_order_are_identical(
    sequential_file, digits_target, params
):
    X, y = digits_target
    X, y = X[:300], y[:300]
    first = _fit(sequential_file, X, y, **params)
    _fit(sequential_file, X[::-1][:200], y[::-1][:200], freeze=0, random_state=3)
    second = _fit(sequential_file, X, y, **params)
    third = _fit(sequential_file, X, y, **params)
    expected_cut = None if params.get("cache_features") is False else "first"
    assert [first.feature_cut_, second.feature_cut_, third.feature_cut_] == [
        expected_cut
    ] * 3
    for other in (second, third):
        assert_allclose(first.predict_proba(X), other.predict_proba(X), atol=1e-6)


def test_repeated_fits_with_memory(sequential_file, digits_target, tmp_path):
    X, y = digits_target
    X, y = X[:300], y[:300]
    memory = str(tmp_path / "cache")
    first = _fit(sequential_file, X, y, memory=memory)
    _fit(sequential_file, X, y, memory=memory, random_state=1)
    second = _fit(sequential_file, X, y, memory=memory)
    assert_allclose(first.predict_proba(X), second.predict_proba(X), atol=1e-6)
    plain = _fit(sequential_file, X, y)
    assert_allclose(first.predict_proba(X), plain.predict_proba(X), atol=1e-5)


def test_cross_val_score_twice_gives_the_same_scores(sequential_file, digits_target):
    X, y = digits_target
    X, y = X[:300], y[:300]
    clf = TransferClassifier(sequential_file, freeze=1, epochs=3, random_state=0)
    scores = [cross_val_score(clf, X, y, cv=3) for _ in range(2)]
    assert np.array_equal(scores[0], scores[1])
