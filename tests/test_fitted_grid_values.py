"""A fitted source estimator as a value in a parameter grid (issue 12, item 10).

``GridSearchCV`` clones every grid value (``clone(params, safe=False)`` in
``_fit_and_score``), and cloning unfits an estimator. ``FrozenEstimator``
survives cloning, so it is what to pass; a bare fitted estimator gets an
error saying so, instead of a puzzling "not fitted".
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV

from sktransfer import PretrainedClassifier, TransferClassifier


def _search(grid, **params):
    return GridSearchCV(
        TransferClassifier(learning_rate=0.02, epochs=10, random_state=0, **params),
        grid,
        cv=2,
        error_score="raise",
    )


@pytest.mark.parametrize("memory", [False, True], ids=["plain", "memory"])
def test_frozen_estimator_in_a_grid_keeps_the_source_fitted(
    pretrained_source, digits_target, tmp_path, memory
):
    X, y = digits_target
    X, y = X[:200], y[:200]
    weights = [w.copy() for w in pretrained_source.model_.get_weights()]
    extra = {"memory": str(tmp_path)} if memory else {}
    search = _search(
        {"pretrained": [FrozenEstimator(pretrained_source)], "freeze": [0, 1]},
        **extra,
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.score(X, y) > 0.4  # 5 classes: chance is 0.2
    # the same fit as with the fitted estimator given directly
    params = {**search.best_params_, **extra, "pretrained": pretrained_source}
    direct = TransferClassifier(learning_rate=0.02, epochs=10, random_state=0)
    direct.set_params(**params).fit(X, y)
    assert_allclose(search.predict_proba(X), direct.predict_proba(X), atol=1e-5)
    # the source was only read
    for before, after in zip(weights, pretrained_source.model_.get_weights()):
        assert_allclose(before, after)


def test_a_fitted_estimator_in_a_grid_says_what_to_pass_instead(
    pretrained_source, digits_target
):
    X, y = digits_target
    with pytest.raises(ValueError) as info:
        _search({"pretrained": [pretrained_source]}).fit(X[:100], y[:100])
    message = str(info.value)
    assert "is not fitted" in message
    assert "clone of a fitted estimator" in message
    assert "FrozenEstimator(est)" in message and "est.model_" in message


def test_a_never_fitted_source_gets_the_plain_message(digits_target):
    X, y = digits_target
    clf = TransferClassifier(PretrainedClassifier(), epochs=1)
    with pytest.raises(ValueError, match="is not fitted.*Fit it first") as info:
        clf.fit(X[:50], y[:50])
    assert "clone of a fitted" not in str(info.value)


def test_clones_of_the_transfer_estimator_share_a_fitted_source(
    pretrained_source, digits_target
):
    # the other way round works without FrozenEstimator: the source is a
    # constructor argument, shared (not cloned) by clones of the estimator
    X, y = digits_target
    cloned = clone(
        TransferClassifier(
            pretrained_source, learning_rate=0.02, epochs=10, random_state=0
        )
    )
    assert cloned.pretrained is pretrained_source
    assert cloned.fit(X[:100], y[:100]).score(X[:100], y[:100]) > 0.4
