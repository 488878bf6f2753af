"""The linear-probe head, LP-FT and the cuts that keep the source's knowledge.

Real (small) networks on digits: the probe's folded Dense layer must give
scikit-learn's own LogisticRegression probabilities, the default
TransferClassifier must fit no Keras loop at all and beat a probe on the
penultimate features, and the named cuts must read what they say.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from sktransfer import PretrainedClassifier, TransferClassifier, TransferFeatures
from sktransfer._keras_compat import stashed
from sktransfer._network import BLOCKS, cut_network
from sktransfer._probe import fit_probe, fold_standardization, standardizer
from sktransfer.datasets import load_parity_transfer


def _softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_folded_standardization_reproduces_logistic_regression(digits, n_classes):
    X, y = digits
    keep = y < n_classes
    F, y = X[keep][:80].astype(np.float64) * 3 + 1, y[keep][:80]
    w = np.random.RandomState(0).uniform(0.5, 2, len(y))
    mean, scale = standardizer(F, w)
    model = LogisticRegression(C=0.5, tol=1e-8, max_iter=2000)
    model.fit((F - mean) / scale, y, sample_weight=w)
    kernel, bias = fold_standardization(
        model.coef_, model.intercept_, mean, scale, n_classes
    )
    expected = model.predict_proba((F - mean) / scale)
    np.testing.assert_allclose(_softmax(F @ kernel + bias), expected, atol=1e-9)


def test_probe_chooses_c_by_internal_cv(digits):
    X, y = digits
    F, y = X[:60].astype(np.float64), y[:60] % 2
    noisy = np.hstack([F, np.random.RandomState(1).normal(size=(60, 200))])
    chosen = {fit_probe(G, y, seed=0).C for G in (F, noisy)}
    assert chosen <= {1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3}
    # one row of a class: no CV is possible, C=1 is used and the fit works
    single = fit_probe(F[:11], np.r_[np.zeros(10, int), 1], seed=0)
    assert single.C == 1.0 and np.isfinite(single.kernel).all()


def _source_head_network():
    inputs = keras.Input((64,))
    h1 = keras.layers.Dense(16, activation="relu", name="h1")(inputs)
    h2 = keras.layers.Dense(8, activation="relu", name="h2")(h1)
    out = keras.layers.Dense(5, activation="softmax", name="old_head")(h2)
    return keras.Model(inputs, out)


def test_named_cuts_read_what_they_say(digits):
    X = digits[0][:30]
    source = _source_head_network()
    expected_probs = source.predict(X, verbose=0)
    scores = cut_network(source, "scores", (64,))
    assert stashed(scores, BLOCKS) == [5, 5]
    F = scores.predict(X, verbose=0)
    np.testing.assert_allclose(F[:, 5:], expected_probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_softmax(F[:, :5]), expected_probs, atol=1e-6)
    multi = cut_network(source, "multi", (64,))
    assert stashed(multi, BLOCKS) == [16, 8, 5, 5]
    assert cut_network(source, "auto", (64,)).output.shape == multi.output.shape
    penultimate = cut_network(source, "penultimate", (64,))
    assert penultimate.output.shape == (None, 8)
    assert stashed(penultimate, BLOCKS) is None


def test_a_layer_named_like_a_cut_word_wins():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="scores")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
    assert cut_network(model, "scores", (4,)).output.shape == (None, 3)


def test_scores_cut_needs_a_dense_head():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3)(inputs)
    out = keras.layers.EinsumDense("ab,bc->ac", output_shape=2)(hidden)
    with pytest.raises(ValueError, match="cut='scores' reads the source's class"):
        cut_network(keras.Model(inputs, out), "scores", (4,))


@pytest.fixture(scope="module")
def parity():
    data = load_parity_transfer(random_state=0)
    source = PretrainedClassifier(hidden_layer_sizes=(32, 16), random_state=0)
    return data, source.fit(data.X_source, data.y_source)


def test_default_is_the_probe_and_beats_a_penultimate_probe(parity):
    data, source = parity
    clf = TransferClassifier(source, random_state=0).fit(data.X_target, data.y_target)
    assert clf.history_ == {} and clf.n_warmup_epochs_ == 0
    assert clf.n_frozen_ == len(clf.base_layers_)
    accuracy = clf.score(data.X_test, data.y_test)
    baseline = GridSearchCV(
        LogisticRegression(max_iter=2000), {"C": [0.01, 0.1, 1, 10, 100]}, cv=4
    )
    features = TransferFeatures(source, cut="penultimate").fit(data.X_target)
    baseline.fit(features.transform(data.X_target), data.y_target)
    probe = baseline.score(features.transform(data.X_test), data.y_test)
    # measured: 0.94-0.96 against 0.83-0.86 (README's transfer panel)
    assert accuracy > probe + 0.03, (accuracy, probe)
    # the network alone gives the probabilities: model_ is one Keras model
    np.testing.assert_allclose(
        clf.model_.predict(data.X_test, verbose=0),
        clf.predict_proba(data.X_test),
        rtol=1e-5,
        atol=1e-6,
    )


def test_probe_with_memory_predicts_as_without(parity, tmp_path):
    data, source = parity
    plain = TransferClassifier(source, random_state=0).fit(data.X_target, data.y_target)
    cached = TransferClassifier(source, random_state=0, memory=str(tmp_path))
    cached.fit(data.X_target, data.y_target)
    np.testing.assert_allclose(
        cached.predict_proba(data.X_test), plain.predict_proba(data.X_test), atol=1e-6
    )


def test_depths_sharing_a_cut_solve_the_probe_once_with_memory(parity, tmp_path):
    """The probe is the same for every freeze depth (it reads the source as
    it stands): with memory, LP-FT at several depths reuses one solve, and
    the fine-tuning starts from that same head."""
    data, source = parity
    X, y = data.X_target, data.y_target
    solved = lambda: list(tmp_path.rglob("fit_probe/*/output.pkl"))  # noqa: E731
    for freeze in ("all", 1, 0):
        TransferClassifier(
            source, freeze=freeze, epochs=2, memory=str(tmp_path), random_state=0
        ).fit(X, y)
        assert len(solved()) == 1
    TransferClassifier(source, cut="penultimate", memory=str(tmp_path)).fit(X, y)
    assert len(solved()) == 2  # another cut reads other features


class _HeadAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.kernel = self.model.layers[-1].get_weights()[0]


def test_lp_ft_starts_fine_tuning_from_the_probe(parity):
    data, source = parity
    X, y = data.X_target, data.y_target
    probe = TransferClassifier(source, random_state=0).fit(X, y)
    spy = _HeadAtStart()
    TransferClassifier(source, freeze=0, epochs=2, callbacks=[spy], random_state=0).fit(
        X, y
    )
    solved = probe.model_.layers[-1].get_weights()[0]
    np.testing.assert_allclose(spy.kernel, solved, rtol=1e-5, atol=1e-6)
    spy_adam = _HeadAtStart()
    TransferClassifier(
        source, freeze=0, epochs=2, callbacks=[spy_adam], head_solver="adam",
        random_state=0,
    ).fit(X, y)  # fmt: skip
    assert not np.allclose(spy_adam.kernel, solved, atol=1e-3)


@pytest.mark.parametrize(
    "params", [dict(head_hidden_layer_sizes=(8,)), dict(warmup_epochs=2)]
)
def test_lbfgs_refuses_what_it_cannot_solve_before_training(parity, params):
    data, source = parity
    clf = TransferClassifier(source, head_solver="lbfgs", **params)
    with pytest.raises(ValueError, match="head_solver='lbfgs' solves a head"):
        clf.fit(data.X_target, data.y_target)


def test_auto_with_hidden_head_layers_trains_with_adam(parity):
    data, source = parity
    clf = TransferClassifier(
        source, head_hidden_layer_sizes=(8,), epochs=3, random_state=0
    ).fit(data.X_target, data.y_target)
    assert len(clf.history_["loss"]) == 3


def test_probe_honours_class_weight(parity):
    data, source = parity
    X, y = data.X_target, data.y_target
    odd_heavy = TransferClassifier(
        source, class_weight={"even": 1.0, "odd": 50.0}, random_state=0
    ).fit(X, y)
    plain = TransferClassifier(source, random_state=0).fit(X, y)
    share = lambda clf: np.mean(clf.predict(data.X_test) == "odd")  # noqa: E731
    assert share(odd_heavy) > share(plain)


def test_cuts_sharing_their_layers_do_not_share_cache_entries(parity, tmp_path):
    """ "scores" and "multi" hold the same layers, wired differently: their
    cached features must not be confused (they were, keyed by layers alone)."""
    data, source = parity
    X, y = data.X_target, data.y_target
    for cut in ("multi", "scores", "multi"):
        cached = TransferClassifier(
            source, cut=cut, memory=str(tmp_path), random_state=0
        )
        plain = TransferClassifier(source, cut=cut, random_state=0)
        np.testing.assert_allclose(
            cached.fit(X, y).predict_proba(data.X_test),
            plain.fit(X, y).predict_proba(data.X_test),
            atol=1e-6,
        )


@pytest.mark.parametrize("n_zero", [5, 9])
def test_zero_weight_rows_are_as_if_removed(parity, n_zero):
    """scikit-learn's convention: a zero weight removes the row. The probe's
    internal CV must not count such rows either (its folds and the chosen C
    changed, and probabilities differed by up to 0.5)."""
    data, source = parity
    X, y = data.X_target, data.y_target
    odd = np.flatnonzero(y == "odd")[:n_zero]
    weights = np.ones(len(y))
    weights[odd] = 0.0
    keep = weights > 0
    weighted = TransferClassifier(source, random_state=0)
    weighted.fit(X, y, sample_weight=weights)
    removed = TransferClassifier(source, random_state=0).fit(X[keep], y[keep])
    np.testing.assert_allclose(
        weighted.predict_proba(data.X_test),
        removed.predict_proba(data.X_test),
        atol=1e-6,
    )


def test_lp_ft_solves_the_probe_without_the_validation_rows(monkeypatch):
    """With early stopping, the held-out rows judge the fine-tuning: the
    solved head must not have seen them."""
    import sktransfer._recipe as recipe

    data = load_parity_transfer(shots=100, random_state=1)
    source = PretrainedClassifier(hidden_layer_sizes=(16,), epochs=5, random_state=0)
    source.fit(data.X_source, data.y_source)
    solved_on = []

    def recording_fit_probe(F, y, **kwargs):
        solved_on.append(len(y))
        return fit_probe(F, y, **kwargs)

    monkeypatch.setattr(recipe, "fit_probe", recording_fit_probe)
    clf = TransferClassifier(
        source, freeze=0, epochs=2, early_stopping=True, validation_split=0.2,
        random_state=0,
    ).fit(data.X_target, data.y_target)  # fmt: skip
    assert solved_on == [160]  # 200 rows, 40 held out
    assert len(clf.history_["val_loss"]) > 0
    # without early stopping the probe sees every row
    TransferClassifier(
        source, freeze=0, epochs=2, early_stopping=False, random_state=0
    ).fit(data.X_target, data.y_target)
    assert solved_on == [160, 200]
