"""Keras 3 backends: JAX and PyTorch without TensorFlow, files across backends.

The backend is fixed when Keras is imported, so every test that needs a
backend other than the running one starts a Python process with
``KERAS_BACKEND`` set. Tests for a backend that is not installed skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from sktransfer._backend import SeededBatches, inference_function, padded_rows

pytestmark = pytest.mark.backends

BACKEND = keras.backend.backend()


def _installed(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return importlib.util.find_spec(module) is not None


def _needs(*backends):
    missing = [b for b in backends if not _installed(b)]
    return pytest.mark.skipif(
        bool(missing), reason=f"backend not installed: {', '.join(missing)}"
    )


def _run(backend, code, tmp_path, timeout=600):
    """Run ``code`` with Keras on ``backend``; its last stdout line as JSON."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# everything a user does, on the digits data, reporting what was imported
WORKFLOW = """
import json, sys
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sktransfer import PretrainedClassifier, TransferClassifier, TransferFeatures, load

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
src = y < 5
source = PretrainedClassifier(hidden_layer_sizes=(32, 16), epochs=10, random_state=0)
source.fit(X[src], y[src])
twin = PretrainedClassifier(hidden_layer_sizes=(32, 16), epochs=10, random_state=0)
twin.fit(X[src], y[src])
source.save("source.keras")
Xt, yt = X[~src][:300], y[~src][:300]
search = GridSearchCV(
    TransferClassifier(pretrained="source.keras", epochs=5, random_state=0,
                       memory="cache"),
    {"freeze": [1, "all"]}, cv=2, n_jobs=2,  # loky workers on the same backend
).fit(Xt, yt)
clf = search.best_estimator_
clf.save("target.keras")
loaded = load("target.keras")
features = TransferFeatures(pretrained=source).fit(Xt).transform(Xt[:5])
print(json.dumps({
    "tensorflow": "tensorflow" in sys.modules,
    "backend": __import__("keras").backend.backend(),
    "same_seed_same_model": bool(np.array_equal(
        source.predict_proba(X[:50]), twin.predict_proba(X[:50]))),
    "source_accuracy": float(source.score(X[src], y[src])),
    "target_accuracy": float(clf.score(Xt, yt)),
    "loaded_equal": bool(np.allclose(
        loaded.predict_proba(Xt), clf.predict_proba(Xt), atol=1e-6)),
    "one_row": loaded.predict(Xt[:1]).tolist(),
    "features": list(features.shape),
}))
"""


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("jax", marks=_needs("jax")),
        pytest.param("torch", marks=_needs("torch")),
    ],
)
def test_a_full_workflow_never_imports_tensorflow(backend, tmp_path):
    """Fit, seed, grid-search (loky) with the cache, save, load, predict, transform."""
    out = _run(backend, WORKFLOW, tmp_path)
    assert out["backend"] == backend
    assert out["tensorflow"] is False
    assert out["same_seed_same_model"]
    assert out["source_accuracy"] > 0.9
    assert out["target_accuracy"] > 0.8
    assert out["loaded_equal"]
    assert out["one_row"][0] in (5, 6, 7, 8, 9)
    assert out["features"][0] == 5 and out["features"][1] > 0


SAVE = """
import json
import numpy as np
from sklearn.datasets import load_digits
from sktransfer import PretrainedClassifier
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
clf = PretrainedClassifier(hidden_layer_sizes=(32,), epochs=5, random_state=0)
clf.fit(X, y).save("model.keras")
np.save("proba.npy", clf.predict_proba(X))
print(json.dumps({"saved": True}))
"""

LOAD = """
import json, sys
import numpy as np
from sklearn.datasets import load_digits
from sktransfer import TransferClassifier, load
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
clf = load("model.keras")
gap = float(np.abs(clf.predict_proba(X) - np.load("proba.npy")).max())
tuned = TransferClassifier(pretrained="model.keras", freeze=1, epochs=3,
                           random_state=0).fit(X[:200], y[:200] % 2)
print(json.dumps({"gap": gap, "tuned": float(tuned.score(X[:200], y[:200] % 2))}))
"""


