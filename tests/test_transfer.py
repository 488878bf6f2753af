"""TransferClassifier on real (small) Keras networks and real sklearn data.

Every test pretrains or builds a genuine Keras network (MLPs and a small CNN
on ``load_digits``, a network with BatchNormalization, nested models, an
untrained ``keras.applications.MobileNetV3Small``) and checks the contract of
the estimator: the forms ``pretrained`` may take, ``cut``, ``freeze``, the
new head, two-phase fine-tuning, the shape checks made before training, and
the scikit-learn integration (grid search over the freeze depth, validation
curves, cross-validation, pipelines, pickle, save/load, clone).

Expected values are never hard-coded: they are derived from the source
network (its layers, its weights) or from a fresh fit, so each assertion can
fail. Shared networks are module-scoped and read-only; the tests assert that
they are left unchanged.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import pickle
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ValidationCurveDisplay,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import TransferClassifier
from sktransfer._runtime import temporary_seed

_NORMALIZATION = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
)

#: tests that watch the network through a Keras callback need the whole
#: network in ``fit``: turn the frozen-feature cache off where it exists
NO_CACHE = (
    {"cache_features": False}
    if "cache_features" in inspect.signature(TransferClassifier).parameters
    else {}
)


# --------------------------------------------------------------------- helpers
def make(pretrained, **params):
    """A quick, deterministic TransferClassifier (2 epochs, no early stop).

    These tests pin the structure of cuts, freezing and heads, so they cut
    at the penultimate layer unless told otherwise (the default "multi"
    cut is tested in test_probe.py).
    """
    params = {
        "epochs": 2,
        "early_stopping": False,
        "random_state": 0,
        "cut": "penultimate",
        **params,
    }
    return TransferClassifier(pretrained, **params)


def leaf_layers(model):
    """Layers of ``model`` in order, nested models expanded."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def reference_groups(model):
    """The freeze units of ``model`` by the documented rule, as name lists.

    Depth counts layers that carry weights, from the input, nested models
    flattened; a normalization layer goes with the weighted layer before it.
    """
    groups = []
    for layer in leaf_layers(model):
        if not layer.weights:
            continue
        if isinstance(layer, _NORMALIZATION) and groups:
            groups[-1].append(layer.name)
        else:
            groups.append([layer.name])
    return groups


def layer_weights(model):
    """``{layer name: [arrays]}`` for every weighted leaf layer."""
    return {
        layer.name: [np.array(w) for w in layer.get_weights()]
        for layer in leaf_layers(model)
        if layer.weights
    }


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def model_snapshot(model):
    return [np.array(w) for w in model.get_weights()]


def assert_model_unchanged(model, snapshot):
    assert same_weights(model_snapshot(model), snapshot), "the source was modified"


def sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def assert_frozen_and_trained(clf, source_model, groups, n_frozen):
    """Frozen groups keep the source weights exactly; the others moved."""
    source = layer_weights(source_model)
    fitted = layer_weights(clf.model_)
    for group in groups[:n_frozen]:
        for name in group:
            assert same_weights(fitted[name], source[name]), f"{name} moved"
    for group in groups[n_frozen:]:
        name = group[0]
        assert not same_weights(fitted[name], source[name]), f"{name} not trained"


def new_layers(clf, source_model):
    """The layers of ``clf.model_`` that do not come from the source."""
    names = {layer.name for layer in leaf_layers(source_model)}
    return [layer for layer in leaf_layers(clf.model_) if layer.name not in names]


class TrainingSpy(keras.callbacks.Callback):
    """Records whether Keras training ever started."""

    def __init__(self):
        super().__init__()
        self.started = False

    def on_train_begin(self, logs=None):
        self.started = True


