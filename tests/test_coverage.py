"""Behaviour no other test pinned, checked by value.

* ``TransferClassifier`` with ``sample_weight`` and ``class_weight``, on the
  cached, uncached and ``memory`` paths (which must agree);
* ``n_warmup_epochs_`` when early stopping ends the warm-up;
* ``cut=True`` / ``cut=False`` refused with the message for them;
* ``import sktransfer`` without importing TensorFlow;
* chunked inference (``_graph.run_chunked``) and the generator-fed training
  path (``_backend.MAX_EMBEDDED_BYTES``), against the ordinary paths;
* the per-process parse cache of source files (``_sources._LOADED``):
  invalidation by a rewritten file, least-recently-used eviction;
* ``save``/``load`` of every fitted attribute of both estimators;
* metadata routing of ``sample_weight`` through ``Pipeline``,
  ``GridSearchCV`` and ``cross_validate`` (clones keep ``set_fit_request``).

Everything trains small networks on ``load_digits``, ``load_iris`` or
``load_breast_cancer`` for a few epochs. Package internals are only
monkeypatched to reach a path (a tiny chunk size, a zero embedding limit, a
fresh parse cache) or to observe what was called; the real code runs.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

import sktransfer
from sktransfer import (
    PretrainedClassifier,
    TransferClassifier,
    _backend,
    _graph,
    _runtime,
    _sources,
)

#: cached and uncached training differ only by float rounding
ATOL = 1e-5


# --------------------------------------------------------------------- helpers
class TrainingSpy(keras.callbacks.Callback):
    """Records whether Keras training ever started."""

    def __init__(self):
        super().__init__()
        self.started = False

    def on_train_begin(self, logs=None):
        self.started = True


class PhaseLosses(keras.callbacks.Callback):
    """The training loss of every epoch, one list per ``Model.fit`` (phase)."""

    def __init__(self):
        super().__init__()
        self.phases = []

    def on_train_begin(self, logs=None):
        self.phases.append([])

    def on_epoch_end(self, epoch, logs=None):
        self.phases[-1].append(float(logs["loss"]))


def same_weights(a, b):
    a, b = a.get_weights(), b.get_weights()
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def target(digits_target):
    """300 rows of digits 5-9: a 30-row validation split when early stopping."""
    X, y = digits_target
    return X[:300], y[:300]


def transfer(source, **params):
    # the optimizer-trained path at the penultimate cut (test_probe.py
    # covers the default probe)
    params = {
        "cut": "penultimate",
        "head_solver": "adam",
        "epochs": 20,
        "learning_rate": 1e-2,
        "early_stopping": False,
        "random_state": 0,
        **params,
    }
    return TransferClassifier(source, **params)


def cache_params(mode, tmp_path):
    return {
        "cached": {},
        "uncached": {"cache_features": False},
        "memory": {"memory": str(tmp_path / "memory")},
    }[mode]


# ------------------------------------------------- 1. weights in transfer fits
@pytest.mark.parametrize("freeze", ["all", 1])
def test_transfer_zero_weight_on_a_class_on_every_path(
    pretrained_source, target, tmp_path, freeze
):
    """Zero weight on the rows of digit 9: the network (almost) never predicts
    9 on them, where an unweighted fit predicts 9 on most; the cached,
    uncached and memory (shared frozen source) paths train the same network."""
    X, y = target
    weights = (y != 9).astype(float)
    proba = {}
    for mode in ("cached", "uncached", "memory"):
        clf = transfer(pretrained_source, freeze=freeze, **cache_params(mode, tmp_path))
        clf.fit(X, y, sample_weight=weights)
        assert (clf.feature_cut_ is None) == (mode == "uncached")
        assert np.mean(clf.predict(X[y == 9]) == 9) <= 0.05, mode
        proba[mode] = clf.predict_proba(X)
    assert_allclose(proba["cached"], proba["uncached"], rtol=0, atol=ATOL)
    assert_allclose(proba["memory"], proba["cached"], rtol=0, atol=ATOL)
    unweighted = transfer(pretrained_source, freeze=freeze).fit(X, y)
    assert np.mean(unweighted.predict(X[y == 9]) == 9) >= 0.5


@pytest.mark.parametrize("mode", ["cached", "uncached", "memory"])
def test_transfer_class_weight_multiplies_sample_weight(
    pretrained_source, target, tmp_path, mode
):
    """class_weight is sample_weight times the class's weight: a fit with both
    trains the network a fit with their product as sample_weight does, and
    "balanced" is scikit-learn's balanced weights; neither is a no-op."""
    X, y = target
    # an unbalanced task: most of the 8s and 9s left out
    keep = (y < 8) | (np.arange(len(y)) % 4 == 0)
    X, y = X[keep], y[keep]
    rng = np.random.RandomState(0)
    sample_weight = rng.uniform(0.5, 2.0, len(y))
    class_weight = {5: 3.0, 9: 0.25}
    product = sample_weight * np.array([class_weight.get(c, 1.0) for c in y])
    params = dict(freeze=1, epochs=5, **cache_params(mode, tmp_path))

    both = transfer(pretrained_source, class_weight=class_weight, **params)
    both.fit(X, y, sample_weight=sample_weight)
    multiplied = transfer(pretrained_source, **params).fit(X, y, sample_weight=product)
    assert_allclose(both.predict_proba(X), multiplied.predict_proba(X), atol=1e-6)

    balanced = transfer(pretrained_source, class_weight="balanced", **params).fit(X, y)
    explicit = transfer(pretrained_source, **params)
    explicit.fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    assert_allclose(balanced.predict_proba(X), explicit.predict_proba(X), atol=1e-6)

    plain = transfer(pretrained_source, **params).fit(X, y)
    for weighted in (both, balanced):
        assert np.abs(weighted.predict_proba(X) - plain.predict_proba(X)).max() > 0.01


