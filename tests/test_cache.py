"""The frozen-feature cache: same predictions, bypassed when wrong, memory.

``TransferClassifier(cache_features=...)`` trains the layers above the
deepest static cut of the network on features computed once per fit, and
with ``memory`` keeps those features on disk and builds the network on a
process-wide frozen copy of the source. Every test trains real (small) Keras
networks on ``load_digits``; the cached and uncached runs are compared with
each other, never with hard-coded numbers. Keras and scikit-learn are not
patched: what the cache did is read from ``feature_cut_`` and from the
joblib memory directory.
"""

from __future__ import annotations

import os
import pickle

import keras
import numpy as np
import pytest
from numpy.testing import assert_allclose

import sktransfer
from sktransfer import TransferClassifier

#: cached and uncached training differ only by float rounding
ATOL = 1e-5


# --------------------------------------------------------------------- helpers
def make(pretrained, **params):
    """A quick, deterministic TransferClassifier (3 epochs, no early stop).

    The cache serves training with the optimizer: these fits cut at the
    penultimate layer and train the head with Adam (the default probe
    trains nothing through the cache; test_probe.py covers it).
    """
    params = {
        "epochs": 3,
        "early_stopping": False,
        "random_state": 0,
        "cut": "penultimate",
        "head_solver": "adam",
        **params,
    }
    return TransferClassifier(pretrained, **params)


def entries(location):
    """Results joblib stored under ``location`` (one ``output.pkl`` each)."""
    return sum("output.pkl" in files for _, _, files in os.walk(location))


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_weights(before, model):
    after = model.get_weights()
    assert len(before) == len(after)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


def seeded(seed):
    return keras.initializers.GlorotUniform(seed)


def pretrain(model, X, y, epochs=3):
    """Train a source network in Keras (seeded shuffling, no sktransfer)."""
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=epochs, batch_size=32, verbose=0, shuffle=False)
    return model


@pytest.fixture(scope="module")
def target(digits_target):
    """Digits 5-9, 300 rows: the target task."""
    X, y = digits_target
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def images(digits):
    """Digits as (n, 8, 8, 1) images: source rows (0-4), target rows (5-9)."""
    X, y = digits
    X = X.reshape(-1, 8, 8, 1)
    source, target = y < 5, y >= 5
    return (X[source][:400], y[source][:400]), (X[target][:300], y[target][:300])


@pytest.fixture(scope="module")
def cnn_bn(images):
    """A small CNN with BatchNormalization, pretrained on digits 0-4."""
    (X, y), _ = images
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", kernel_initializer=seeded(1))(inputs)
    x = keras.layers.BatchNormalization(name="bn_1")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(8, 3, kernel_initializer=seeded(2), name="conv_2")(x)
    x = keras.layers.BatchNormalization(name="bn_2")(x)
    x = keras.layers.ReLU(name="relu_2")(x)
    x = keras.layers.Flatten()(x)
    head = keras.layers.Dense(5, activation="softmax", kernel_initializer=seeded(3))
    outputs = head(x)
    return pretrain(keras.Model(inputs, outputs), X, y)


@pytest.fixture(scope="module")
def mlp_with_dropout(digits_source):
    """Input -> Dense -> Dropout -> Dense -> old head, pretrained."""
    X, y = digits_source
    inputs = keras.Input((64,))
    x = keras.layers.Dense(32, activation="relu", kernel_initializer=seeded(1))(inputs)
    x = keras.layers.Dropout(0.2, seed=0)(x)
    x = keras.layers.Dense(16, activation="relu", kernel_initializer=seeded(2))(x)
    head = keras.layers.Dense(5, activation="softmax", kernel_initializer=seeded(3))
    outputs = head(x)
    return pretrain(keras.Model(inputs, outputs), X, y)


@pytest.fixture(scope="module")
def cnn_flip(images):
    """A CNN whose first layer is a RandomFlip augmentation layer."""
    (X, y), _ = images
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.RandomFlip("horizontal", seed=0)(inputs)
    x = keras.layers.Conv2D(8, 3, kernel_initializer=seeded(1))(x)
    x = keras.layers.Flatten()(x)
    head = keras.layers.Dense(5, activation="softmax", kernel_initializer=seeded(2))
    outputs = head(x)
    return pretrain(keras.Model(inputs, outputs), X, y)