class WeightRecorder(keras.callbacks.Callback):
    """Records every weighted layer's weights at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(layer_weights(self.model))


def _pretrain(model, X, y, epochs=3):
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
    )
    model.fit(X, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def _dense(units, name, activation="relu", seed=0):
    return keras.layers.Dense(
        units,
        activation=activation,
        name=name,
        kernel_initializer=keras.initializers.GlorotUniform(seed),
    )


# -------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def target(digits_target):
    """300 rows of digits 5-9 (the target task), 64 features in [0, 1]."""
    X, y = digits_target
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def target_images(target):
    X, y = target
    return X.reshape(-1, 8, 8, 1), y


@pytest.fixture(scope="module")
def functional_mlp(digits_source):
    inputs = keras.Input((64,))
    x = _dense(24, "f_hidden1", seed=1)(inputs)
    x = _dense(12, "f_hidden2", seed=2)(x)
    outputs = _dense(5, "f_head", "softmax", seed=3)(x)
    return _pretrain(keras.Model(inputs, outputs, name="f_mlp"), *digits_source)


@pytest.fixture(scope="module")
def sequential_mlp(digits_source):
    model = keras.Sequential(
        [
            keras.Input((64,)),
            _dense(20, "s_hidden1", seed=4),
            _dense(10, "s_hidden2", seed=5),
            _dense(5, "s_head", "softmax", seed=6),
        ],
        name="s_mlp",
    )
    return _pretrain(model, *digits_source)


@pytest.fixture(scope="module")
def nested_sequential(digits_source):
    """Sequential([Input, inner functional model (Dense-BN-Dense), Dense])."""
    inputs = keras.Input((64,))
    x = _dense(16, "n_inner1", activation=None, seed=7)(inputs)
    x = keras.layers.BatchNormalization(name="n_inner_bn")(x)
    x = keras.layers.Activation("relu", name="n_inner_relu")(x)
    x = _dense(12, "n_inner2", seed=8)(x)
    inner = keras.Model(inputs, x, name="n_inner_model")
    model = keras.Sequential(
        [keras.Input((64,)), inner, _dense(5, "n_head", "softmax", seed=9)],
        name="n_outer",
    )
    return _pretrain(model, *digits_source)


@pytest.fixture(scope="module")
def nested_functional(digits_source):
    """A functional model that calls an inner Sequential model."""
    inner = keras.Sequential(
        [
            keras.Input((64,)),
            _dense(16, "nf_inner1", seed=10),
            _dense(12, "nf_inner2", seed=11),
        ],
        name="nf_inner_model",
    )
    inputs = keras.Input((64,))
    x = inner(inputs)
    x = _dense(8, "nf_after", seed=12)(x)
    outputs = _dense(5, "nf_head", "softmax", seed=13)(x)
    return _pretrain(keras.Model(inputs, outputs, name="nf_outer"), *digits_source)


@pytest.fixture(scope="module")
def bn_mlp(digits_source):
    """Dense-BN-ReLU twice, then the head."""
    inputs = keras.Input((64,))
    x = _dense(16, "b_dense1", activation=None, seed=14)(inputs)
    x = keras.layers.BatchNormalization(name="b_bn1")(x)
    x = keras.layers.Activation("relu", name="b_relu1")(x)
    x = _dense(12, "b_dense2", activation=None, seed=15)(x)
    x = keras.layers.BatchNormalization(name="b_bn2")(x)
    x = keras.layers.Activation("relu", name="b_relu2")(x)
    outputs = _dense(5, "b_head", "softmax", seed=16)(x)
    return _pretrain(keras.Model(inputs, outputs, name="b_mlp"), *digits_source)


@pytest.fixture(scope="module")
def cnn(digits_source):
    """A small CNN on 8x8 digit images: Conv-BN-ReLU, Conv, pool, Dense head."""
    X, y = digits_source
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", name="c_conv1")(inputs)
    x = keras.layers.BatchNormalization(name="c_bn1")(x)
    x = keras.layers.Activation("relu", name="c_relu1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c_conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="c_pool")(x)
    x = keras.layers.Flatten(name="c_flatten")(x)
    outputs = _dense(5, "c_head", "softmax", seed=17)(x)
    model = keras.Model(inputs, outputs, name="c_cnn")
    return _pretrain(model, X.reshape(-1, 8, 8, 1), y, epochs=2)


@pytest.fixture(scope="module")
def scikeras_source(digits_source):
    from scikeras.wrappers import KerasClassifier

    def build():
        return keras.Sequential(
            [
                keras.Input((64,)),
                _dense(20, "k_hidden1", seed=18),
                _dense(10, "k_hidden2", seed=19),
                _dense(5, "k_head", "softmax", seed=20),
            ]
        )

    # no random_state: scikeras would switch on TF determinism process-wide
    source = KerasClassifier(
        model=build,
        loss="sparse_categorical_crossentropy",
        epochs=3,
        batch_size=64,
        verbose=0,
    )
    return source.fit(*digits_source)


@pytest.fixture(scope="module")
def transfer_source(pretrained_source, digits_target):
    """A fitted TransferClassifier (itself transferred from pretrained_source)."""
    X, y = digits_target
    return make(pretrained_source, freeze=1).fit(X[300:600], y[300:600])


@pytest.fixture(scope="module")
def model_files(functional_mlp, sequential_mlp, tmp_path_factory):
    folder = tmp_path_factory.mktemp("transfer_sources")
    keras_path = str(folder / "functional.keras")
    functional_mlp.save(keras_path)
    h5_path = str(folder / "sequential.h5")
    sequential_mlp.save(h5_path)  # legacy HDF5
    return {"keras": keras_path, "h5": h5_path}


@pytest.fixture(scope="module")
def mobilenet():
    """Untrained MobileNetV3Small (headless) and tiny 32x32x3 data.

    Random weights with initial BatchNormalization statistics give constant
    features in inference mode; the statistics are calibrated
    on the data once (momentum 0, one training-mode pass) so that the
    network's predictions can be told apart.
    """
    # seeded: unseeded initializers draw from global RNGs, so the weights
    # (and how well one epoch separates the classes) depended on test order
    with temporary_seed(0):
        model = keras.applications.MobileNetV3Small(
            weights=None, include_top=False, input_shape=(32, 32, 3)
        )
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 12)
    X = (rng.random((24, 32, 32, 3)) * 120 + 100 * y[:, None, None, None]).astype(
        np.float32
    )
    bns = [layer for layer in model.layers if isinstance(layer, _NORMALIZATION)]
    momenta = [layer.momentum for layer in bns]
    for layer in bns:
        layer.momentum = 0.0
    model(X, training=True)
    for layer, momentum in zip(bns, momenta):
        layer.momentum = momentum
    return model, X, y


# ------------------------------------------------------ 1. forms of pretrained
FORMS = [
    "keras_file",
    "h5_file",
    "sequential",
    "functional",
    "nested_sequential",
    "nested_functional",
    "pretrained_classifier",
    "transfer_classifier",
    "scikeras",
    "callable",
]


@pytest.fixture(params=FORMS)
def source_case(request):
    """(pretrained argument, the source keras.Model it holds, is it a file)."""
    form = request.param
    get = request.getfixturevalue
    if form == "keras_file":
        return get("model_files")["keras"], get("functional_mlp"), True
    if form == "h5_file":
        return get("model_files")["h5"], get("sequential_mlp"), True
    if form in ("sequential", "functional"):
        model = get(f"{form}_mlp")
        return model, model, False
    if form in ("nested_sequential", "nested_functional"):
        model = get(form)
        return model, model, False
    if form == "pretrained_classifier":
        source = get("pretrained_source")
        return source, source.model_, False
    if form == "transfer_classifier":
        source = get("transfer_source")
        return source, source.model_, False
    if form == "scikeras":
        source = get("scikeras_source")
        return source, source.model_, False
    model = get("functional_mlp")
    # a factory handing back the same (shared) model every call
    return (lambda: model), model, False


def test_pretrained_forms(source_case, target):
    """Each form transfers: the old head is cut, the first layer group is
    frozen at the source weights, the rest trains, the source object and
    file stay bit-identical, and a refit reproduces predict_proba."""
    pretrained, source_model, is_file = source_case
    X, y = target
    weights_before = model_snapshot(source_model)
    digest_before = sha256(pretrained) if is_file else None
    groups = reference_groups(source_model)[:-1]  # cut="auto": no old head

    clf = make(pretrained, freeze=1).fit(X, y)

    assert clf.base_layers_ == [group[0] for group in groups]
    assert clf.n_frozen_ == 1
    assert_frozen_and_trained(clf, source_model, groups, 1)
    # the old head is gone: after the base's layers, one new softmax Dense
    base_names = [name for group in groups for name in group]
    weighted = [layer for layer in leaf_layers(clf.model_) if layer.weights]
    assert [layer.name for layer in weighted[: len(base_names)]] == base_names
    head = weighted[len(base_names) :]
    assert len(head) == 1 and head[0].units == 5
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)

    assert_model_unchanged(source_model, weights_before)
    if is_file:
        assert sha256(pretrained) == digest_before

    # a refit starts again from the pristine source: same network
    clf.fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=0, atol=1e-6)
    assert_model_unchanged(source_model, weights_before)


def test_fit_on_new_data_equals_fresh_fit(pretrained_source, target):
    """Fold independence: a second fit on other data forgets the first."""
    X, y = target
    reused = make(pretrained_source, freeze=1).fit(X[:150], y[:150])
    reused.fit(X[150:], y[150:])
    fresh = make(pretrained_source, freeze=1).fit(X[150:], y[150:])
    np.testing.assert_allclose(
        reused.predict_proba(X), fresh.predict_proba(X), rtol=0, atol=1e-6
    )


def test_cross_val_score_folds_are_independent(pretrained_source, target):
    """cross_val_score equals one fresh fit per fold: no fold sees another."""
    X, y = target
    X, y = X[:240], y[:240]
    clf = make(pretrained_source, freeze=1)
    cv = KFold(3, shuffle=True, random_state=0)
    weights_before = model_snapshot(pretrained_source.model_)
    scores = cross_val_score(clf, X, y, cv=cv, error_score="raise")
    expected = [
        make(pretrained_source, freeze=1)
        .fit(X[train], y[train])
        .score(X[test], y[test])
        for train, test in cv.split(X, y)
    ]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
    assert_model_unchanged(pretrained_source.model_, weights_before)


def test_transfer_beats_chance(pretrained_source, digits_target):
    """A frozen pretrained base plus a new head learns the unseen classes."""
    X, y = digits_target
    clf = make(pretrained_source, freeze="all", epochs=30, learning_rate=1e-2)
    clf.fit(X[:300], y[:300])
    dummy = DummyClassifier().fit(X[:300], y[:300])
    assert clf.score(X[300:], y[300:]) > dummy.score(X[300:], y[300:]) + 0.3


def test_transfer_from_a_file_written_by_another_process(tmp_path):
    """A file whose layers carry Keras' automatic names ("dense", "dense_1",
    "dropout"), as every file written by a fresh process does: in a fresh
    process the new head's automatic names are the same ones, and Keras
    refuses a model with two layers of one name."""
    inputs = keras.Input((64,))
    x = keras.layers.Dense(16, activation="relu", name="dense")(inputs)
    x = keras.layers.Dropout(0.1, name="dropout")(x)
    x = keras.layers.Dense(8, activation="relu", name="dense_1")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="dense_2")(x)
    path = tmp_path / "auto_names.keras"
    keras.Model(inputs, outputs).save(path)
    script = textwrap.dedent(
        """
        import sys
        from sklearn.datasets import load_digits
        from sktransfer import TransferClassifier
        X, y = load_digits(return_X_y=True)
        X = (X[:200] / 16.0).astype("float32")
        clf = TransferClassifier(
            sys.argv[1], freeze=1, head_hidden_layer_sizes=(4,),
            head_dropout=0.1, epochs=1, random_state=0, cut="penultimate"
        ).fit(X, y[:200])
        print(clf.base_layers_, clf.predict(X).shape)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "['dense', 'dense_1'] (200,)" in result.stdout


