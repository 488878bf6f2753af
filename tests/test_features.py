"""TransferFeatures on real (small) Keras networks and real sklearn data.

The session's pretrained source (an MLP pretrained on digits 0-4) and small
networks built here give the features; the expected values always come from
the cut network itself (Keras run on the same rows), never from constants.
Shared networks are read-only; the tests assert they stay unchanged.
"""

from __future__ import annotations

import hashlib
import pickle

import joblib
import keras
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import TransferClassifier, TransferFeatures, _cache, _features

#: float32 features computed in another batch layout differ by a few ulps
RTOL = 1e-5
ATOL = 1e-6


# --------------------------------------------------------------------- helpers
def cut_output(model, layer_name, X):
    """What the network computes at ``layer_name``, by Keras directly."""
    sub = keras.Model(model.inputs[0], model.get_layer(layer_name).output)
    return keras.ops.convert_to_numpy(sub(X, training=False))


def auto_cut_layer(model):
    """The layer ``cut="auto"`` ends at: the one feeding the last Dense."""
    dense = [layer for layer in model.layers if layer.weights][-1]
    assert isinstance(dense, keras.layers.Dense)
    return model.layers[model.layers.index(dense) - 1].name


def weights_digest(model):
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest(), [layer.trainable for layer in model.layers]


def sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def entries(location):
    """The feature cache's entries (solved probes are stored beside them)."""
    return sorted(
        str(p) for p in location.rglob("output.pkl") if "fit_probe" not in str(p)
    )


@pytest.fixture
def computed(monkeypatch):
    """How many times a network actually ran on rows (cache misses count)."""
    calls = []
    run = _cache.run_eagerly

    def counting(model, X):
        calls.append(len(X))
        return run(model, X)

    monkeypatch.setattr(_cache, "run_eagerly", counting)
    return calls