# ------------------------------------------- cached and uncached are the same
@pytest.mark.parametrize("freeze", ["all", 1])
def test_mlp_cached_and_uncached_predict_the_same(pretrained_source, target, freeze):
    X, y = target
    cached = make(pretrained_source, freeze=freeze, cache_features=True).fit(X, y)
    plain = make(pretrained_source, freeze=freeze, cache_features=False).fit(X, y)
    frozen = pretrained_source.model_.layers[1 : 1 + cached.n_frozen_]
    assert cached.feature_cut_ is not None
    assert plain.feature_cut_ is None
    # the cut is at or after the last frozen layer (the pooling-free head
    # starts right after the base for a 2-D output)
    names = [layer.name for layer in cached.model_.layers]
    assert names.index(cached.feature_cut_) >= names.index(frozen[-1].name)
    assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=ATOL)
    for key in plain.history_:
        assert_allclose(cached.history_[key], plain.history_[key], rtol=1e-4)


def test_cnn_with_batchnorm_cached_and_uncached_predict_the_same(cnn_bn, images):
    _, (X, y) = images
    cached = make(cnn_bn, freeze=1, cache_features=True).fit(X, y)
    plain = make(cnn_bn, freeze=1, cache_features=False).fit(X, y)
    # conv_1 + bn_1 are frozen; conv_2 trains: the cut is after bn_1's ReLU
    assert cached.n_frozen_ == 1
    names = [layer.name for layer in cached.model_.layers]
    assert names.index("bn_1") <= names.index(cached.feature_cut_)
    assert names.index(cached.feature_cut_) < names.index("conv_2")
    # A trained convolution above the cut: the cached features come from an
    # eager pass, the uncached ones from the traced training step, and their
    # float32 rounding differs by ~1e-7; 200 epochs of training amplify that
    # to ~1e-4 in the probabilities (seen on AVX2 CPUs). The labels agree.
    cached_proba, plain_proba = cached.predict_proba(X), plain.predict_proba(X)
    assert_allclose(cached_proba, plain_proba, atol=1e-3)
    assert (cached_proba.argmax(1) == plain_proba.argmax(1)).mean() >= 0.99
    # a frozen BatchNormalization keeps its pretrained statistics
    for name in ("bn_1",):
        for old, new in zip(
            cnn_bn.get_layer(name).get_weights(),
            cached.model_.get_layer(name).get_weights(),
        ):
            np.testing.assert_array_equal(old, new)


def test_validation_rows_go_through_the_same_features(pretrained_source, target):
    X, y = target
    params = dict(early_stopping=True, validation_split=0.2, patience=50)
    cached = make(pretrained_source, cache_features=True, **params).fit(X, y)
    plain = make(pretrained_source, cache_features=False, **params).fit(X, y)
    assert "val_loss" in cached.history_
    assert_allclose(cached.history_["val_loss"], plain.history_["val_loss"], rtol=1e-4)
    assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=ATOL)


# ----------------------------------------------- bypassed where it is wrong
def test_dropout_in_the_frozen_part_stops_the_cut(mlp_with_dropout, target):
    X, y = target
    cached = make(mlp_with_dropout, freeze="all", cache_features="auto").fit(X, y)
    plain = make(mlp_with_dropout, freeze="all", cache_features=False).fit(X, y)
    names = [layer.name for layer in cached.model_.layers]
    dropout = next(
        layer.name
        for layer in cached.model_.layers
        if isinstance(layer, keras.layers.Dropout)
    )
    # the first Dense is cached, the Dropout after it still runs every step
    assert cached.feature_cut_ is not None
    assert names.index(cached.feature_cut_) < names.index(dropout)
    assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=ATOL)


