"""Integer inputs: token ids into an ``Embedding`` network, for both estimators.

X follows the network's input dtype (``keras.Input(dtype="int32")``) in fit
and in every prediction path: the compiled inference function, the feature
cache, ``memory`` and a saved-and-loaded estimator. Non-integer values for an
integer input are a ``ValueError`` before training. The corpus is generated
(seeded): token sequences from a few "topics", nothing downloaded.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sktransfer import PretrainedClassifier, TransferClassifier, load

VOCAB, LENGTH = 40, 12


def _corpus(n, n_topics, seed):
    """``n`` sequences of token ids; each topic favours 5 tokens of its own."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_topics, size=n)
    favoured = 5 * topic[:, None] + rng.integers(0, 5, size=(n, LENGTH))
    noise = rng.integers(0, VOCAB, size=(n, LENGTH))
    X = np.where(rng.random((n, LENGTH)) < 0.6, favoured, noise)
    return X.astype(np.int64), topic


def _text_network(n_classes=6):
    """Seeded initial weights: the same source whatever ran before."""
    inputs = keras.Input(shape=(LENGTH,), dtype="int32")
    init = keras.initializers.RandomUniform(-0.05, 0.05, seed=0)
    h = keras.layers.Embedding(VOCAB, 8, embeddings_initializer=init, name="embed")(
        inputs
    )
    h = keras.layers.GlobalAveragePooling1D()(h)
    for units, name, activation, seed in [
        (8, "hidden", "relu", 1),
        (n_classes, "old_head", "softmax", 2),
    ]:
        h = keras.layers.Dense(
            units,
            activation=activation,
            name=name,
            kernel_initializer=keras.initializers.GlorotUniform(seed),
        )(h)
    return keras.Model(inputs, h)


@pytest.fixture(scope="module")
def text_source():
    """A PretrainedClassifier on 6 topics with an int32 Embedding network."""
    X, y = _corpus(300, 6, seed=0)
    return PretrainedClassifier(
        _text_network(), learning_rate=0.02, epochs=15, random_state=0
    ).fit(X, y)


@pytest.fixture(scope="module")
def text_target():
    """Other documents, labelled "first three topics or not" (2 classes)."""
    X, topic = _corpus(200, 6, seed=1)
    return X, (topic < 3).astype(int)


def test_an_embedding_network_fits_predicts_and_scores(text_source):
    X, y = _corpus(120, 6, seed=2)
    assert text_source.model_.inputs[0].dtype == "int32"
    proba = text_source.predict_proba(X)
    assert proba.shape == (120, 6)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert text_source.score(X, y) > 0.6  # chance is 1/6
    # ids given as integral floats (a DataFrame read from CSV) are the same ids
    assert_array_equal(
        text_source.predict(X.astype(np.float64)), text_source.predict(X)
    )


@pytest.mark.parametrize(
    "params",
    [
        {"freeze": "all"},  # head trained on cached features
        {"freeze": 0},  # the embedding itself is fine-tuned
        {"freeze": "all", "warmup_epochs": 5, "freeze_then": 0},
    ],
    ids=["frozen", "fine-tuned", "warm-up"],
)
def test_transfer_from_an_embedding_network(text_source, text_target, params):
    X, y = text_target
    params = dict(params)
    freeze = params.pop("freeze_then", params.pop("freeze"))
    clf = TransferClassifier(
        text_source, freeze=freeze, learning_rate=0.02, epochs=10, random_state=0,
        **params,
    ).fit(X, y)  # fmt: skip
    assert clf.model_.inputs[0].dtype == "int32"
    assert clf.predict_proba(X).shape == (len(y), 2)
    assert set(clf.predict(X)) <= {0, 1}
    assert clf.score(X, y) > 0.7


def test_transfer_with_memory_and_after_save_and_load(
    text_source, text_target, tmp_path
):
    X, y = text_target
    params = dict(freeze="all", learning_rate=0.02, epochs=10, random_state=0)
    cached = TransferClassifier(
        text_source, memory=str(tmp_path / "cache"), **params
    ).fit(X, y)
    plain = TransferClassifier(text_source, **params).fit(X, y)
    assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=1e-5)
    with pytest.warns(UserWarning, match="not plain values"):  # the source object
        loaded = load(cached.save(tmp_path / "text.keras"))
    assert_allclose(loaded.predict_proba(X), cached.predict_proba(X), atol=1e-6)
    assert loaded.score(X, y) == cached.score(X, y)


def test_non_integer_values_for_an_integer_input_are_refused(text_source, text_target):
    X, y = text_target
    fractional = X + 0.5
    for clf in (
        PretrainedClassifier(_text_network(2), epochs=1),
        TransferClassifier(text_source, epochs=1),
    ):
        with pytest.raises(ValueError, match="takes int32 inputs.*non-integer"):
            clf.fit(fractional, y)
        assert not hasattr(clf, "history_")  # refused before any training
    with pytest.raises(ValueError, match="takes int32 inputs.*non-integer"):
        text_source.predict(fractional)


@pytest.mark.parametrize("shift", [VOCAB, -1])
def test_ids_outside_the_embedding_vocabulary_are_refused(
    text_source, text_target, tmp_path, shift
):
    """Ids the Embedding cannot look up: a ValueError naming the vocabulary
    before any training (TensorFlow fails mid-fit), and at predict time,
    also after save and load."""
    X, y = text_target
    outside = X.copy()
    outside[0, 0] = VOCAB if shift > 0 else -1
    for clf in (
        PretrainedClassifier(_text_network(2), epochs=1),
        TransferClassifier(text_source, epochs=1),
    ):
        with pytest.raises(ValueError, match=f"embeds ids 0..{VOCAB - 1}"):
            clf.fit(outside, y)
        assert not hasattr(clf, "history_")
    with pytest.raises(ValueError, match="input_dim is"):
        text_source.predict(outside)
    clf = TransferClassifier(text_source, epochs=1).fit(X, y)
    with pytest.warns(UserWarning, match="not plain values"):
        loaded = load(clf.save(tmp_path / "text.keras"))
    with pytest.raises(ValueError, match="input_dim is"):
        loaded.predict(outside)


def test_a_callable_building_an_embedding_network(text_target):
    X, y = text_target

    def build(meta):
        inputs = keras.Input(shape=meta["input_shape_"], dtype="int32")
        h = keras.layers.Embedding(VOCAB, 4)(inputs)
        h = keras.layers.GlobalAveragePooling1D()(h)
        outputs = keras.layers.Dense(meta["n_classes_"], activation="softmax")(h)
        return keras.Model(inputs, outputs)

    clf = PretrainedClassifier(build, learning_rate=0.02, epochs=10, random_state=0)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.7


def test_float_networks_still_take_floats(iris):
    X, y = iris
    clf = PretrainedClassifier(hidden_layer_sizes=(4,), epochs=2, random_state=0)
    clf.fit(X.astype(np.float64), y)
    # an integer table into a float network is just numbers
    proba = clf.predict_proba(np.round(X).astype(int))
    assert proba.shape == (len(X), 3) and np.isfinite(proba).all()
