"""Unit tests of the layers below the estimators: no estimator is built.

Input validation, the training loop (``_training.train`` with a
``TrainSpec``), network surgery (``_network``) and file reading
(``_files``) are functions of plain arguments; these tests call them
directly on small real Keras networks and real data. They also pin the
wording of the few upstream messages sktransfer still has to recognise.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator
from sklearn.datasets import load_iris

from sktransfer._files import (
    KERAS_UNKNOWN_MARKERS,
    KERAS_UNSAFE_MARKERS,
    _holds_code,
    load_keras_model,
)
from sktransfer._network import add_head, cut_network, split_at
from sktransfer._training import TrainSpec, history_entries, train, validation_split
from sktransfer._validation import (
    check_targets,
    combine_weights,
    shape_error,
    validate_X,
)


class Probe(BaseEstimator):
    """The smallest object ``validate_data`` accepts."""


@pytest.fixture(scope="module")
def iris_data():
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y.astype(np.int32)


def mlp(n_features, n_classes, seed=0):
    inputs = keras.Input((n_features,), name="x")
    hidden = keras.layers.Dense(
        8,
        activation="relu",
        name="hidden",
        kernel_initializer=keras.initializers.GlorotUniform(seed),
    )(inputs)
    outputs = keras.layers.Dense(
        n_classes,
        activation="softmax",
        name="out",
        kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
    )(hidden)
    return keras.Model(inputs, outputs)


# ------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "X, exc, match",
    [
        (sp.csr_matrix(np.ones((3, 2))), TypeError, r"(?s)dense.*toarray"),
        (np.full((3, 2), "a"), ValueError, r"(?s)non-numeric.*OrdinalEncoder"),
        (np.array([[1.0, np.inf]]), ValueError, r"(?s)infinity.*nan_to_num"),
        (np.array([[1.0, np.nan]]), ValueError, r"(?s)NaN.*SimpleImputer"),
        (np.array([[1e300, 0.0]]), ValueError, r"(?s)too large for float32.*Scale"),
    ],
)
def test_validate_X_names_the_problem_and_the_fix(X, exc, match):
    with pytest.raises(exc, match=match):
        validate_X(Probe(), X, reset=True)


def test_validate_X_checks_the_fitted_sample_shape():
    probe = Probe()
    validate_X(probe, np.ones((4, 8, 8)), reset=True)
    with pytest.raises(ValueError, match=r"sample shape \(64,\).*\(8, 8\).*reshape"):
        validate_X(probe, np.ones((4, 64)), reset=False, input_shape=(8, 8))
    table = Probe()
    validate_X(table, np.ones((4, 3)), reset=True)
    with pytest.raises(ValueError, match=r"2 features.*expecting 3"):
        validate_X(table, np.ones((4, 2)), reset=False, input_shape=(3,))


def test_validate_X_follows_an_integer_input_dtype():
    ids = validate_X(
        Probe(), np.array([[1.0, 2.0], [3.0, 4.0]]), reset=True, dtype="int32"
    )
    assert ids.dtype == np.int32
    assert ids.tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="non-integer"):
        validate_X(Probe(), np.array([[1.5, 2.0]]), reset=True, dtype="int32")


def test_shape_error_is_the_one_message():
    error = shape_error((3,), (4,), "the model expects", "Fix it.")
    assert str(error) == (
        "X has sample shape (3,), but the model expects (4,). Fix it."
    )


def test_check_targets():
    with pytest.raises(ValueError, match=r"(?s)continuous.*regressor"):
        check_targets(np.linspace(0, 1, 10), "Probe")
    with pytest.raises(ValueError, match=r"only 1 class \(7\)"):
        check_targets(np.full(5, 7), "Probe")
    check_targets(np.array(["a", "b"]), "Probe")


def test_combine_weights():
    X = np.ones((4, 2))
    y = np.array([0, 0, 0, 1])
    balanced = combine_weights(X, y, None, "balanced", np.array(["a", "b"]))
    assert_allclose(balanced, [4 / 6, 4 / 6, 4 / 6, 2.0])
    by_label = combine_weights(X, y, [1, 1, 2, 1], {"b": 3.0}, np.array(["a", "b"]))
    assert_allclose(by_label, [1, 1, 2, 3])
    with pytest.raises(ValueError, match="names class 'c'"):
        combine_weights(X, y, None, {"c": 1.0}, np.array(["a", "b"]))
    with pytest.raises(ValueError, match="fewer than 2 classes"):
        combine_weights(X, y, [1, 1, 1, 0], None, np.array(["a", "b"]))


# --------------------------------------------------------------- training
def test_validation_split_is_skipped_on_small_data():
    y = np.repeat([0, 1], 50)
    assert validation_split(y, early_stopping=True, fraction=0.1, seed=0)[1] is None
    y = np.repeat([0, 1, 2], 100)
    train_idx, val_idx = validation_split(y, early_stopping=True, fraction=0.1, seed=0)
    assert len(val_idx) == 30 and len(train_idx) == 270
    assert np.bincount(y[val_idx]).tolist() == [10, 10, 10]  # stratified
    again = validation_split(y, early_stopping=True, fraction=0.1, seed=0)[1]
    assert val_idx.tolist() == again.tolist()  # seeded


def _spec(n_classes, **params):
    return TrainSpec(
        make_optimizer=lambda lr: keras.optimizers.Adam(lr),
        n_classes=n_classes,
        **params,
    )


def test_train_fits_and_reports_history(iris_data):
    X, y = iris_data
    model = mlp(4, 3)
    split = (np.arange(len(y)), None)
    history = train(
        model, X, y, np.ones(len(y), np.float32), _spec(3),
        seed=0, epochs=30, learning_rate=0.05, split=split,
    )  # fmt: skip
    # no epoch boundary needed: 30 epochs in 10 chunks of 3
    assert len(history["loss"]) == 10
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert (model(X).numpy().argmax(1) == y).mean() > 0.9


@pytest.mark.parametrize("epochs, entries", [(200, 10), (30, 10), (12, 6), (7, 7)])
def test_history_entries_are_equal_whole_chunks(epochs, entries):
    assert history_entries(epochs) == entries
    assert epochs % entries == 0


def test_chunked_epochs_take_the_same_steps_as_epoch_by_epoch(iris_data):
    """Chunks change how often Keras returns to Python, not the training.

    The same number of optimizer steps (a partial last batch every pass),
    reshuffled every pass (tf.data draws another order than per-epoch
    iterators do, so the weights are not bit-equal): the same fit quality.
    """
    X, y = iris_data
    losses, steps = [], []
    for chunked in (True, False):
        model = mlp(4, 3, seed=1)
        history = train(
            model, X, y, np.ones(len(y), np.float32), _spec(3, batch_size=64),
            seed=0, epochs=60, learning_rate=0.01, split=(np.arange(len(y)), None),
            chunked=chunked,
        )  # fmt: skip
        assert len(history["loss"]) == (10 if chunked else 60)  # 6 epochs a chunk
        steps.append(int(model.optimizer.iterations.numpy()))
        model.compile(loss="sparse_categorical_crossentropy")
        losses.append(model.evaluate(X, y, verbose=0))
    assert steps == [60 * 3, 60 * 3]  # 150 rows in batches of 64: 3 a pass
    assert losses[0] == pytest.approx(losses[1], rel=0.05)


def test_train_restores_the_best_weights_at_the_end(iris_data):
    """Without an early stop, the best epoch's weights are restored too.

    A learning rate far too high makes the validation loss jump around, so
    the best epoch is not the last one (checked, so the test can fail).
    """
    X, y = iris_data
    X = np.concatenate([X] * 3)
    y = np.concatenate([y] * 3)
    model = mlp(4, 3, seed=3)
    split = validation_split(y, early_stopping=True, fraction=0.2, seed=0)
    spec = TrainSpec(
        make_optimizer=lambda lr: keras.optimizers.SGD(lr),
        n_classes=3,
        patience=1000,  # never stops early
    )
    history = train(
        model, X, y, np.ones(len(y), np.float32), spec,
        seed=0, epochs=25, learning_rate=0.9, split=split,
    )  # fmt: skip
    val = np.array(history["val_loss"])
    assert len(val) == 25
    assert val.argmin() != len(val) - 1, "precondition: the last epoch is not best"
    model.compile(loss="sparse_categorical_crossentropy")
    final = model.evaluate(X[split[1]], y[split[1]], verbose=0)
    assert final == pytest.approx(val.min(), rel=1e-4)


def test_train_refuses_a_diverged_network(iris_data):
    X, y = iris_data
    with pytest.raises(ValueError, match=r"(?s)diverged.*StandardScaler"):
        train(
            mlp(4, 3), X * 1e18, y, np.ones(len(y), np.float32), _spec(3),
            seed=0, epochs=3, learning_rate=10.0, split=(np.arange(len(y)), None),
        )  # fmt: skip


# ---------------------------------------------------------------- network
def test_cut_network_forms():
    model = mlp(4, 3)
    assert [layer.name for layer in cut_network(model, "penultimate", (4,)).layers] == [
        "x",
        "hidden",
    ]
    # "auto" is "multi": the hidden layer, then the source's logits and
    # probabilities, concatenated
    auto = cut_network(model, "auto", (4,))
    assert [layer.name for layer in auto.layers][:2] == ["x", "hidden"]
    assert auto.outputs[0].shape[-1] == 8 + 3 + 3
    assert cut_network(model, None, (4,)) is model
    assert cut_network(model, "hidden", (4,)).outputs[0].shape[-1] == 8
    assert cut_network(model, -1, (4,)).outputs[0].shape[-1] == 8
    with pytest.raises(ValueError, match=r"(?s)'nope' is not a layer.*'hidden'"):
        cut_network(model, "nope", (4,))
    with pytest.raises(ValueError, match="out of range"):
        cut_network(model, 9, (4,))


def test_cut_network_builds_an_unbuilt_sequential_and_wraps_a_subclass():
    sequential = keras.Sequential([keras.layers.Dense(5), keras.layers.Dense(2)])
    base = cut_network(sequential, "penultimate", (3,))
    assert base.outputs[0].shape[-1] == 5

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(6)

        def call(self, x):
            return self.dense(x)

    wrapped = cut_network(Net(), None, (3,))
    assert tuple(wrapped.inputs[0].shape) == (None, 3)
    assert wrapped.outputs[0].shape[-1] == 6
    with pytest.raises(ValueError, match=r"(?s)subclassed.*cut=None"):
        cut_network(Net(), "auto", (3,))


def test_add_head_names_avoid_the_base_and_reserved_names():
    base = cut_network(mlp(4, 3), "auto", (4,))
    model = add_head(
        base, 5, hidden_layer_sizes=(7,), dropout=0.1, activation="relu", seed=0,
        reserved_names={"head_output"},
    )  # fmt: skip
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["x", "hidden"]
    assert "head_output" not in names and "head_output_1" in names
    assert len(names) == len(set(names))
    assert model.outputs[0].shape[-1] == 5


def test_split_at_builds_once():
    model = mlp(4, 3)
    first = split_at(model, "hidden")
    assert split_at(model, "hidden") == first
    X = np.random.default_rng(0).random((5, 4)).astype(np.float32)
    prefix, rest = first
    assert_allclose(rest(prefix(X)).numpy(), model(X).numpy(), atol=1e-6)


# ------------------------------------------------------------------ files
def _lambda_model():
    inputs = keras.Input((2,))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    return keras.Model(inputs, outputs)


def test_a_keras_file_with_code_is_refused_before_keras_reads_it(tmp_path):
    path = str(tmp_path / "lambda.keras")
    _lambda_model().save(path)
    assert _holds_code(path)
    with pytest.raises(ValueError, match=r"(?s)Python code.*allow_unsafe=True"):
        load_keras_model(path)
    assert load_keras_model(path, allow_unsafe=True).outputs[0].shape[-1] == 2
    plain = str(tmp_path / "plain.keras")
    mlp(2, 2).save(plain)
    assert not _holds_code(plain)


def test_pinned_keras_wording_of_the_unsafe_h5_refusal(tmp_path):
    """A legacy .h5 file is not scanned: Keras' own refusal is recognised."""
    path = str(tmp_path / "lambda.h5")
    _lambda_model().save(path)  # Keras logs that .h5 is legacy
    with pytest.raises(Exception) as info:
        keras.saving.load_model(path, safe_mode=True)
    assert any(marker in str(info.value) for marker in KERAS_UNSAFE_MARKERS)
    with pytest.raises(ValueError, match=r"(?s)Python code.*allow_unsafe=True"):
        load_keras_model(path)


def test_a_weights_only_file_names_the_fix(tmp_path):
    """``save_weights`` files hold no architecture: say how to use them."""
    path = str(tmp_path / "net.weights.h5")
    mlp(2, 2).save_weights(path)
    with pytest.raises(ValueError, match=r"(?s)weights only.*load_weights"):
        load_keras_model(path, what="pretrained")


@keras.saving.register_keras_serializable(package="sktransfer_tests")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return x * 2


def test_pinned_keras_wording_of_an_unknown_class(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, Doubler()(inputs))
    path = str(tmp_path / "custom.keras")
    model.save(path)
    registered = keras.saving.get_custom_objects().pop("sktransfer_tests>Doubler")
    try:
        with pytest.raises(Exception) as info:
            keras.saving.load_model(path)
        assert any(marker in str(info.value) for marker in KERAS_UNKNOWN_MARKERS)
        with pytest.raises(ValueError, match=r"(?s)custom object.*custom_objects"):
            load_keras_model(path)
    finally:
        keras.saving.get_custom_objects()["sktransfer_tests>Doubler"] = registered
