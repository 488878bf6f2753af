"""PretrainedClassifier inside scikit-learn's machinery, with real training.

Cross-validation, meta-estimators, pipelines and searches all hinge on the
estimator being recognised as a classifier (stratified folds, predict_proba
for soft voting / calibration / stacking / ``roc_auc``) and on parameters
(routed ones included) surviving ``clone`` and ``set_params``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    check_cv,
    cross_val_predict,
    cross_val_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedClassifier


def small(**kwargs):
    params = dict(
        hidden_layer_sizes=(16,), learning_rate=0.01, epochs=30, random_state=0
    )
    params.update(kwargs)
    return PretrainedClassifier(**params)


@pytest.fixture(scope="module")
def iris_sorted():
    """Iris as loaded: rows sorted by class, so unstratified, unshuffled
    folds hold out a whole class and score near zero."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def cancer_raw():
    """breast_cancer, unscaled (features span 1e-3 .. 1e3), 300 rows."""
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.RandomState(1).permutation(len(y))[:300]
    return X[order], y[order]


# ------------------------------------------------------------------- CV
def test_cross_val_score_stratifies(iris_sorted):
    X, y = iris_sorted
    est = small()
    assert is_classifier(est)
    assert isinstance(check_cv(5, y, classifier=is_classifier(est)), StratifiedKFold)
    scores = cross_val_score(est, X, y, cv=5)
    assert scores.shape == (5,)
    # every fold holds all three classes: a sane score on each
    assert scores.min() >= 0.8
    # for contrast, unstratified folds of sorted data hold out a whole class
    # (never seen in training): the cv=5 scores above prove they were not used
    unstratified = cross_val_score(small(epochs=5), X, y, cv=KFold(3))
    assert unstratified.max() <= 0.1


def test_cross_val_predict_proba(iris_sorted):
    X, y = iris_sorted
    proba = cross_val_predict(small(epochs=15), X, y, cv=3, method="predict_proba")
    assert proba.shape == (150, 3)
    assert np.mean(proba.argmax(axis=1) == y) >= 0.8


def test_roc_auc_scoring_on_a_binary_task(breast_cancer):
    X, y = breast_cancer
    scores = cross_val_score(small(epochs=10), X, y, cv=3, scoring="roc_auc")
    assert scores.min() >= 0.9


# ------------------------------------------------------- meta-estimators
def test_soft_voting(iris):
    X, y = iris
    voting = VotingClassifier(
        [("nn", small()), ("lr", LogisticRegression(max_iter=500))], voting="soft"
    )
    voting.fit(X[:120], y[:120])
    proba = voting.predict_proba(X[120:])
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    nn = voting.named_estimators_["nn"]
    lr = voting.named_estimators_["lr"]
    # soft voting averages the members' probabilities
    np.testing.assert_allclose(
        proba, (nn.predict_proba(X[120:]) + lr.predict_proba(X[120:])) / 2, rtol=1e-6
    )
    assert voting.score(X[120:], y[120:]) >= 0.85


def test_calibrated_classifier(breast_cancer):
    X, y = breast_cancer
    calibrated = CalibratedClassifierCV(small(epochs=10), cv=3, method="sigmoid")
    calibrated.fit(X[:240], y[:240])
    assert len(calibrated.calibrated_classifiers_) == 3
    proba = calibrated.predict_proba(X[240:])
    assert proba.shape == (60, 2)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert calibrated.score(X[240:], y[240:]) >= 0.9


def test_stacking(iris):
    X, y = iris
    stack = StackingClassifier(
        [("nn", small(epochs=15)), ("lr", LogisticRegression(max_iter=500))],
        final_estimator=LogisticRegression(max_iter=500),
        cv=3,
    )
    stack.fit(X[:120], y[:120])
    assert stack.stack_method_ == ["predict_proba", "predict_proba"]
    assert stack.transform(X[120:]).shape == (30, 6)
    assert stack.score(X[120:], y[120:]) >= 0.85


# ------------------------------------------------------------- pipelines
def test_pipeline_with_standard_scaler(cancer_raw):
    X, y = cancer_raw
    pipe = make_pipeline(StandardScaler(), small(epochs=15))
    pipe.fit(X[:240], y[:240])
    assert pipe.score(X[240:], y[240:]) >= 0.9
    assert pipe.predict_proba(X[240:]).shape == (60, 2)
    assert pipe[-1].n_features_in_ == 30


def test_grid_search_over_hidden_layer_sizes(iris):
    X, y = iris
    grid = {"hidden_layer_sizes": [(2,), (16,)]}
    search = GridSearchCV(small(epochs=15), grid, cv=3).fit(X, y)
    assert search.best_params_["hidden_layer_sizes"] in grid["hidden_layer_sizes"]
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_
    units = [layer.units for layer in best.model_.layers[1:-1]]
    assert tuple(units) == best.hidden_layer_sizes
    assert search.score(X, y) >= 0.85


def test_grid_search_over_a_routed_optimizer_param(iris):
    X, y = iris
    grid = {"optimizer__beta_1": [0.5, 0.9]}
    search = GridSearchCV(small(epochs=10), grid, cv=3, refit=True).fit(X, y)
    assert len(search.cv_results_["params"]) == 2
    best = search.best_estimator_
    assert (
        best.get_params()["optimizer__beta_1"]
        == search.best_params_["optimizer__beta_1"]
    )
    # the routed value reached the Keras optimizer
    assert best.model_.optimizer.beta_1 == pytest.approx(
        search.best_params_["optimizer__beta_1"]
    )


def test_routed_params_through_a_pipeline(cancer_raw):
    X, y = cancer_raw
    pipe = make_pipeline(StandardScaler(), small(epochs=5))
    pipe.set_params(
        pretrainedclassifier__optimizer="sgd",
        pretrainedclassifier__optimizer__momentum=0.7,
    )
    pipe.fit(X, y)
    optimizer = pipe[-1].model_.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == pytest.approx(0.7)


def test_routed_callbacks_and_score_params(iris):
    X, y = iris
    est = small(epochs=20, callbacks={"stop": keras.callbacks.EarlyStopping})
    est.set_params(callbacks__stop__monitor="loss", callbacks__stop__patience=0)
    est.set_params(callbacks__stop__min_delta=10.0)  # nothing counts as progress
    est.fit(X, y)
    # patience 0 and an unreachable min_delta: the routed callback stops
    # after the second epoch
    assert len(est.history_["loss"]) == 2
    correct = est.score(X, y)
    est.set_params(score__normalize=False)  # routed to accuracy_score
    assert est.score(X, y) == pytest.approx(correct * len(y))