def test_dropout_at_the_input_means_no_cut(target):
    X, y = target
    inputs = keras.Input((64,))
    x = keras.layers.Dropout(0.2, seed=0)(inputs)
    x = keras.layers.Dense(16, kernel_initializer=seeded(1))(x)
    outputs = keras.layers.Dense(3, kernel_initializer=keras.initializers.Ones())(x)
    source = keras.Model(inputs, outputs)
    auto = make(source, freeze="all").fit(X, y)
    assert auto.feature_cut_ is None
    with pytest.raises(ValueError, match="cache_features=True"):
        make(source, freeze="all", cache_features=True).fit(X, y)


def test_freeze_zero_caches_nothing(pretrained_source, target):
    X, y = target
    clf = make(pretrained_source, freeze=0).fit(X, y)
    assert clf.n_frozen_ == 0
    assert clf.feature_cut_ is None
    with pytest.raises(ValueError, match="freezes nothing"):
        make(pretrained_source, freeze=0, cache_features=True).fit(X, y)


def test_augmentation_layers_are_never_cached(cnn_flip, images):
    _, (X, y) = images
    clf = make(cnn_flip, freeze="all").fit(X, y)
    assert clf.feature_cut_ is None
    with pytest.raises(ValueError, match="cache_features=True"):
        make(cnn_flip, freeze="all", cache_features=True).fit(X, y)


def test_warmup_phase_caches_deeper_than_fine_tuning(pretrained_source, target):
    X, y = target
    params = dict(freeze=1, warmup_epochs=2)
    cached = make(pretrained_source, cache_features=True, **params).fit(X, y)
    plain = make(pretrained_source, cache_features=False, **params).fit(X, y)
    assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=ATOL)
    # feature_cut_ describes the main phase: after the one frozen layer
    first = pretrained_source.model_.layers[1].name
    assert cached.feature_cut_ == first


# ------------------------------------------------------------------ memory
def test_memory_stores_once_and_hits_on_an_identical_fit(
    pretrained_source, target, tmp_path
):
    X, y = target
    location = str(tmp_path / "cache")
    first = make(pretrained_source, memory=location).fit(X, y)
    stored = entries(location)
    assert stored == 1  # the training rows' features
    second = make(pretrained_source, memory=location).fit(X, y)
    assert entries(location) == stored  # a hit: nothing computed again
    assert_allclose(second.predict_proba(X), first.predict_proba(X), atol=ATOL)
    # the same as without memory
    plain = make(pretrained_source).fit(X, y)
    assert_allclose(first.predict_proba(X), plain.predict_proba(X), atol=ATOL)


def test_memory_keys_on_freeze_depth_and_rows(pretrained_source, target, tmp_path):
    X, y = target
    location = str(tmp_path / "cache")
    make(pretrained_source, freeze="all", memory=location).fit(X, y)
    assert entries(location) == 1
    make(pretrained_source, freeze=1, memory=location).fit(X, y)
    assert entries(location) == 2  # another prefix: other features
    make(pretrained_source, freeze=1, memory=location).fit(X[:200], y[:200])
    assert entries(location) == 3  # other rows
    make(pretrained_source, freeze=1, memory=location).fit(X[:200], y[:200])
    assert entries(location) == 3


def test_memory_scores_held_out_batches_through_the_cache(
    pretrained_source, target, tmp_path
):
    X, y = target
    location = str(tmp_path / "cache")
    clf = make(pretrained_source, memory=location).fit(X[:200], y[:200])
    stored = entries(location)
    held_out = X[200:]
    assert len(held_out) >= 64
    # small batches skip the disk cache, also before model_ is built
    clf.predict_proba(held_out[:10])
    assert entries(location) == stored
    proba = clf.predict_proba(held_out)
    assert entries(location) == stored + 1
    clf.predict_proba(held_out)
    assert entries(location) == stored + 1
    # the whole network, without the cache, predicts the same
    direct = keras.ops.convert_to_numpy(clf.model_(held_out, training=False))
    assert_allclose(proba, direct, atol=ATOL)
    # small batches skip the cache
    clf.predict_proba(held_out[:10])
    assert entries(location) == stored + 1