# ------------------------------------------------------- 2. n_warmup_epochs_
def test_n_warmup_epochs_when_early_stopping_ends_the_warmup(pretrained_source, target):
    """30 warm-up epochs allowed, but early stopping (patience 1, a high
    learning rate) ends the warm-up sooner: ``n_warmup_epochs_`` is the
    number of warm-up epochs that ran, and splits ``history_`` there."""
    X, y = target
    phases = PhaseLosses()
    clf = TransferClassifier(
        pretrained_source,
        freeze=1,
        warmup_epochs=30,
        epochs=4,
        learning_rate=0.05,
        patience=1,
        early_stopping=True,
        random_state=0,
        callbacks=[phases],
    ).fit(X, y)
    warmup, main = phases.phases
    assert len(warmup) < 30, "precondition: early stopping ended the warm-up"
    assert main, "precondition: the main phase ran"
    assert clf.n_warmup_epochs_ == len(warmup)
    n = clf.n_warmup_epochs_
    assert_allclose(clf.history_["loss"][:n], warmup, rtol=1e-6)
    assert_allclose(clf.history_["loss"][n:], main, rtol=1e-6)
    assert len(clf.history_["val_loss"]) == len(warmup) + len(main)


def test_n_warmup_epochs_without_early_stopping(pretrained_source, target, tmp_path):
    X, y = target
    for params in ({}, {"memory": str(tmp_path / "memory")}, {"warmup_epochs": 0}):
        params = {"freeze": 1, "warmup_epochs": 2, "epochs": 3, **params}
        clf = transfer(pretrained_source, **params).fit(X, y)
        assert clf.n_warmup_epochs_ == params["warmup_epochs"]
        assert len(clf.history_["loss"]) == params["warmup_epochs"] + 3


# ------------------------------------------------------------ 3. boolean cut
@pytest.mark.parametrize("cut", [True, False])
def test_bool_cut_is_refused_before_training(pretrained_source, target, cut):
    """True and False are Integrals to Python (so 1 and 0 to a careless
    check): they are refused as typos, with the valid forms, before any
    training step and whichever way the fit would have gone."""
    X, y = target
    message = (
        rf"^cut={cut} is not a valid cut: use 'auto', None, a layer name or an int "
        r"position \(keep model\.layers\[:cut\]\)\.$"
    )
    spy = TrainingSpy()
    clf = transfer(pretrained_source, cut=cut, callbacks=[spy])
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)
    assert not spy.started and not hasattr(clf, "history_")


@pytest.mark.parametrize("cut", [True, False])
def test_bool_cut_is_refused_on_the_memory_path(
    pretrained_source, target, cut, tmp_path
):
    X, y = target
    location = tmp_path / "memory"
    clf = transfer(pretrained_source, cut=cut, memory=str(location))
    with pytest.raises(ValueError, match=rf"^cut={cut} is not a valid cut: use 'auto'"):
        clf.fit(X, y)
    assert not hasattr(clf, "history_")
    assert not location.exists() or not any(location.rglob("output.pkl"))