def test_transfer_from_a_transferred_network_keeping_its_head(transfer_source, target):
    """cut=None on a TransferClassifier's network: its head stays in the base
    and the new head must not clash with it (names, shapes)."""
    X, y = target
    clf = make(transfer_source, cut=None, freeze="all").fit(X, y)
    groups = reference_groups(transfer_source.model_)
    assert clf.base_layers_ == [group[0] for group in groups]
    assert clf.model_.output.shape == (None, 5)
    names = [layer.name for layer in leaf_layers(clf.model_)]
    assert len(names) == len(set(names))


# -------------------------------------------------------------------- 2. cut
@pytest.mark.parametrize(
    "fixture, cut",
    [
        ("functional_mlp", 2),
        ("functional_mlp", 3),
        ("functional_mlp", -1),
        ("functional_mlp", -2),
        ("sequential_mlp", 1),
        ("sequential_mlp", 2),
        ("sequential_mlp", -1),
    ],
)
def test_int_cut_keeps_the_first_layers(request, target, fixture, cut):
    source = request.getfixturevalue(fixture)
    X, y = target
    clf = make(source, cut=cut, freeze=0, epochs=1).fit(X, y)
    kept = source.layers[:cut]
    assert clf.base_layers_ == [layer.name for layer in kept if layer.weights]
    dropped = {layer.name for layer in source.layers[cut:]}
    assert dropped.isdisjoint(layer.name for layer in leaf_layers(clf.model_))