@pytest.fixture(scope="module")
def cnn():
    """An untrained small CNN on 8x8 images, seeded: spatial features."""
    init = keras.initializers.GlorotUniform
    inputs = keras.Input(shape=(8, 8))
    x = keras.layers.Reshape((8, 8, 1), name="reshape")(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu", kernel_initializer=init(0))(x)
    x = keras.layers.Conv2D(
        4, 3, activation="relu", kernel_initializer=init(1), name="conv_top"
    )(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=init(2))(x)
    return keras.Model(inputs, outputs)


# ------------------------------------------------------------------- features
def test_transform_is_the_cut_networks_output(pretrained_source, digits_target):
    X, _ = digits_target
    model = pretrained_source.model_
    before = weights_digest(model)
    features = TransferFeatures(pretrained_source, cut="penultimate").fit(X)
    Z = features.transform(X)
    expected_cut = auto_cut_layer(model)
    assert features.feature_cut_ == expected_cut
    expected = cut_output(model, expected_cut, X)
    assert Z.dtype == np.float32 and isinstance(Z, np.ndarray)
    assert Z.shape == (len(X), expected.shape[1]) == (len(X), 16)
    assert_allclose(Z, expected, rtol=RTOL, atol=ATOL)
    assert features.n_features_in_ == X.shape[1]
    assert features.input_shape_ == (X.shape[1],)
    assert features.n_features_out_ == Z.shape[1]
    assert weights_digest(model) == before


@pytest.mark.parametrize("cut, index", [(2, 1), (-1, -2), ("by name", 1), (None, -1)])
def test_cut_positions_names_and_none(pretrained_source, digits_target, cut, index):
    """``cut`` keeps ``model.layers[:cut]``, up to a named layer, or all."""
    X, _ = digits_target
    model = pretrained_source.model_
    layer = model.layers[index]
    if cut == "by name":
        cut = layer.name
    features = TransferFeatures(pretrained_source, cut=cut).fit(X[:100])
    assert features.feature_cut_ == layer.name
    assert_allclose(
        features.transform(X[:100]),
        cut_output(model, layer.name, X[:100]),
        rtol=RTOL,
        atol=ATOL,
    )


def test_spatial_output_is_global_average_pooled(cnn, digits_images):
    X, _ = digits_images
    before = weights_digest(cnn)
    features = TransferFeatures(cnn, cut="conv_top").fit(X)
    Z = features.transform(X)
    maps = cut_output(cnn, "conv_top", X)
    assert maps.ndim == 4  # (n, h, w, channels)
    assert Z.shape == (len(X), maps.shape[-1]) == (len(X), features.n_features_out_)
    assert_allclose(Z, maps.mean(axis=(1, 2)), rtol=RTOL, atol=ATOL)
    assert weights_digest(cnn) == before


def test_row_order_changes_features_only_within_float32(
    pretrained_source, digits_target
):
    """What test_common's one expected failure rests on: permuting rows moves
    a feature only by float32 rounding of the sums that make it."""
    X, _ = digits_target
    features = TransferFeatures(pretrained_source, cut="penultimate").fit(X)
    order = np.random.RandomState(0).permutation(len(X))
    assert_allclose(
        features.transform(X)[order], features.transform(X[order]), rtol=RTOL, atol=ATOL
    )


# ---------------------------------------------------------- scikit-learn use
def test_linear_probe_beats_chance_and_matches_manual_features(
    pretrained_source, digits_target
):
    X, y = digits_target
    train, test = slice(0, 600), slice(600, None)
    probe = make_pipeline(
        TransferFeatures(pretrained_source, cut="penultimate"),
        StandardScaler(),
        LogisticRegression(),
    ).fit(X[train], y[train])
    accuracy = probe.score(X[test], y[test])
    assert accuracy > 2 * (1 / 5)  # five classes: chance is 0.2
    # the same probe on features computed by Keras directly
    layer = auto_cut_layer(pretrained_source.model_)
    manual = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        cut_output(pretrained_source.model_, layer, X[train]), y[train]
    )
    manual_proba = manual.predict_proba(
        cut_output(pretrained_source.model_, layer, X[test])
    )
    assert_allclose(probe.predict_proba(X[test]), manual_proba, atol=1e-4)
    assert manual.score(
        cut_output(pretrained_source.model_, layer, X[test]), y[test]
    ) == pytest.approx(accuracy)