def test_memory_accepts_a_joblib_memory(pretrained_source, target, tmp_path):
    joblib = pytest.importorskip("joblib")
    X, y = target
    memory = joblib.Memory(str(tmp_path / "cache"), verbose=0)
    clf = make(pretrained_source, memory=memory).fit(X, y)
    assert entries(str(tmp_path / "cache")) == 1
    assert clf.feature_cut_ is not None


# ------------------------------------------- sharing a frozen source (memory)
@pytest.mark.parametrize("freeze", ["all", 1])
def test_memory_builds_the_same_network(pretrained_source, target, tmp_path, freeze):
    X, y = target
    location = str(tmp_path / "cache")
    shared = make(pretrained_source, freeze=freeze, memory=location).fit(X, y)
    private = make(pretrained_source, freeze=freeze).fit(X, y)
    assert [layer.name for layer in shared.model_.layers] == [
        layer.name for layer in private.model_.layers
    ]
    assert shared.base_layers_ == private.base_layers_
    assert shared.feature_cut_ == private.feature_cut_
    assert [w.trainable for w in shared.model_.weights] == [
        w.trainable for w in private.model_.weights
    ]
    assert_allclose(shared.predict_proba(X), private.predict_proba(X), atol=ATOL)


def _keras_objects(estimator):
    """Ids of every layer (nested ones too) and variable of a fitted model_."""
    model = estimator.model_
    layers = [model, *model._flatten_layers(include_self=False, recursive=True)]
    return {id(x) for x in layers} | {id(v) for v in model.weights}


def test_fits_with_memory_share_no_keras_object(pretrained_source, target, tmp_path):
    X, y = target
    location = str(tmp_path / "cache")
    source_weights = weights_of(pretrained_source.model_)
    source_flags = [layer.trainable for layer in pretrained_source.model_.layers]
    a = make(pretrained_source, freeze=1, memory=location).fit(X, y)
    b = make(pretrained_source, freeze=1, memory=location, learning_rate=0.01).fit(X, y)
    # the fits ran through the cache and trained only the part above it
    assert a.feature_cut_ is not None and "_detached" in vars(a)
    assert not _keras_objects(a) & _keras_objects(b)
    assert not _keras_objects(a) & (
        {id(layer) for layer in pretrained_source.model_.layers}
        | {id(v) for v in pretrained_source.model_.weights}
    )
    # the user's source is untouched
    assert_same_weights(source_weights, pretrained_source.model_)
    assert [
        layer.trainable for layer in pretrained_source.model_.layers
    ] == source_flags
    # a later fit that trains everything leaves the earlier ones alone
    a_proba = a.predict_proba(X)
    a_weights = weights_of(a.model_)
    make(pretrained_source, freeze=0, memory=location, learning_rate=0.05).fit(X, y)
    assert_same_weights(a_weights, a.model_)
    assert_allclose(a.predict_proba(X), a_proba, atol=0)


def test_training_one_model_in_keras_changes_no_other(
    pretrained_source, target, tmp_path
):
    """Two candidates of one grid search; the user trains one's model_."""
    X, y = target
    location = str(tmp_path / "cache")
    a = make(pretrained_source, freeze="all", memory=location).fit(X, y)
    b = make(pretrained_source, freeze="all", memory=location).fit(X, y)
    b_proba = b.predict_proba(X)  # scored through the cache, never built
    assert not b._detached.materialized
    model = a.model_
    for layer in model.layers:
        layer.trainable = True
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(X, np.eye(5)[y - 5], epochs=2, verbose=0)
    # a predicts with its changed network; b and the source are unchanged
    assert_allclose(a.predict_proba(X), model.predict(X, verbose=0), atol=1e-5)
    assert np.abs(a.predict_proba(X) - b_proba).max() > 1e-3
    assert_allclose(b.predict_proba(X), b_proba, atol=0)
    assert_allclose(b.model_.predict(X, verbose=0), b_proba, atol=1e-5)
    later = make(pretrained_source, freeze="all", memory=location).fit(X, y)
    assert_allclose(later.predict_proba(X), b_proba, atol=0)