@pytest.mark.parametrize("cut", ["f_hidden1", "f_hidden2"])
def test_layer_name_cut_keeps_up_to_that_layer(functional_mlp, target, cut):
    X, y = target
    clf = make(functional_mlp, cut=cut, freeze="all", epochs=1).fit(X, y)
    names = [layer.name for layer in functional_mlp.layers if layer.weights]
    assert clf.base_layers_ == names[: names.index(cut) + 1]


def test_cut_auto_removes_the_old_head(functional_mlp, target):
    X, y = target
    clf = make(functional_mlp, freeze="all", epochs=1).fit(X, y)
    assert clf.base_layers_ == ["f_hidden1", "f_hidden2"]
    names = {layer.name for layer in leaf_layers(clf.model_)}
    assert "f_head" not in names


def test_cut_none_keeps_the_whole_network(functional_mlp, target):
    X, y = target
    weights_before = model_snapshot(functional_mlp)
    clf = make(functional_mlp, cut=None, freeze="all", epochs=1).fit(X, y)
    assert clf.base_layers_ == ["f_hidden1", "f_hidden2", "f_head"]
    assert clf.n_frozen_ == 3
    assert_frozen_and_trained(clf, functional_mlp, reference_groups(functional_mlp), 3)
    assert clf.model_.output.shape == (None, 5)
    assert_model_unchanged(functional_mlp, weights_before)


@pytest.mark.parametrize(
    "cut, pooled", [("c_conv2", True), ("c_relu1", True), ("penultimate", False)]
)
def test_spatial_output_gets_global_average_pooling(cnn, target_images, cut, pooled):
    X, y = target_images
    clf = make(cnn, cut=cut, freeze=0, epochs=1).fit(X, y)
    assert clf.model_.output.shape == (None, len(np.unique(y)))
    kinds = [type(layer) for layer in new_layers(clf, cnn)]
    assert (keras.layers.GlobalAveragePooling2D in kinds) == pooled
    # the BatchNormalization goes with the convolution before it
    assert clf.base_layers_[0] == "c_conv1"
    assert "c_bn1" not in clf.base_layers_
    assert clf.predict(X[:5]).shape == (5,)


# ----------------------------------------------------------------- 3. freeze
@pytest.mark.parametrize(
    "freeze, n_frozen", [(0, 0), (1, 1), (2, 2), (-1, 1), (-2, 0), ("all", 2)]
)
def test_freeze_depths(functional_mlp, target, freeze, n_frozen):
    X, y = target
    clf = make(functional_mlp, freeze=freeze).fit(X, y)
    groups = reference_groups(functional_mlp)[:-1]
    assert clf.base_layers_ == ["f_hidden1", "f_hidden2"]
    assert clf.n_frozen_ == n_frozen
    assert_frozen_and_trained(clf, functional_mlp, groups, n_frozen)


def test_layers_frozen_in_the_source_are_unfrozen_by_freeze_0(digits_source, target):
    """The Keras recipe freezes a nested base (``inner.trainable = False``)
    before saving; freeze=0 must still fine-tune all of it."""
    inner = keras.Sequential(
        [
            keras.Input((64,)),
            _dense(16, "r_inner1", seed=21),
            _dense(8, "r_inner2", seed=22),
        ],
        name="r_inner",
    )
    inner.trainable = False
    source = keras.Sequential(
        [keras.Input((64,)), inner, _dense(5, "r_head", "softmax", seed=23)]
    )
    _pretrain(source, *digits_source, epochs=1)
    X, y = target
    clf = make(source, freeze=0, **NO_CACHE).fit(X, y)
    assert clf.base_layers_ == ["r_inner1", "r_inner2"]
    assert_frozen_and_trained(clf, source, reference_groups(source)[:-1], 0)
    # and with a warm-up phase, which freezes the base first
    clf = make(source, freeze=1, warmup_epochs=1, **NO_CACHE).fit(X, y)
    assert_frozen_and_trained(clf, source, reference_groups(source)[:-1], 1)
    assert not inner.trainable  # the user's model keeps its own setting


