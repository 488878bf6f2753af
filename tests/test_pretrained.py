"""PretrainedClassifier on its own: real (small) Keras training on sklearn data.

No mocks: every test trains a small network on iris, digits or breast_cancer
and checks behaviour a user relies on. Expected values are properties
(accuracy above chance by a wide margin, equalities between two runs,
unchanged user objects), never numbers copied from a previous run.
"""

from __future__ import annotations

import pickle
import random

import joblib
import keras
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tensorflow as tf
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError

import sktransfer
from sktransfer import PretrainedClassifier

IRIS_NAMES = np.array(["setosa", "versicolor", "virginica"])


def small(**kwargs):
    """A quick estimator: one small hidden layer, few epochs, seeded."""
    params = dict(
        hidden_layer_sizes=(16,), learning_rate=0.01, epochs=30, random_state=0
    )
    params.update(kwargs)
    return PretrainedClassifier(**params)


class Recorder(keras.callbacks.Callback):
    """Records which training hooks Keras called (and per-epoch weights)."""

    def __init__(self, keep_weights=False):
        super().__init__()
        self.events = []
        self.keep_weights = keep_weights
        self.epoch_weights = []
        self.epoch_logs = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append("epoch_end")
        self.epoch_logs.append(dict(logs or {}))
        if self.keep_weights:
            self.epoch_weights.append([w.copy() for w in self.model.get_weights()])


# ----------------------------------------------------------------- basics
def test_is_a_classifier():
    est = PretrainedClassifier()
    assert is_classifier(est)
    assert est.__sklearn_tags__().estimator_type == "classifier"
    assert not hasattr(est, "partial_fit")


def test_fit_sets_fitted_attributes_and_learns_iris(iris):
    X, y = iris
    est = small().fit(X[:120], y[:120])
    assert isinstance(est.model_, keras.Model)
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.n_classes_ == 3
    assert est.n_features_in_ == 4
    assert est.input_shape_ == (4,)
    assert not hasattr(est, "feature_names_in_")  # plain arrays have no names
    # 30 epochs with no epoch boundary needed: 10 entries of 3 epochs each
    assert len(est.history_["loss"]) == 10
    proba = est.predict_proba(X[120:])
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba >= 0).all()
    np.testing.assert_array_equal(est.predict(X[120:]), proba.argmax(axis=1))
    assert est.score(X[120:], y[120:]) >= 0.85


def test_predict_stores_nothing_on_the_estimator(iris):
    X, y = iris
    est = small(epochs=3).fit(X, y)
    before = dict(vars(est))
    est.predict(X[:1])
    est.predict_proba(X)
    est.score(X, y)
    assert vars(est).keys() == before.keys()
    assert all(vars(est)[k] is before[k] for k in before)


def test_one_row_and_batch_predictions_agree(iris):
    X, y = iris
    est = small(epochs=5).fit(X, y)
    batch = est.predict_proba(X)
    rows = np.vstack([est.predict_proba(X[i : i + 1]) for i in range(10)])
    np.testing.assert_allclose(rows, batch[:10], rtol=1e-5, atol=1e-6)
    # the same network through Keras' own predict
    keras_proba = est.model_.predict(X, verbose=0)
    np.testing.assert_allclose(batch, keras_proba, rtol=1e-5, atol=1e-6)
    # predict_log_proba, as MLPClassifier has it
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(batch))


# ------------------------------------------------------------------ labels
def test_string_labels_multiclass(iris):
    X, y = iris
    labels = IRIS_NAMES[y]
    est = small().fit(X[:120], labels[:120])
    np.testing.assert_array_equal(est.classes_, IRIS_NAMES)
    pred = est.predict(X[120:])
    assert set(pred) <= set(IRIS_NAMES)
    assert np.mean(pred == labels[120:]) >= 0.85