def test_a_tampered_frozen_source_is_not_reused(pretrained_source, target, tmp_path):
    X, y = target
    location = str(tmp_path / "cache")
    first = make(pretrained_source, freeze="all", memory=location).fit(X, y)
    # the user trains the whole fitted network in Keras: its shared layers
    # change too, and the next fit must not start from them
    model = first.model_
    for layer in model.layers:
        layer.trainable = True
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(X, np.eye(5)[y - 5], epochs=1, verbose=0)
    later = make(pretrained_source, freeze="all", memory=location).fit(X, y)
    for name in later.base_layers_:
        for old, new in zip(
            pretrained_source.model_.get_layer(name).get_weights(),
            later.model_.get_layer(name).get_weights(),
        ):
            np.testing.assert_array_equal(old, new)
    plain = make(pretrained_source, freeze="all").fit(X, y)
    assert_allclose(later.predict_proba(X), plain.predict_proba(X), atol=ATOL)


def test_memory_with_a_source_file(pretrained_file, target, tmp_path):
    X, y = target
    location = str(tmp_path / "cache")
    fits = [
        make(pretrained_file, freeze=1, memory=location).fit(X, y) for _ in range(3)
    ]
    plain = make(pretrained_file, freeze=1).fit(X, y)
    for clf in fits:
        assert_allclose(clf.predict_proba(X), plain.predict_proba(X), atol=ATOL)
    assert entries(location) == 1


def test_memory_with_a_cnn_and_batchnorm(cnn_bn, images, tmp_path):
    _, (X, y) = images
    location = str(tmp_path / "cache")
    shared = make(cnn_bn, freeze=1, memory=location).fit(X, y)
    private = make(cnn_bn, freeze=1).fit(X, y)
    assert shared.feature_cut_ == private.feature_cut_
    assert_allclose(shared.predict_proba(X), private.predict_proba(X), atol=ATOL)


# --------------------------------------------------- persistence and copies
def test_feature_cut_survives_save_and_load(pretrained_file, target, tmp_path):
    X, y = target
    clf = make(pretrained_file, freeze=1).fit(X, y)
    path = clf.save(str(tmp_path / "clf.keras"))
    loaded = sktransfer.load(path)
    assert loaded.feature_cut_ == clf.feature_cut_ is not None
    assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=ATOL)


def test_pickle_with_memory_path(pretrained_source, target, tmp_path):
    X, y = target
    location = str(tmp_path / "cache")
    clf = make(pretrained_source, memory=location).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.memory == location
    assert restored.feature_cut_ == clf.feature_cut_
    assert_allclose(restored.predict_proba(X), clf.predict_proba(X), atol=ATOL)
    # the restored network is its own: training it changes nothing in clf
    proba = clf.predict_proba(X)
    refit = pickle.loads(pickle.dumps(make(pretrained_source, memory=location)))
    refit.fit(X, y)
    assert_allclose(clf.predict_proba(X), proba, atol=0)


# ------------------------------------------------- user callbacks and cache
def test_user_callbacks_see_the_whole_network_under_the_cache(
    pretrained_source, target, tmp_path
):
    """A ModelCheckpoint saves the network a user feeds X to, not the part."""
    X, y = target
    path = str(tmp_path / "checkpoint.keras")

    class Seen(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.input_shape = tuple(self.model.inputs[0].shape)

    seen = Seen()
    checkpoint = keras.callbacks.ModelCheckpoint(path)
    est = make(pretrained_source, freeze="all", callbacks=[checkpoint, seen])
    est.fit(X, y)
    assert est.feature_cut_ is not None  # trained on cached features
    assert seen.input_shape == (None, X.shape[1])
    saved = keras.saving.load_model(path)
    assert_allclose(saved.predict(X, verbose=0), est.predict_proba(X), atol=1e-5)


def test_a_user_early_stopping_stops_a_cached_fit(pretrained_source, target):
    X, y = target
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    est = make(pretrained_source, freeze="all", epochs=50, callbacks=[stopper])
    est.fit(X, y)
    assert est.feature_cut_ is not None
    assert len(est.history_["loss"]) == 2  # the first epoch, then no gain of 10