@pytest.mark.parametrize(
    "fixture, freeze",
    [
        ("bn_mlp", 1),
        ("bn_mlp", "all"),
        ("bn_mlp", 0),
        ("nested_sequential", 1),
        ("nested_sequential", 0),
    ],
)
def test_batch_normalization_groups_and_statistics(request, target, fixture, freeze):
    """BatchNormalization is grouped with the layer before it (never counted
    itself), and it never trains: at every depth it runs in inference mode
    with its pretrained statistics, scale and offset, while the weighted
    layers above the frozen depth do train."""
    source = request.getfixturevalue(fixture)
    X, y = target
    clf = make(source, freeze=freeze, head_solver="adam", **NO_CACHE).fit(X, y)
    bn_names = [
        layer.name
        for layer in leaf_layers(source)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bn_names and not set(bn_names) & set(clf.base_layers_)
    assert len(clf.base_layers_) == 2
    source_layers = {layer.name: layer for layer in leaf_layers(source)}
    fitted_layers = {layer.name: layer for layer in leaf_layers(clf.model_)}
    for name in bn_names:
        fitted, pretrained = fitted_layers[name], source_layers[name]
        assert same_weights(fitted.get_weights(), pretrained.get_weights())
        assert not fitted.trainable
    for name in clf.base_layers_[clf.n_frozen_ :]:
        assert not same_weights(
            fitted_layers[name].get_weights(), source_layers[name].get_weights()
        )


@pytest.mark.parametrize("cache_features", [False, "auto"])
def test_fine_tuning_with_batch_normalization_keeps_the_solved_head(
    bn_mlp, target, cache_features
):
    """LP-FT at a vanishing learning rate gives back the probe: a trainable
    BatchNormalization would normalize with the few rows' batch statistics
    and move its moving ones, and the solved head would no longer fit the
    features (this fit lost 3 points of training accuracy that way, and
    MobileNetV2 fell to chance)."""
    X, y = target
    probe = make(bn_mlp, freeze="all").fit(X, y)
    tuned = make(
        bn_mlp,
        freeze=0,
        epochs=2,
        fine_tune_learning_rate=1e-12,
        cache_features=cache_features,
    ).fit(X, y)
    np.testing.assert_allclose(
        tuned.predict_proba(X), probe.predict_proba(X), atol=1e-4
    )


@pytest.mark.parametrize(
    "freeze",
    [3, -3, 100, -100, "none", "ALL", "2", "", True, False, 1.0, 0.5],
    ids=repr,
)
def test_invalid_freeze_raises_before_training(pretrained_source, target, freeze):
    """Out-of-range depths, unknown strings, bools and floats: ValueError that
    names the valid choices, raised before any training step."""
    X, y = target
    weights_before = model_snapshot(pretrained_source.model_)
    spy = TrainingSpy()
    clf = make(pretrained_source, freeze=freeze, callbacks=[spy])
    with pytest.raises(ValueError, match="'all'") as info:
        clf.fit(X, y)
    if isinstance(freeze, str) or (
        isinstance(freeze, int) and not isinstance(freeze, bool)
    ):
        # the message names the valid range and the base's layers
        assert "0..2" in str(info.value)
        assert pretrained_source.model_.layers[1].name in str(info.value)
    assert not spy.started
    assert not hasattr(clf, "model_")
    assert_model_unchanged(pretrained_source.model_, weights_before)


@pytest.mark.parametrize(
    "cut, match",
    [
        ("no_such_layer", "f_hidden1"),
        (0, "out of range"),
        (5, "out of range"),
        (-4, "out of range"),
        (-10, "out of range"),
    ],
)
def test_invalid_cut_raises_before_training(functional_mlp, target, cut, match):
    X, y = target
    weights_before = model_snapshot(functional_mlp)
    spy = TrainingSpy()
    with pytest.raises(ValueError, match=match):
        make(functional_mlp, cut=cut, callbacks=[spy]).fit(X, y)
    assert not spy.started
    assert_model_unchanged(functional_mlp, weights_before)


# ------------------------------------------------------------------- 4. head
def test_default_head_is_one_softmax_dense(pretrained_source, target):
    X, y = target
    clf = make(pretrained_source, epochs=1).fit(X, y)
    head = new_layers(clf, pretrained_source.model_)
    dense = [layer for layer in head if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [5]
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in head)


def test_head_hidden_layers_and_dropout(pretrained_source, target):
    X, y = target
    clf = make(
        pretrained_source, head_hidden_layer_sizes=(7, 6), head_dropout=0.25
    ).fit(X, y)
    head = new_layers(clf, pretrained_source.model_)
    dense = [layer for layer in head if isinstance(layer, keras.layers.Dense)]
    dropout = [layer for layer in head if isinstance(layer, keras.layers.Dropout)]
    assert [layer.units for layer in dense] == [7, 6, 5]
    assert len(dropout) == 3 and all(layer.rate == 0.25 for layer in dropout)
    assert clf.model_.output.shape == (None, 5)
    # dropout is off at prediction time: predict_proba is the plain forward
    # pass (computed here in NumPy, no dropout) through the source's two
    # relu layers, the head's two (activation="relu", the default) and the
    # softmax output ...
    dense = [layer for layer in leaf_layers(clf.model_) if layer.weights]
    assert len(dense) == 5
    expected = X.astype(np.float64)
    for layer in dense[:-1]:
        kernel, bias = layer.get_weights()
        expected = np.maximum(expected @ kernel + bias, 0.0)
    kernel, bias = dense[-1].get_weights()
    logits = expected @ kernel + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, expected, rtol=0, atol=1e-5)
    # ... where the training-mode pass (dropout on) is not
    training = keras.ops.convert_to_numpy(clf.model_(X, training=True))
    assert np.abs(training - expected).max() > 0.05