@pytest.mark.parametrize(
    "writer, reader",
    [
        pytest.param("tensorflow", "jax", marks=_needs("tensorflow", "jax")),
        pytest.param("jax", "tensorflow", marks=_needs("tensorflow", "jax")),
        pytest.param("tensorflow", "torch", marks=_needs("tensorflow", "torch")),
        pytest.param("torch", "jax", marks=_needs("torch", "jax")),
    ],
)
def test_a_file_saved_on_one_backend_predicts_the_same_on_another(
    writer, reader, tmp_path
):
    assert _run(writer, SAVE, tmp_path)["saved"]
    out = _run(reader, LOAD, tmp_path)
    assert out["gap"] < 1e-5
    assert out["tuned"] > 0.6  # and it transfers from the other backend's file


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow runs strategies")
def test_a_distribution_strategy_off_tensorflow_is_a_clear_error(iris):
    from sktransfer import PretrainedClassifier

    class Strategy:  # what fit checks for: anything with scope()
        def scope(self):  # pragma: no cover - never entered
            raise AssertionError("trained under a strategy")

    X, y = iris
    clf = PretrainedClassifier(distribution_strategy=Strategy(), epochs=1)
    with pytest.raises(ValueError, match="TensorFlow backend.*keras.distribution"):
        clf.fit(X, y)


def test_padded_rows_are_few_sizes_and_never_fewer_rows():
    sizes = {padded_rows(n) for n in range(1, 2049)}
    assert all(padded_rows(n) >= n for n in range(1, 2049))
    assert all(padded_rows(n) <= n + n // 4 + 1 for n in range(129, 2049))
    assert len(sizes) < 40


def test_inference_function_matches_the_model_on_any_batch_size():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="softmax")(
        keras.layers.BatchNormalization()(keras.layers.Dense(8)(inputs))
    )
    model = keras.Model(inputs, outputs)
    infer = inference_function(model)
    X = np.random.default_rng(0).normal(size=(300, 4)).astype("float32")
    for n in (1, 3, 128, 129, 300):
        expected = keras.ops.convert_to_numpy(model(X[:n], training=False))
        np.testing.assert_allclose(infer(X[:n]), expected, rtol=1e-5, atol=1e-6)
    model.layers[1].set_weights([w + 1 for w in model.layers[1].get_weights()])
    expected = keras.ops.convert_to_numpy(model(X[:7], training=False))
    np.testing.assert_allclose(infer(X[:7]), expected, rtol=1e-5, atol=1e-6)


def test_seeded_batches_repeat_with_the_seed_and_cover_every_row():
    X = np.arange(50, dtype="float32").reshape(25, 2)
    y = np.arange(25)
    w = np.ones(25, "float32")

    def epochs(seed):
        data = SeededBatches(X, y, w, 8, seed, shuffle=True)
        out = []
        for _ in range(3):
            out.append([data[i][1].tolist() for i in range(len(data))])
            data.on_epoch_end()
        return out

    first = epochs(1)
    assert first == epochs(1)
    assert first != epochs(2)
    assert first[0] != first[1]  # reshuffled every epoch
    for epoch in first:
        assert sorted(sum(epoch, [])) == list(range(25))
        assert [len(b) for b in epoch] == [8, 8, 8, 1]


def test_endless_seeded_batches_run_pass_after_pass_across_epochs():
    """With ``repeat`` Keras reads index after index across its epochs
    (``steps_per_epoch``): each run of ``len`` batches is one full,
    freshly shuffled pass, the same for the same seed."""
    X = np.arange(50, dtype="float32").reshape(25, 2)
    y, w = np.arange(25), np.ones(25, "float32")

    def passes(seed):
        data = SeededBatches(X, y, w, 8, seed, shuffle=True, repeat=True)
        assert data.num_batches is None
        batches = [data[i][1].tolist() for i in range(3 * len(data))]
        data.on_epoch_end()  # Keras' epoch boundary: not a pass boundary
        return [sum(batches[k * 4 : (k + 1) * 4], []) for k in range(3)]

    first = passes(3)
    assert first == passes(3)
    assert all(sorted(rows) == list(range(25)) for rows in first)
    assert first[0] != first[1] != first[2]