# ------------------------------------------------------------ 4. lazy import
def test_import_sktransfer_does_not_import_tensorflow():
    code = textwrap.dedent(
        """
        import sys
        import sktransfer
        heavy = ("tensorflow", "keras", "scikeras", "sklearn")
        print(sorted(name for name in heavy if name in sys.modules))
        print(sktransfer.__version__, sorted(sktransfer.__all__))
        print(sorted(set(sktransfer.__all__) - set(dir(sktransfer))))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines == [
        "[]",
        f"{sktransfer.__version__} ['PretrainedClassifier', 'TransferClassifier', "
        "'TransferFeatures', 'load']",
        "[]",
    ]


def test_public_names_resolve_lazily_to_their_modules():
    from sktransfer import _features, _load, _pretrained, _transfer

    assert sktransfer.PretrainedClassifier is _pretrained.PretrainedClassifier
    assert sktransfer.TransferClassifier is _transfer.TransferClassifier
    assert sktransfer.TransferFeatures is _features.TransferFeatures
    assert sktransfer.load is _load.load
    assert vars(sktransfer)["load"] is _load.load  # kept after the first use
    with pytest.raises(
        AttributeError, match=r"^module 'sktransfer' has no attribute 'Nope'$"
    ):
        sktransfer.Nope  # noqa: B018


# ------------------------------------------------------- 5. chunked inference
def test_run_chunked_covers_every_row_once_in_order(monkeypatch):
    X = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    sizes = []

    def function(chunk):
        sizes.append(len(chunk))
        return chunk[:, :1] * 2.0

    monkeypatch.setattr(_graph, "PREDICT_CHUNK_ELEMENTS", 21)  # 7 rows of 3
    assert_array_equal(_graph.run_chunked(function, X), X[:, :1] * 2.0)
    assert sizes == [7] * 7 + [1]
    sizes.clear()
    monkeypatch.setattr(_graph, "PREDICT_CHUNK_ELEMENTS", 2)  # under one row
    assert_array_equal(_graph.run_chunked(function, X[:4]), X[:4, :1] * 2.0)
    assert sizes == [1, 1, 1, 1]
    sizes.clear()
    monkeypatch.setattr(_graph, "PREDICT_CHUNK_ELEMENTS", 150)  # exactly all
    assert_array_equal(_graph.run_chunked(function, X), X[:, :1] * 2.0)
    assert sizes == [50]


def test_chunked_inference_predicts_the_same(pretrained_source, target, monkeypatch):
    """Predictions and cached features computed 7 rows at a time equal the
    one-call results: for both estimators, and for a fit on features
    computed in chunks."""
    X, y = target
    clf = transfer(pretrained_source, freeze=1, epochs=3).fit(X, y)
    expected = {"transfer": clf.predict_proba(X)}
    expected["pretrained"] = pretrained_source.predict_proba(X)
    sizes = []
    real = _graph.run_chunked

    def recording(function, data):
        return real(lambda chunk: sizes.append(len(chunk)) or function(chunk), data)

    monkeypatch.setattr(_graph, "PREDICT_CHUNK_ELEMENTS", 64 * 7)  # 7 rows
    monkeypatch.setattr(_runtime, "run_chunked", recording)  # predict
    monkeypatch.setattr(_graph, "run_chunked", recording)  # prefix features
    for name, est in (("transfer", clf), ("pretrained", pretrained_source)):
        sizes.clear()
        assert_allclose(est.predict_proba(X), expected[name], rtol=0, atol=1e-6)
        assert sizes == [7] * 42 + [6], name
    sizes.clear()
    refit = transfer(pretrained_source, freeze=1, epochs=3).fit(X, y)
    assert sizes == [7] * 42 + [6]  # the frozen prefix's features, in chunks
    assert_allclose(refit.predict_proba(X), expected["transfer"], rtol=0, atol=ATOL)


# ------------------------------------------------ 6. generator-fed training
def test_generator_batches_cover_every_row_once_per_epoch():
    X = np.arange(23, dtype=np.float32)[:, None]
    y = np.arange(23) * 10
    w = np.arange(23) / 100.0
    batches = _backend._generator(X, y, w, 5, 3, True)
    epochs = [list(batches()), list(batches())]
    for epoch in epochs:
        assert [len(bx) for bx, _, _ in epoch] == [5, 5, 5, 5, 3]
        rows = np.concatenate([bx[:, 0] for bx, _, _ in epoch]).astype(int)
        assert sorted(rows) == list(range(23))  # every row once
        for bx, by, bw in epoch:
            assert_array_equal(by, bx[:, 0] * 10)  # labels and weights stay
            assert_allclose(bw, bx[:, 0] / 100.0)  # with their rows
            assert list(bx[:, 0]) == sorted(bx[:, 0])  # sorted within a batch
    first, second = ([tuple(bx[:, 0]) for bx, _, _ in e] for e in epochs)
    assert first != second  # reshuffled every epoch
    again = _backend._generator(X, y, w, 5, 3, True)
    assert [tuple(bx[:, 0]) for bx, _, _ in again()] == first  # seeded
    ordered = _backend._generator(X, y, w, 5, 3, False)
    assert np.concatenate([bx[:, 0] for bx, _, _ in ordered()]).tolist() == list(
        range(23)
    )


def _full_batch_sgd(X, y, w):
    return PretrainedClassifier(
        hidden_layer_sizes=(8,),
        optimizer="sgd",
        learning_rate=0.1,
        epochs=8,
        batch_size=1000,
        random_state=0,
    ).fit(X, y, sample_weight=w)


def test_generator_fed_fit_equals_the_tf_data_fit(breast_cancer, monkeypatch):
    """Arrays over ``MAX_EMBEDDED_BYTES`` are fed by a generator instead of
    being embedded in a tf.data graph. One batch per epoch (the order of
    rows within it does not matter) and plain SGD (which does not count
    steps) make both feeds train the same network, validation split and
    sample weights included. With minibatches they differ by design: each
    feed draws its own seeded shuffle (tf.data's, NumPy's permutation)."""
    X, y = breast_cancer  # 300 rows: early stopping on a 30-row split
    w = np.linspace(0.2, 2.0, len(y))
    reference = _full_batch_sgd(X, y, w)
    used = []
    real = _backend._generator

    def spy(*args):
        used.append(len(args[1]))
        return real(*args)

    monkeypatch.setattr(_backend, "MAX_EMBEDDED_BYTES", 0)
    monkeypatch.setattr(_backend, "_generator", spy)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Your input ran out of data")
        fed = _full_batch_sgd(X, y, w)
    assert sorted(used) == [30, 270]  # training rows and validation rows
    assert "val_loss" in fed.history_
    for key, values in reference.history_.items():
        assert_allclose(fed.history_[key], values, rtol=1e-5)
    for a, b in zip(fed.model_.get_weights(), reference.model_.get_weights()):
        assert_allclose(a, b, rtol=0, atol=1e-6)


def test_generator_fed_adam_fit_is_silent_and_counts_its_steps(iris, monkeypatch):
    X, y = iris

    def fit():
        return PretrainedClassifier(
            hidden_layer_sizes=(8,),
            learning_rate=0.05,
            epochs=4,
            batch_size=1000,
            early_stopping=False,
            random_state=0,
        ).fit(X, y)

    reference = fit()
    monkeypatch.setattr(_backend, "MAX_EMBEDDED_BYTES", 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fed = fit()
    assert not [w for w in caught if "ran out of data" in str(w.message)]
    assert int(fed.model_.optimizer.iterations.numpy()) == 4
    assert_allclose(fed.predict_proba(X), reference.predict_proba(X), atol=1e-6)


# ------------------------------------------------------- 7. the parse cache
def _network(seed):
    """A small network; every name fixed, so that its files differ only in
    weights (automatic names count up and change the file's size)."""
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(
        6, name="hidden", kernel_initializer=keras.initializers.GlorotUniform(seed)
    )(inputs)
    outputs = keras.layers.Dense(
        3,
        activation="softmax",
        name="out",
        kernel_initializer=keras.initializers.GlorotUniform(seed + 100),
    )(hidden)
    return keras.Model(inputs, outputs, name="net")


def _write(model, path, mtime_ns):
    model.save(path)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return str(path)


@pytest.fixture
def parse_cache(monkeypatch):
    """An empty ``_sources._LOADED`` for this test (and the default size)."""
    cache = collections.OrderedDict()
    monkeypatch.setattr(_sources, "_LOADED", cache)
    monkeypatch.setattr(_sources, "_LOADED_MAX", 2)
    return cache


def _key(path):
    return _sources._file_key(path, False, None)


def test_parse_cache_keeps_a_file_and_reloads_it_when_rewritten(tmp_path, parse_cache):
    first_net, second_net = _network(1), _network(2)
    path = _write(first_net, tmp_path / "source.keras", 10**18)
    size = os.path.getsize(path)

    copies = [_sources.resolve_pretrained(path)]
    assert list(parse_cache) == [_key(path)] and parse_cache[_key(path)] is None
    copies.append(_sources.resolve_pretrained(path))  # second load: kept
    kept = parse_cache[_key(path)]
    assert isinstance(kept, keras.Model)
    assert all(copy is not kept for copy in copies) and copies[0] is not copies[1]
    assert all(same_weights(copy, first_net) for copy in copies)
    # a copy handed out is private: changing it changes no later copy
    copies[1].set_weights([w + 1.0 for w in copies[1].get_weights()])
    assert same_weights(_sources.resolve_pretrained(path), first_net)

    # the file is rewritten: same path and size, a later modification time
    old_key = _key(path)
    _write(second_net, path, 10**18 + 10**9)
    assert os.path.getsize(path) == size, "precondition: only the mtime changed"
    assert same_weights(_sources.resolve_pretrained(path), second_net)
    assert list(parse_cache) == [old_key, _key(path)]
    assert parse_cache[_key(path)] is None  # the new contents, seen once


def test_parse_cache_evicts_the_least_recently_used_file(
    tmp_path, parse_cache, monkeypatch
):
    nets = [_network(seed) for seed in range(4)]
    paths = [
        _write(net, tmp_path / f"source{i}.keras", 10**18) for i, net in enumerate(nets)
    ]
    keys = [_key(path) for path in paths]

    def load(i):
        model = _sources.resolve_pretrained(paths[i])
        assert same_weights(model, nets[i])

    for i in (0, 1, 2):
        load(i)
    assert list(parse_cache) == [keys[1], keys[2]]  # file 0 out first
    load(1)  # used again: kept, and now the most recent
    assert list(parse_cache) == [keys[2], keys[1]]
    assert isinstance(parse_cache[keys[1]], keras.Model)
    load(3)
    assert list(parse_cache) == [keys[1], keys[3]]  # file 2 was least recent
    load(0)  # evicted before: seen once again, not kept
    assert list(parse_cache) == [keys[3], keys[0]] and parse_cache[keys[0]] is None
    monkeypatch.setattr(_sources, "_LOADED_MAX", 1)
    load(2)
    assert list(parse_cache) == [keys[2]]


# ----------------------------------------------- 8. every fitted attribute
def fitted_attributes(est):
    """Public fitted attributes (``name_``), ``model_`` included."""
    names = {k for k in vars(est) if k.endswith("_") and not k.startswith("_")}
    return names | ({"model_"} if hasattr(est, "model_") else set())


def assert_same_fitted_state(restored, original, X):
    names = fitted_attributes(original)
    assert fitted_attributes(restored) == names
    for name in sorted(names):
        got, expected = getattr(restored, name), getattr(original, name)
        if name == "model_":
            assert [layer.name for layer in got.layers] == [
                layer.name for layer in expected.layers
            ]
            assert same_weights(got, expected)
            assert_allclose(got(X).numpy(), expected(X).numpy(), atol=1e-6)
            continue
        assert type(got) is type(expected), (name, type(got), type(expected))
        if isinstance(expected, np.ndarray):
            assert got.dtype == expected.dtype, name
            assert_array_equal(got, expected)
        else:
            assert got == expected, name


@pytest.fixture(scope="module")
def cancer_frame(breast_cancer):
    """breast_cancer as a DataFrame with string labels (300 rows)."""
    X, y = breast_cancer
    columns = [f"feature_{i}" for i in range(X.shape[1])]
    return pd.DataFrame(X, columns=columns), np.where(y == 1, "benign", "malignant")


@pytest.fixture(scope="module")
def cancer_source_file(cancer_frame, tmp_path_factory):
    frame, labels = cancer_frame
    source = PretrainedClassifier(
        hidden_layer_sizes=(16, 8), epochs=5, early_stopping=False, random_state=0
    ).fit(frame.to_numpy()[:150], labels[:150])
    path = tmp_path_factory.mktemp("cancer") / "source.keras"
    source.save(path)
    return str(path)


@pytest.mark.parametrize("kind", ["pretrained", "transfer", "transfer_memory"])
def test_save_and_load_restore_every_fitted_attribute(
    kind, cancer_frame, cancer_source_file, tmp_path
):
    frame, labels = cancer_frame
    if kind == "pretrained":
        est = PretrainedClassifier(hidden_layer_sizes=(8,), epochs=4, random_state=0)
    else:
        memory = {"memory": str(tmp_path / "memory")} if kind.endswith("memory") else {}
        est = TransferClassifier(
            cancer_source_file,
            cut="penultimate",
            freeze=1,
            warmup_epochs=2,
            epochs=3,
            random_state=0,
            **memory,
        )
    est.fit(frame, labels)
    # fitted on a DataFrame with string labels, with a validation split
    assert "val_loss" in est.history_ and est.classes_.dtype.kind == "U"
    if kind != "pretrained":
        assert est.n_warmup_epochs_ == 2 and est.feature_cut_ is not None
        assert est.n_frozen_ == 1 and len(est.base_layers_) == 2
    path = est.save(tmp_path / "estimator.keras")
    restored = sktransfer.load(path)
    assert type(restored) is type(est)
    assert restored.get_params() == est.get_params()
    assert_same_fitted_state(restored, est, frame.to_numpy()[:20])
    assert_allclose(restored.predict_proba(frame), est.predict_proba(frame), atol=1e-6)


# ------------------------------------------------------ 9. metadata routing
@pytest.fixture(scope="module")
def iris_source(iris):
    """A small network pretrained on iris, the source of the routed transfers."""
    return PretrainedClassifier(
        hidden_layer_sizes=(16, 8),
        learning_rate=0.01,
        epochs=20,
        early_stopping=False,
        random_state=0,
    ).fit(*iris)


def _routed_estimator(kind, source):
    params = dict(learning_rate=0.05, epochs=15, early_stopping=False, random_state=0)
    if kind == "pretrained":
        est = PretrainedClassifier(hidden_layer_sizes=(8,), **params)
    else:
        est = TransferClassifier(source, freeze=1, **params)
    return est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)


@pytest.mark.parametrize("kind", ["pretrained", "transfer"])
def test_sample_weight_is_routed_through_pipeline_search_and_cv(
    kind, iris, iris_source
):
    """With metadata routing on, sample_weight reaches every fit (and every
    score) through Pipeline, GridSearchCV and cross_validate: each routed
    fit equals a direct fit on the same rows with their weights. The
    searches clone the estimator, and the clones keep ``set_fit_request``."""
    X, y = iris
    w = np.where(y == 2, 0.0, 1.0) * np.linspace(0.5, 1.5, len(y))
    cv = KFold(2, shuffle=True, random_state=0)
    folds = list(cv.split(X, y))
    with sklearn.config_context(enable_metadata_routing=True):
        est = _routed_estimator(kind, iris_source)
        assert clone(est).get_metadata_routing().fit.requests == {"sample_weight": True}

        scaler = StandardScaler().set_fit_request(sample_weight=False)
        pipe = Pipeline([("scale", scaler), ("clf", est)]).fit(X, y, sample_weight=w)
        scaled = StandardScaler().fit_transform(X)
        direct = clone(est).fit(scaled, y, sample_weight=w)
        assert_allclose(pipe.predict_proba(X), direct.predict_proba(scaled), atol=1e-6)
        # the weights mattered: class 2 carried none
        assert np.mean(direct.predict(scaled[y == 2]) == 2) <= 0.1

        fold_fits = [
            clone(est).fit(X[tr], y[tr], sample_weight=w[tr]) for tr, _ in folds
        ]
        fold_scores = [
            accuracy_score(y[te], fit.predict(X[te]), sample_weight=w[te])
            for fit, (_, te) in zip(fold_fits, folds)
        ]
        search = GridSearchCV(est, {"epochs": [15]}, cv=cv)
        search.fit(X, y, sample_weight=w)
        split_scores = [search.cv_results_[f"split{i}_test_score"][0] for i in (0, 1)]
        assert_allclose(split_scores, fold_scores, rtol=0, atol=1e-9)
        whole = clone(est).fit(X, y, sample_weight=w)
        assert_allclose(
            search.best_estimator_.predict_proba(X), whole.predict_proba(X), atol=1e-6
        )

        result = cross_validate(
            est, X, y, cv=cv, params={"sample_weight": w}, return_estimator=True
        )
        assert_allclose(result["test_score"], fold_scores, rtol=0, atol=1e-9)
        for fitted, reference in zip(result["estimator"], fold_fits):
            assert_allclose(
                fitted.predict_proba(X), reference.predict_proba(X), atol=1e-6
            )