@pytest.mark.parametrize("n_classes", [2, 5])
def test_string_labels_binary_and_multiclass(pretrained_source, target, n_classes):
    """String labels train exactly the network that the equivalent integer
    labels train (names chosen to sort like the integers), and predict
    returns the strings."""
    X, y = target
    keep = y < 5 + n_classes
    X, y = X[keep], y[keep]
    names = np.array([f"digit_{k}" for k in range(5, 10)])
    labels = names[y - 5]
    by_int = make(pretrained_source, freeze=1).fit(X, y)
    by_name = make(pretrained_source, freeze=1).fit(X, labels)
    assert list(by_name.classes_) == list(names[:n_classes])
    proba = by_name.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba, by_int.predict_proba(X), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(by_name.predict(X), names[by_int.predict(X) - 5])
    assert by_name.score(X, labels) == by_int.score(X, y)


# ------------------------------------------------------ 5. two-phase training
def test_warmup_trains_the_head_alone_then_fine_tunes(functional_mlp, target):
    X, y = target
    recorder = WeightRecorder()
    clf = make(
        functional_mlp,
        freeze=0,
        warmup_epochs=2,
        epochs=3,
        callbacks=[recorder],
        **NO_CACHE,
    ).fit(X, y)
    assert len(clf.history_["loss"]) == 2 + 3
    assert len(recorder.epochs) == 5
    source = layer_weights(functional_mlp)
    base = ["f_hidden1", "f_hidden2"]
    head = [layer.name for layer in new_layers(clf, functional_mlp)]
    head = [name for name in head if name in recorder.epochs[0]]
    # warm-up: the whole base is frozen, the head trains
    for epoch in recorder.epochs[:2]:
        for name in base:
            assert same_weights(epoch[name], source[name]), f"{name} moved in warm-up"
    assert not same_weights(recorder.epochs[0][head[-1]], recorder.epochs[1][head[-1]])
    # fine-tuning with freeze=0: the whole base trains
    for name in base:
        assert not same_weights(recorder.epochs[-1][name], source[name])
    assert clf.n_frozen_ == 0


def _relu_layer(X, kernel, bias):
    return np.maximum(X @ kernel + bias, 0.0)