def test_pandas_output_and_feature_names(pretrained_source, digits_target):
    X, _ = digits_target
    frame = pd.DataFrame(X[:50], columns=[f"pixel{i}" for i in range(X.shape[1])])
    frame.index = frame.index + 1000
    features = TransferFeatures(pretrained_source, cut="penultimate")
    features.set_output(transform="pandas")
    out = features.fit(frame).transform(frame)
    names = [f"transferfeatures{i}" for i in range(16)]
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == names
    assert_array_equal(out.index, frame.index)
    assert list(features.get_feature_names_out()) == names
    assert list(features.feature_names_in_) == list(frame.columns)
    features.set_output(transform="default")
    assert_allclose(out.to_numpy(), features.transform(frame), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kind", ["model", "file"])
def test_grid_search_over_the_cut(
    pretrained_source, pretrained_model_file, digits_target, kind
):
    X, y = digits_target
    X, y = X[:300], y[:300]
    model = pretrained_source.model_
    source = model if kind == "model" else pretrained_model_file
    before = weights_digest(model)
    digest = sha256(pretrained_model_file)
    pipe = Pipeline(
        [
            ("f", TransferFeatures(source)),
            ("scale", StandardScaler()),
            ("lr", LogisticRegression()),
        ]
    )
    grid = {"f__cut": ["auto", 2], "lr__C": [0.1, 1.0]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.isfinite(scores).all()
    assert search.best_params_["f__cut"] in ("auto", 2)
    best = search.best_estimator_.named_steps["f"]
    assert best.pretrained is source  # shared by clones, never copied
    width = {"auto": 16, 2: model.layers[1].units}[search.best_params_["f__cut"]]
    assert best.n_features_out_ == width
    assert weights_digest(model) == before
    assert sha256(pretrained_model_file) == digest


def test_clone_shares_the_source_and_keeps_a_fitted_estimator_fitted(
    pretrained_source, digits_target
):
    """A plain BaseEstimator clone deep-copies a parameter, and a fitted
    estimator parameter would come back unfitted: pretrained is shared."""
    X, _ = digits_target
    memory = joblib.Memory(None, verbose=0)
    original = TransferFeatures(pretrained_source, cut=2, memory=memory)
    cloned = clone(original)
    assert cloned.pretrained is pretrained_source
    assert cloned.get_params()["cut"] == 2
    assert cloned.memory is not memory  # other parameters are cloned as usual
    assert cloned.fit(X[:20]).n_features_out_ == 32
    keras_source = TransferFeatures(pretrained_source.model_)
    assert clone(keras_source).pretrained is pretrained_source.model_


# ---------------------------------------------------------------- the cache
def test_memory_gives_the_same_features_and_a_second_fit_reads_them(
    pretrained_source, digits_target, tmp_path, computed
):
    X, _ = digits_target
    location = tmp_path / "cache"
    plain = TransferFeatures(pretrained_source).fit(X).transform(X)
    computed.clear()
    memory = joblib.Memory(str(location), verbose=0)
    first = TransferFeatures(pretrained_source, memory=memory).fit(X).transform(X)
    stored = entries(location)
    assert len(stored) == 1 and computed == [len(X)]
    assert_array_equal(first, plain)
    second = TransferFeatures(pretrained_source, memory=str(location)).fit(X)
    assert_array_equal(second.transform(X), first)
    assert entries(location) == stored  # a hit: nothing new stored
    assert computed == [len(X)]  # ... and the network did not run again
    second.transform(X[:10])  # a few rows: not worth a disk entry
    assert entries(location) == stored


def test_memory_entries_are_transfer_classifiers_frozen_prefix(
    pretrained_source, digits_target, tmp_path, computed
):
    X, y = digits_target
    location = tmp_path / "cache"
    TransferClassifier(
        pretrained_source,
        freeze="all",
        memory=str(location),
        epochs=1,
        early_stopping=False,
        random_state=0,
    ).fit(X, y)
    stored = entries(location)
    assert len(stored) == 1
    assert len(list(location.rglob("fit_probe/*/output.pkl"))) == 1
    calls = len(computed)
    features = TransferFeatures(pretrained_source, memory=str(location)).fit(X)
    Z = features.transform(X)
    assert entries(location) == stored and len(computed) == calls
    assert_allclose(Z, TransferFeatures(pretrained_source).fit(X).transform(X))


# ------------------------------------------------------------- user objects
def test_user_model_and_file_are_never_modified(pretrained_file, digits_target):
    X, _ = digits_target
    digest = sha256(pretrained_file)
    user = keras.saving.load_model(pretrained_file)
    before = weights_digest(user)
    for source in (user, pretrained_file):
        features = TransferFeatures(source).fit(X[:100])
        features.transform(X[:100])
        # nothing a user reaches on the fitted transformer is a Keras object,
        # and its network holds none of the user's layers
        fitted = [v for k, v in vars(features).items() if k.endswith("_")]
        assert fitted and not any(isinstance(v, keras.layers.Layer) for v in fitted)
        assert {id(layer) for layer in features._prefix.layers}.isdisjoint(
            id(layer) for layer in user.layers
        )
    assert weights_digest(user) == before
    assert sha256(pretrained_file) == digest


def test_a_callable_source_is_called_per_fit_under_a_fixed_seed(digits_target):
    X, _ = digits_target

    def build():  # unseeded initializers: the seed comes from the fit
        inputs = keras.Input(shape=(X.shape[1],))
        hidden = keras.layers.Dense(8, activation="tanh")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(hidden))

    first = TransferFeatures(build, cut="penultimate").fit(X[:30]).transform(X[:30])
    second = TransferFeatures(build, cut="penultimate").fit(X[:30]).transform(X[:30])
    assert first.shape == (30, 8)
    assert_array_equal(first, second)


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "cut, message",
    [
        ("nope", r"cut='nope' is not a layer of the pretrained network"),
        # the input layer is no cut (as cut=1 is not), by either name
        ("input_layer", r"top-level layers after the input are \['"),
        ("keras_tensor", r"is not a layer of the pretrained network to cut at"),
        (99, r"cut=99 is out of range"),
        (True, r"cut=True is not a valid cut"),
        (1.5, r"The 'cut' parameter of TransferFeatures must be"),
    ],
)
def test_a_bad_cut_is_refused_before_any_features(
    pretrained_source, digits_target, tmp_path, computed, cut, message
):
    X, _ = digits_target
    location = tmp_path / "cache"
    features = TransferFeatures(pretrained_source, cut=cut, memory=str(location))
    with pytest.raises(ValueError, match=message):
        features.fit(X)
    assert computed == [] and entries(location) == []
    assert not hasattr(features, "n_features_out_")