def test_string_labels_binary(breast_cancer):
    X, y = breast_cancer
    labels = np.where(y == 1, "benign", "malignant")
    est = small(epochs=20).fit(X[:240], labels[:240])
    np.testing.assert_array_equal(est.classes_, ["benign", "malignant"])
    proba = est.predict_proba(X[240:])
    assert proba.shape == (60, 2)
    pred = est.predict(X[240:])
    np.testing.assert_array_equal(pred, est.classes_[proba.argmax(axis=1)])
    assert np.mean(pred == labels[240:]) >= 0.9


def test_non_contiguous_integer_labels(iris):
    X, y = iris
    labels = np.array([-5, 10, 42])[y]
    est = small().fit(X, labels)
    np.testing.assert_array_equal(est.classes_, [-5, 10, 42])
    assert set(est.predict(X)) <= {-5, 10, 42}
    assert est.score(X, labels) >= 0.85


# ------------------------------------------------------------------ pandas
def test_dataframe_input_sets_feature_names(iris):
    X, y = iris
    columns = ["sepal_len", "sepal_wid", "petal_len", "petal_wid"]
    frame = pd.DataFrame(X, columns=columns)
    est = small(epochs=5).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(est.feature_names_in_, columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        from_array = est.predict_proba(X)
    np.testing.assert_allclose(est.predict_proba(frame), from_array)
    renamed = frame.rename(columns={"sepal_len": "other"})
    with pytest.raises(ValueError, match="feature names"):
        est.predict(renamed)


# ---------------------------------------------------------------- weights
def test_sample_weight_is_used_and_not_modified(iris):
    X, y = iris
    weights = np.where(y == 2, 0.0, 1.0)
    original = weights.copy()
    est = small(class_weight="balanced").fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(weights, original)  # never modified in place
    # class 2 carries no weight, so the network (almost) never predicts it
    # on class 2's own rows, where an unweighted fit predicts it well
    pred_on_2 = est.predict(X[y == 2])
    assert np.mean(pred_on_2 == 2) <= 0.1
    unweighted = small().fit(X, y)
    assert np.mean(unweighted.predict(X[y == 2]) == 2) >= 0.8


def test_class_weight_shifts_predictions(breast_cancer):
    X, y = breast_cancer
    plain = small(epochs=10).fit(X, y)
    weighted = small(epochs=10, class_weight={0: 20.0, 1: 1.0}).fit(X, y)
    # the up-weighted class gets predicted more often
    assert np.sum(weighted.predict(X) == 0) > np.sum(plain.predict(X) == 0)


def test_class_weight_keys_are_labels(breast_cancer):
    X, y = breast_cancer
    labels = np.where(y == 1, "benign", "malignant")
    plain = small(epochs=10).fit(X, labels)
    weighted = small(epochs=10, class_weight={"malignant": 20.0, "benign": 1.0})
    weighted.fit(X, labels)
    n_plain = np.sum(plain.predict(X) == "malignant")
    assert np.sum(weighted.predict(X) == "malignant") > n_plain
    with pytest.raises(ValueError, match="'cat'"):
        small(class_weight={"cat": 2.0}).fit(X, labels)


def test_zero_weight_rows_give_nearly_the_same_model_as_removing_them(iris):
    """Full-batch, unshuffled-equivalent setting: zero weights are nearly
    removal (Adam is scale-invariant; only Keras' per-batch mean differs)."""
    X, y = iris
    keep = np.arange(len(y)) % 5 != 0
    kwargs = dict(batch_size=1000, epochs=20, early_stopping=False)
    removed = small(**kwargs).fit(X[keep], y[keep])
    zeroed = small(**kwargs).fit(X, y, sample_weight=keep.astype(float))
    np.testing.assert_allclose(
        zeroed.predict_proba(X), removed.predict_proba(X), atol=1e-3
    )


# ------------------------------------------------------------ model forms
def _iris_network(units=8, seed=1):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(
        units,
        activation="relu",
        kernel_initializer=keras.initializers.GlorotUniform(seed),
    )(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(hidden)
    return keras.Model(inputs, outputs)


def test_keras_model_is_copied_never_trained_in_place(iris):
    X, y = iris
    user_model = _iris_network()
    before = [w.copy() for w in user_model.get_weights()]
    est = PretrainedClassifier(
        user_model, learning_rate=0.01, epochs=30, random_state=0
    )
    est.fit(X, y)
    assert est.model_ is not user_model
    for old, new in zip(before, user_model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert est.score(X, y) >= 0.85
    # the trained copy did move away from the user's weights
    assert any(not np.allclose(a, b) for a, b in zip(before, est.model_.get_weights()))


def test_callable_model_gets_meta_and_routed_params(iris):
    X, y = iris
    seen = {}

    def build(meta, units=4):
        seen.update(meta=dict(meta), units=units)
        inputs = keras.Input((meta["n_features_in_"],))
        hidden = keras.layers.Dense(units, activation="relu")(inputs)
        outputs = keras.layers.Dense(meta["n_classes_"], activation="softmax")(hidden)
        return keras.Model(inputs, outputs)

    est = PretrainedClassifier(
        build, model__units=12, learning_rate=0.01, epochs=30, random_state=0
    )
    est.fit(X, IRIS_NAMES[y])
    assert seen["units"] == 12
    assert seen["meta"]["n_features_in_"] == 4
    assert seen["meta"]["n_classes_"] == 3
    np.testing.assert_array_equal(seen["meta"]["classes_"], IRIS_NAMES)
    assert est.model_.layers[1].units == 12
    # routed model__* stay parameters (a grid over them works)
    assert est.get_params(deep=True)["model__units"] == 12
    assert est.set_params(model__units=6).get_params()["model__units"] == 6
    assert est.score(X, IRIS_NAMES[y]) >= 0.85


def test_callable_returning_a_shared_model_is_not_trained_in_place(iris):
    X, y = iris
    shared = _iris_network()
    before = [w.copy() for w in shared.get_weights()]
    est = PretrainedClassifier(lambda: shared, epochs=5, random_state=0).fit(X, y)
    assert est.model_ is not shared
    for old, new in zip(before, shared.get_weights()):
        np.testing.assert_array_equal(old, new)


class _SubclassedNet(keras.Model):
    """A subclassed network: no ``inputs`` until it is called."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.scores = keras.layers.Dense(units, activation="softmax")

    def call(self, x):
        return self.scores(self.hidden(x))


@pytest.mark.parametrize("built", [True, False])
def test_subclassed_model_trains_as_a_copy(iris, built):
    """A subclassed keras.Model (built or not, or from a factory) trains
    inside a functional wrapper; the user's instance keeps its weights."""
    X, y = iris
    user_model = _SubclassedNet()
    if built:
        user_model(X[:2])
    before = [w.copy() for w in user_model.get_weights()]
    est = PretrainedClassifier(user_model, learning_rate=0.01, random_state=0)
    est.fit(X, y)
    assert est.score(X, y) >= 0.85
    assert est.predict_proba(X[:1]).shape == (1, 3)
    assert [w.shape for w in user_model.get_weights()] == [w.shape for w in before]
    for old, new in zip(before, user_model.get_weights()):
        np.testing.assert_array_equal(old, new)
    factory = PretrainedClassifier(lambda: _SubclassedNet(), random_state=0)
    assert factory.fit(X, y).score(X, y) >= 0.85
    assert isinstance(factory.model_.layers[-1], _SubclassedNet)


def test_model_with_wrong_output_size_is_rejected(iris):
    X, y = iris

    def two_outputs():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(inputs))

    with pytest.raises(ValueError, match="5 units.*3 classes"):
        PretrainedClassifier(two_outputs).fit(X, y)
    with pytest.raises(TypeError, match="keras.Model"):
        PretrainedClassifier(lambda: "not a model").fit(X, y)


def test_image_arrays_build_the_default_cnn(digits_images):
    X, y = digits_images
    assert X.shape[1:] == (8, 8)
    est = small(hidden_layer_sizes=(32,), epochs=10, learning_rate=3e-3)
    est.fit(X[:500], y[:500])
    kinds = {type(layer).__name__ for layer in est.model_.layers}
    assert "Conv2D" in kinds
    assert est.input_shape_ == (8, 8)
    assert est.predict_proba(X[500:]).shape == (100, 10)
    assert est.score(X[500:], y[500:]) >= 0.8
    # flattened images: the message gives both sample shapes, not "64 features"
    with pytest.raises(ValueError, match=r"shape \(64,\).*shape \(8, 8\)"):
        est.predict(X[500:].reshape(100, 64))
    with pytest.raises(ValueError, match=r"sample shape \(8, 7\)"):
        est.predict(X[500:, :, :7])


def test_channel_last_images_also_work(digits_images):
    X, y = digits_images
    X = X[..., None]  # (n, 8, 8, 1)
    est = small(hidden_layer_sizes=(16,), epochs=3).fit(X[:200], y[:200])
    assert est.input_shape_ == (8, 8, 1)
    assert est.predict(X[200:210]).shape == (10,)


# --------------------------------------------------------- early stopping
def test_early_stopping_restores_the_best_weights(digits):
    X, y = digits  # 1797 rows: a 10% split gives 180 validation rows
    recorder = Recorder(keep_weights=True)
    est = small(
        hidden_layer_sizes=(64,),
        learning_rate=0.05,  # too high on purpose: validation loss jumps about
        epochs=60,
        patience=3,
        callbacks=[recorder],
    ).fit(X, y)
    val_loss = est.history_["val_loss"]
    assert len(val_loss) == len(est.history_["loss"]) < 60  # stopped early
    best = int(np.argmin(val_loss))
    assert best < len(val_loss) - 1  # the last epoch was not the best
    for kept, restored in zip(recorder.epoch_weights[best], est.model_.get_weights()):
        np.testing.assert_array_equal(kept, restored)


class RestoresOnlyWhenStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping as tf.keras 2 had it: the best weights come back only
    when it stops training itself, never when the epoch budget runs out.

    Keras 3 restores them at the end of every run, which makes sktransfer's
    own restore-at-the-end (``_training.train``) invisible; with this in
    place of Keras' class, that code is what restores them.
    """

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0:
            super().on_train_end(logs)


@pytest.mark.parametrize("keras_restores", [True, False], ids=["keras3", "tf_keras2"])
def test_best_weights_restored_even_without_stopping(
    digits_source, monkeypatch, keras_restores
):
    """No early stop (patience > epochs), yet the best epoch's weights are
    restored at the end. SGD at a learning rate far too high makes the
    validation loss jump about, so the best epoch is not the last one
    (checked: otherwise the test would compare the final weights with
    themselves and could not fail)."""
    if not keras_restores:
        monkeypatch.setattr(keras.callbacks, "EarlyStopping", RestoresOnlyWhenStopping)
    X, y = digits_source
    recorder = Recorder(keep_weights=True)
    est = small(
        optimizer="sgd",
        learning_rate=1.0,
        epochs=8,
        patience=50,
        callbacks=[recorder],
    ).fit(X, y)
    val_loss = est.history_["val_loss"]
    assert len(val_loss) == 8  # never stopped early
    best = int(np.argmin(val_loss))
    assert best != len(val_loss) - 1, "precondition: the last epoch is not the best"
    assert val_loss[-1] > val_loss[best] * 1.5, "precondition: a clearly worse end"
    final = est.model_.get_weights()
    assert not all(
        np.array_equal(last, w) for last, w in zip(recorder.epoch_weights[-1], final)
    ), "the last epoch's weights were kept"
    for kept, restored in zip(recorder.epoch_weights[best], final):
        np.testing.assert_array_equal(kept, restored)


def test_early_stopping_is_skipped_on_tiny_data(iris):
    X, y = iris
    # 10% of 150 rows is 15 validation samples: too few to stop on
    est = small(epochs=12, early_stopping=True).fit(X, y)
    assert "val_loss" not in est.history_
    assert len(est.history_["loss"]) == 6  # 12 epochs in chunks of 2


def test_early_stopping_off_trains_all_epochs(digits_source):
    X, y = digits_source
    est = small(epochs=4, early_stopping=False).fit(X, y)
    assert "val_loss" not in est.history_
    assert len(est.history_["loss"]) == 4


# ----------------------------------------------------------- random state
def _op_determinism_enabled():
    # TF 2.21 has ``enable_op_determinism`` public but its getter private
    getter = getattr(tf.config.experimental, "is_op_determinism_enabled", None)
    if getter is None:
        from tensorflow.python.framework import config

        getter = config.is_op_determinism_enabled
    return bool(getter())


def _global_state():
    return (
        _op_determinism_enabled(),
        np.random.get_state(),  # noqa: NPY002 - the legacy global RNG is the point
        random.getstate(),
    )


def _assert_same_global_state(before, after):
    assert before[0] == after[0]
    for a, b in zip(before[1], after[1]):
        np.testing.assert_array_equal(a, b)
    assert before[2] == after[2]


def test_random_state_reproducible_without_touching_global_state(digits_source):
    X, y = digits_source
    X, y = X[:400], y[:400]
    before = _global_state()
    kwargs = dict(hidden_layer_sizes=(16,), dropout=0.2, epochs=5, random_state=7)
    first = PretrainedClassifier(**kwargs).fit(X, y).predict_proba(X)
    second = PretrainedClassifier(**kwargs).fit(X, y).predict_proba(X)
    _assert_same_global_state(before, _global_state())
    np.testing.assert_array_equal(first, second)
    # a different seed really gives a different network
    other = PretrainedClassifier(**{**kwargs, "random_state": 8}).fit(X, y)
    assert not np.allclose(other.predict_proba(X), first)
    _assert_same_global_state(before, _global_state())


def test_random_state_instance_and_none_leave_global_state_alone(iris):
    X, y = iris
    before = _global_state()
    rng = np.random.RandomState(3)
    rng_state = rng.get_state()
    a = small(epochs=3, random_state=rng).fit(X, y).predict_proba(X)
    b = small(epochs=3, random_state=rng).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)  # the user's RandomState is only read
    np.testing.assert_array_equal(rng.get_state()[1], rng_state[1])
    small(epochs=3, random_state=None).fit(X, y)
    _assert_same_global_state(before, _global_state())


def test_seeded_fit_with_a_user_factory_is_reproducible(iris):
    X, y = iris

    def build(meta):  # unseeded initializers: seeded by the estimator
        inputs = keras.Input((meta["n_features_in_"],))
        hidden = keras.layers.Dense(8, activation="relu")(inputs)
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))

    before = _global_state()
    first = PretrainedClassifier(build, epochs=3, random_state=0).fit(X, y)
    second = PretrainedClassifier(build, epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    _assert_same_global_state(before, _global_state())


# ---------------------------------------------------------- persistence
def test_save_and_load_round_trip(iris, tmp_path):
    X, y = iris
    columns = ["a", "b", "c", "d"]
    frame = pd.DataFrame(X, columns=columns)
    est = small(epochs=10).fit(frame, IRIS_NAMES[y])
    path = tmp_path / "iris.keras"
    est.save(path)
    restored = sktransfer.load(path)
    assert type(restored) is PretrainedClassifier
    np.testing.assert_array_equal(restored.classes_, IRIS_NAMES)
    np.testing.assert_array_equal(restored.feature_names_in_, columns)
    assert restored.n_features_in_ == 4
    assert restored.get_params()["hidden_layer_sizes"] == (16,)
    np.testing.assert_array_equal(restored.predict(frame), est.predict(frame))
    np.testing.assert_allclose(
        restored.predict_proba(frame), est.predict_proba(frame), rtol=1e-6
    )
    # a plain Keras archive too
    network = keras.saving.load_model(path)
    np.testing.assert_allclose(
        network.predict(X, verbose=0),
        est.predict_proba(frame),
        rtol=1e-5,
        atol=1e-6,
    )
    # and the restored estimator can be refitted: its parameters came back
    # whole (seed included), so refitting it on the same data trains, from
    # scratch (not from the file's weights), the network the original fit did
    assert restored.fit(frame, IRIS_NAMES[y]) is restored
    np.testing.assert_allclose(
        restored.predict_proba(frame), est.predict_proba(frame), rtol=0, atol=1e-6
    )
    for new, old in zip(restored.model_.get_weights(), est.model_.get_weights()):
        np.testing.assert_allclose(new, old, rtol=0, atol=1e-6)
    assert restored.history_.keys() == est.history_.keys()
    for key, values in est.history_.items():
        np.testing.assert_allclose(restored.history_[key], values, rtol=1e-6)


def test_save_needs_a_fitted_estimator_and_a_keras_suffix(iris, tmp_path):
    X, y = iris
    with pytest.raises(NotFittedError):
        small().save(tmp_path / "unfitted.keras")
    est = small(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"\.keras"):
        est.save(tmp_path / "model.pkl")


def test_pickle_and_joblib_round_trip(iris, tmp_path):
    X, y = iris
    est = small(epochs=10).fit(X, IRIS_NAMES[y])
    expected = est.predict_proba(X)
    unpickled = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(unpickled.predict_proba(X), expected, rtol=1e-6)
    np.testing.assert_array_equal(unpickled.classes_, IRIS_NAMES)
    joblib.dump(est, tmp_path / "est.joblib")
    loaded = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=1e-6)
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_clone_is_unfitted_and_independent(iris):
    X, y = iris
    est = small(epochs=5, optimizer__beta_1=0.8).fit(X, y)
    expected = est.predict_proba(X)
    twin = clone(est)
    assert not hasattr(twin, "model_")
    assert not hasattr(twin, "classes_")
    with pytest.raises(NotFittedError):
        twin.predict(X)
    assert twin.get_params() == est.get_params()
    twin.set_params(epochs=2, hidden_layer_sizes=(4,))
    assert est.epochs == 5 and est.hidden_layer_sizes == (16,)
    twin.fit(X, y)
    assert twin.model_ is not est.model_
    np.testing.assert_array_equal(est.predict_proba(X), expected)


def test_clone_of_an_estimator_holding_a_model_shares_no_weights(iris):
    X, y = iris
    user_model = _iris_network()
    before = [w.copy() for w in user_model.get_weights()]
    est = PretrainedClassifier(user_model, epochs=2, random_state=0)
    twin = clone(est)
    twin.fit(X, y)
    assert twin.model_ is not user_model
    # clones share the read-only model= network (no deep copy per clone);
    # every fit trains its own private copy of it
    assert twin.model is user_model
    for old, new in zip(before, user_model.get_weights()):
        np.testing.assert_array_equal(old, new)  # the user's model is untouched
    assert est.model is user_model


# ------------------------------------------------------------- bad input
@pytest.fixture
def recorder():
    return Recorder()


def _fit_fails(X, y, exc, match, recorder, **kwargs):
    est = small(callbacks=[recorder], **kwargs)
    with pytest.raises(exc, match=match):
        est.fit(X, y)
    assert recorder.events == [], "training started before the error"
    assert not hasattr(est, "model_")


def test_nan_and_inf_are_rejected_before_training(iris, recorder):
    X, y = iris
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    _fit_fails(X_nan, y, ValueError, "NaN", recorder)
    X_inf = X.copy()
    X_inf[5, 0] = np.inf
    _fit_fails(X_inf, y, ValueError, "infinity", recorder)


def test_one_class_is_rejected(iris, recorder):
    X, y = iris
    _fit_fails(X, np.zeros(len(y)), ValueError, "at least 2 classes", recorder)


def test_continuous_targets_are_rejected(iris, recorder):
    X, y = iris
    _fit_fails(X, X[:, 0], ValueError, "continuous", recorder)


def test_empty_x_is_rejected(recorder):
    _fit_fails(np.empty((0, 4)), np.array([]), ValueError, "0 sample", recorder)


def test_length_mismatch_is_rejected(iris, recorder):
    X, y = iris
    _fit_fails(X, y[:-1], ValueError, "inconsistent numbers of samples", recorder)


def test_sparse_x_is_rejected_with_a_hint(iris, recorder):
    X, y = iris
    _fit_fails(sp.csr_matrix(X), y, TypeError, "dense.*toarray", recorder)


def test_string_x_is_rejected_with_a_hint(iris, recorder):
    X, y = iris
    X_str = X.astype(str).astype(object)
    X_str[0, 0] = "tall"
    _fit_fails(X_str, y, ValueError, "numeric.*Encoder", recorder)


@pytest.mark.parametrize(
    "param, value",
    [
        ("epochs", 0),
        ("epochs", -3),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("validation_split", 1.5),
        ("dropout", 1.0),
        ("class_weight", "balance"),
    ],
)
def test_bad_parameters_are_rejected_before_training(iris, recorder, param, value):
    X, y = iris
    _fit_fails(X, y, ValueError, f"'{param}' parameter", recorder, **{param: value})


def test_bad_hidden_layer_sizes_are_rejected(iris, recorder):
    X, y = iris
    _fit_fails(
        X, y, ValueError, "hidden_layer_sizes", recorder, hidden_layer_sizes=(8, 0)
    )


def test_unknown_parameter_is_named(iris, recorder):
    X, y = iris
    _fit_fails(X, y, TypeError, "hiden_layer_sizes", recorder, hiden_layer_sizes=(4,))


def test_missing_y_is_rejected(iris, recorder):
    X, _ = iris
    _fit_fails(X, None, ValueError, "y is None", recorder)


def test_predict_before_fit_raises_not_fitted(iris):
    X, _ = iris
    est = small()
    for method in (est.predict, est.predict_proba):
        with pytest.raises(NotFittedError):
            method(X)


def test_predict_checks_the_feature_count(iris):
    X, y = iris
    est = small(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="3 features.*expecting 4"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(np.full((2, 4), np.nan))


# ------------------------------------------------- shared source fixtures
def test_pretrained_source_fixtures(pretrained_source, pretrained_file, digits_source):
    """The session source network the transfer tests reuse: fitted on digits
    0-4, saved once, and the file restores it exactly."""
    X, y = digits_source
    np.testing.assert_array_equal(pretrained_source.classes_, [0, 1, 2, 3, 4])
    assert pretrained_source.score(X, y) >= 0.95
    restored = sktransfer.load(pretrained_file)
    np.testing.assert_allclose(
        restored.predict_proba(X), pretrained_source.predict_proba(X), rtol=1e-6
    )
    network = keras.saving.load_model(pretrained_file)
    assert [layer.units for layer in network.layers[1:]] == [32, 16, 5]


def test_fit_verbose_is_routed_to_keras(iris, capsys):
    """``fit__verbose`` overrides ``verbose`` instead of clashing with it."""
    X, y = iris
    clf = PretrainedClassifier(
        hidden_layer_sizes=(8,), epochs=2, random_state=0, fit__verbose=2
    )
    clf.fit(X, y)
    assert "Epoch 2/2" in capsys.readouterr().out
    assert len(clf.history_["loss"]) == 2


@pytest.mark.parametrize(
    "key, fix", [("epochs", "use epochs"), ("shuffle", "use random_state")]
)
def test_fit_keywords_the_loop_sets_raise_before_training(iris, key, fix):
    X, y = iris
    clf = PretrainedClassifier(hidden_layer_sizes=(8,), epochs=2, **{f"fit__{key}": 3})
    with pytest.raises(ValueError, match=f"fit__{key} cannot be routed.*{fix}"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")