def test_warmup_trains_the_head_on_cached_features(
    pretrained_source, target, monkeypatch
):
    """Both phases train through the frozen-prefix cache: the warm-up (whole
    base frozen) trains the head alone on the base's output, computed once;
    the main phase (freeze=1) trains the rest on the first layer's output.

    ``feature_cut_`` names only the main phase's cut, and callbacks see the
    whole network either way, so what each phase trained on is read where
    the recipe hands it to the training loop (the real loop still runs).
    """
    from sktransfer import _recipe

    seen = []
    real_train = _recipe.train

    def spy(model, X, y, sample_weight, spec, **kwargs):
        seen.append((tuple(model.inputs[0].shape[1:]), np.array(X), kwargs["epochs"]))
        return real_train(model, X, y, sample_weight, spec, **kwargs)

    monkeypatch.setattr(_recipe, "train", spy)
    X, y = target
    clf = make(pretrained_source, freeze=1, warmup_epochs=2, epochs=3).fit(X, y)

    assert [epochs for _, _, epochs in seen] == [2, 3]
    (warm_input, warm_X, _), (main_input, main_X, _) = seen
    # the source is Input -> Dense(32) -> Dense(16) -> Dense(5), relu hidden
    kernel1, bias1, kernel2, bias2 = pretrained_source.model_.get_weights()[:4]
    hidden1 = _relu_layer(X, kernel1, bias1)
    hidden2 = _relu_layer(hidden1, kernel2, bias2)
    assert warm_input == (16,) and main_input == (32,)
    np.testing.assert_allclose(warm_X, hidden2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(main_X, hidden1, rtol=1e-5, atol=1e-5)
    assert clf.feature_cut_ == pretrained_source.model_.layers[1].name
    assert clf.n_warmup_epochs_ == 2


class LearningRateRecorder(keras.callbacks.Callback):
    """The optimizer's learning rate at the start of every epoch."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        rate = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        self.rates.append(float(rate))


@pytest.mark.parametrize(
    "warmup_epochs, fine_tune_learning_rate, head_solver, expected",
    [
        (1, None, "auto", [2e-3, 2e-4]),
        (1, 5e-4, "auto", [2e-3, 5e-4]),
        (0, None, "adam", [2e-3]),
        (0, None, "auto", [2e-5]),
        (0, 5e-4, "lbfgs", [5e-4]),
    ],
)
def test_fine_tune_learning_rate(
    pretrained_source,
    target,
    warmup_epochs,
    fine_tune_learning_rate,
    head_solver,
    expected,
):
    """Warm-up at learning_rate, then fine_tune_learning_rate (default: a
    tenth of learning_rate); the probe (LP-FT) is followed by the same
    gentle rate; a random head without warm-up trains at learning_rate."""
    X, y = target
    recorder = LearningRateRecorder()
    clf = make(
        pretrained_source,
        freeze=1,
        head_solver=head_solver,
        learning_rate=2e-3,
        warmup_epochs=warmup_epochs,
        fine_tune_learning_rate=fine_tune_learning_rate,
        epochs=1,
        callbacks=[recorder],
    ).fit(X, y)
    assert recorder.rates == pytest.approx(expected, rel=1e-6)
    assert len(clf.history_["loss"]) == warmup_epochs + 1
    assert clf.n_warmup_epochs_ == warmup_epochs


# ----------------------------------------------------------- 6. shape checks
def test_wrong_feature_count_is_reported_before_training(pretrained_source, target):
    X, y = target
    spy = TrainingSpy()
    with pytest.raises(ValueError) as info:
        make(pretrained_source, callbacks=[spy]).fit(X[:, :63], y)
    assert "(63,)" in str(info.value) and "(64,)" in str(info.value)
    assert not spy.started


@pytest.mark.parametrize("shape", [(8, 8), (4, 16, 1), (8, 8, 3), (64,)])
def test_wrong_image_shape_is_reported_before_training(cnn, target, shape):
    X, y = target
    X = np.resize(X, (len(X), *shape)).astype(np.float32)
    spy = TrainingSpy()
    with pytest.raises(ValueError) as info:
        make(cnn, callbacks=[spy]).fit(X, y)
    assert str(shape) in str(info.value) and "(8, 8, 1)" in str(info.value)
    assert not spy.started


def _two_inputs():
    a, b = keras.Input((32,)), keras.Input((32,))
    x = keras.layers.Concatenate()([a, b])
    x = keras.layers.Dense(8, activation="relu")(x)
    return keras.Model([a, b], keras.layers.Dense(5, activation="softmax")(x))


def _two_outputs():
    inputs = keras.Input((64,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    first = keras.layers.Dense(5, activation="softmax")(x)
    second = keras.layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, [first, second])


@pytest.mark.parametrize(
    "build, match", [(_two_inputs, "2 inputs"), (_two_outputs, "2 outputs")]
)
def test_multi_input_or_output_network_is_refused(target, build, match):
    X, y = target
    spy = TrainingSpy()
    with pytest.raises(ValueError, match=match):
        make(build(), callbacks=[spy]).fit(X, y)
    assert not spy.started


# -------------------------------------------------- 7. scikit-learn integration
@pytest.mark.parametrize("kind", ["estimator", "file"])
def test_grid_search_over_freeze_leaves_sources_untouched(
    pretrained_source, pretrained_file, target, kind
):
    X, y = target
    weights_before = model_snapshot(pretrained_source.model_)
    digest_before = sha256(pretrained_file)
    source = pretrained_source if kind == "estimator" else pretrained_file
    search = GridSearchCV(
        make(source), {"freeze": [0, 1, 2, "all"]}, cv=2, error_score="raise"
    ).fit(X, y)
    assert [p["freeze"] for p in search.cv_results_["params"]] == [0, 1, 2, "all"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    expected = {0: 0, 1: 1, 2: 2, "all": 2}[search.best_params_["freeze"]]
    assert best.n_frozen_ == expected
    assert best.predict(X).shape == y.shape
    assert_model_unchanged(pretrained_source.model_, weights_before)
    assert sha256(pretrained_file) == digest_before


def test_validation_curve_display_over_freeze(pretrained_source, target):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = target
    display = ValidationCurveDisplay.from_estimator(
        make(pretrained_source),
        X,
        y,
        param_name="freeze",
        param_range=[0, 1, 2],
        cv=2,
        error_score="raise",
    )
    assert display.test_scores.shape == (3, 2)
    assert np.isfinite(display.test_scores).all()
    plt.close("all")


def test_pipeline(pretrained_source, target):
    X, y = target
    pipe = Pipeline(
        [("scale", StandardScaler()), ("clf", make(pretrained_source, freeze=1))]
    ).fit(X, y)
    assert pipe.named_steps["clf"].n_frozen_ == 1
    assert pipe.predict(X).shape == y.shape
    assert pipe.predict_proba(X).shape == (len(X), 5)


def test_pickle_round_trip(pretrained_source, target):
    X, y = target
    clf = make(pretrained_source, freeze=1, head_hidden_layer_sizes=(8,)).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.base_layers_ == clf.base_layers_
    assert restored.n_frozen_ == clf.n_frozen_


def test_save_and_load(pretrained_file, target, tmp_path):
    X, y = target
    clf = make(pretrained_file, freeze=-1).fit(X, y)
    path = clf.save(tmp_path / "transfer.keras")
    restored = sktransfer.load(path)
    assert isinstance(restored, TransferClassifier)
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    assert restored.base_layers_ == clf.base_layers_
    assert restored.n_frozen_ == clf.n_frozen_ == 1
    assert restored.get_params() == clf.get_params()


def test_save_keeps_a_pathlib_source(pretrained_file, target, tmp_path):
    """A pathlib.Path source is a file name like a str: saved (as its str)
    without a warning, so the loaded estimator can be refitted."""
    import warnings
    from pathlib import Path

    X, y = target
    clf = make(Path(pretrained_file), freeze="all").fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = clf.save(tmp_path / "transfer.keras")
    assert not [w for w in caught if "not plain values" in str(w.message)]
    restored = sktransfer.load(path)
    assert restored.pretrained == str(pretrained_file)
    np.testing.assert_allclose(
        restored.fit(X, y).predict_proba(X), clf.predict_proba(X), atol=1e-6
    )


def test_save_with_an_estimator_source_warns(pretrained_source, target, tmp_path):
    X, y = target
    clf = make(pretrained_source, epochs=1).fit(X, y)
    with pytest.warns(UserWarning, match="pretrained"):
        path = clf.save(tmp_path / "transfer.keras")
    restored = sktransfer.load(path)
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.base_layers_ == clf.base_layers_


def test_clone_shares_the_fitted_source(pretrained_source, target):
    X, y = target
    clf = make(pretrained_source, freeze=1).fit(X, y)
    copy = clone(clf)
    assert copy.pretrained is pretrained_source
    assert isinstance(copy.pretrained.model_, keras.Model)
    assert not hasattr(copy, "model_")
    copy.fit(X, y)
    np.testing.assert_allclose(
        copy.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-6
    )


# ------------------------------------------------- 8. keras.applications base
def test_mobilenet_headless_base(mobilenet):
    """MobileNetV3Small (include_top=False) as a whole base: a long list of
    freezable layers, freeze=-3 trains exactly the last three groups."""
    model, X, y = mobilenet
    weights_before = model_snapshot(model)
    clf = make(
        model, cut=None, freeze=-3, epochs=1, batch_size=8, head_solver="adam"
    ).fit(X, y)

    groups = reference_groups(model)
    assert clf.base_layers_ == [group[0] for group in groups]
    assert len(clf.base_layers_) > 30
    assert clf.n_frozen_ == len(groups) - 3
    source_names = {layer.name for layer in leaf_layers(model)}
    trainable = {
        layer.name
        for layer in leaf_layers(clf.model_)
        if layer.weights and layer.trainable and layer.name in source_names
    }
    # BatchNormalization never trains: it stays in inference mode
    batch_norms = {
        layer.name
        for layer in leaf_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert trainable == {name for group in groups[-3:] for name in group} - batch_norms
    assert_frozen_and_trained(clf, model, groups, len(groups) - 3)
    assert keras.layers.GlobalAveragePooling2D in map(type, new_layers(clf, model))
    assert clf.model_.output.shape == (None, 2)

    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # not one constant prediction: the new head tells the classes apart (the
    # class-1 images are brighter), well beyond any float noise
    gap = proba[y == 1, 1].mean() - proba[y == 0, 1].mean()
    assert gap > 0.3, f"class-1 probability barely depends on the class: {gap:.3f}"
    assert np.mean(clf.predict(X) == y) >= 0.75
    assert_model_unchanged(model, weights_before)


def test_keras_recipe_nested_base_under_a_head(mobilenet, tmp_path):
    """The Keras transfer recipe's source: a keras.applications base called
    on a new Input, with a Dense head on top. The default cut reads the
    nested base's output in the outer graph (its own ``.output`` belongs to
    its inner graph), and the cache cuts at the nested base."""
    model, X, y = mobilenet
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(model(inputs))
    outputs = keras.layers.Dense(
        4, "softmax", name="old_head", kernel_initializer=keras.initializers.Ones()
    )(pooled)
    source = keras.Model(inputs, outputs)
    weights_before = model_snapshot(source)
    clf = make(source, cut="auto", random_state=0).fit(X, y)
    assert clf.base_layers_[-1] == "source_logits"
    # freeze=-1 on the auto cut trains the copy of the old head alone
    cached = make(
        source, cut="auto", freeze=-1, epochs=1, batch_size=8, memory=str(tmp_path)
    ).fit(X, y)
    assert cached.feature_cut_ == model.name
    for cut in (2, model.name):  # the nested base itself as the cut
        assert make(source, cut=cut).fit(X, y).predict(X).shape == (len(y),)
    assert_model_unchanged(source, weights_before)


def test_source_parameters_are_not_nested_or_settable(pretrained_source):
    """A fitted source estimator is read-only: ``pretrained__*`` is not a
    parameter (a grid over it would modify the user's estimator, which
    clones share, and change nothing in the transfer)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sktransfer import TransferFeatures

    epochs = pretrained_source.epochs
    for est in (
        TransferClassifier(pretrained_source),
        TransferFeatures(pretrained_source),
    ):
        params = est.get_params(deep=True)
        assert params["pretrained"] is pretrained_source
        assert not [key for key in params if key.startswith("pretrained__")]
        with pytest.raises(ValueError, match="pretrained__epochs.*only reads"):
            est.set_params(pretrained__epochs=epochs + 1)
        pipe = make_pipeline(est, LogisticRegression())
        step = pipe.steps[0][0]
        with pytest.raises(ValueError, match="pretrained__epochs"):
            pipe.set_params(**{f"{step}__pretrained__epochs": epochs + 1})
    assert pretrained_source.epochs == epochs


def test_source_columns_in_another_order_are_refused(digits_source, target):
    """A source fitted on a DataFrame remembers its columns: the same names
    in another order would feed every pixel to the wrong input. Other names
    are taken by position."""
    from sktransfer import PretrainedClassifier, TransferFeatures

    pd = pytest.importorskip("pandas")
    X_source, y_source = digits_source
    columns = [f"px{i}" for i in range(X_source.shape[1])]
    source = PretrainedClassifier(hidden_layer_sizes=(16,), epochs=2, random_state=0)
    source.fit(pd.DataFrame(X_source, columns=columns), y_source)
    X, y = target
    shuffled = pd.DataFrame(X, columns=columns)[columns[::-1]]
    for est in (TransferClassifier(source), TransferFeatures(source)):
        with pytest.raises(ValueError, match="another order.*feature_names_in_"):
            est.fit(shuffled, y)
        # the fix the message names works, and other names are positional
        est.fit(shuffled[list(source.feature_names_in_)], y)
        est.fit(pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])]), y)