def test_parameter_errors_come_before_the_source_is_read(digits_target, monkeypatch):
    X, _ = digits_target

    def no_source(*args, **kwargs):  # pragma: no cover - must not run
        raise AssertionError("the source was read")

    monkeypatch.setattr(_features, "frozen_source", no_source)
    monkeypatch.setattr(_features, "resolve_pretrained", no_source)
    with pytest.raises(ValueError, match="'cut' parameter"):
        TransferFeatures("never-read.keras", cut=1.5).fit(X)
    with pytest.raises(ValueError, match="needs pretrained="):
        TransferFeatures().fit(X)


def test_input_shapes_are_checked(pretrained_source, digits_target):
    X, _ = digits_target
    with pytest.raises(ValueError, match=r"the pretrained network expects \(64,\)"):
        TransferFeatures(pretrained_source).fit(X[:, :10])
    features = TransferFeatures(pretrained_source).fit(X[:20])
    with pytest.raises(ValueError, match="expecting 64 features"):
        features.transform(X[:20, :10])


def test_unfitted_transform_raises_not_fitted(pretrained_source, digits_target):
    X, _ = digits_target
    features = TransferFeatures(pretrained_source)
    with pytest.raises(NotFittedError):
        features.transform(X)
    with pytest.raises(NotFittedError):
        features.get_feature_names_out()


# ------------------------------------------------------------------- pickle
def test_pickle_and_joblib_round_trips(pretrained_source, digits_target, tmp_path):
    X, _ = digits_target
    location = tmp_path / "cache"
    fitted = TransferFeatures(pretrained_source, memory=str(location)).fit(X)
    expected = fitted.transform(X)
    stored = entries(location)
    restored = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(restored.transform(X), expected)
    assert restored._prefix is not fitted._prefix  # a private network now
    assert entries(location) == stored  # same network, same cache key
    path = tmp_path / "features.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    assert_array_equal(loaded.transform(X), expected)
    assert loaded.feature_cut_ == fitted.feature_cut_
    assert list(loaded.get_feature_names_out()) == list(fitted.get_feature_names_out())


def test_public_name(pretrained_source):
    assert "TransferFeatures" in sktransfer.__all__
    assert sktransfer.TransferFeatures is _features.TransferFeatures


def test_default_cut_keeps_the_sources_class_knowledge(
    pretrained_source, digits_target
):
    """``cut="auto"`` is "multi": both hidden layers, then the source's five
    logits and five probabilities, the last equal to the source's predict."""
    X = digits_target[0][:40]
    features = TransferFeatures(pretrained_source).fit(X)
    Z = features.transform(X)
    assert Z.shape == (40, 32 + 16 + 5 + 5)
    np.testing.assert_allclose(
        Z[:, -5:], pretrained_source.model_.predict(X, verbose=0), rtol=1e-5, atol=1e-6
    )
