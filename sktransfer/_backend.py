"""Backend-specific fast paths behind one interface.

Keras 3 runs on TensorFlow, JAX and PyTorch. Two things are worth a
backend's own path on small data, and only those live here:

* :func:`inference_function`: a network's inference-mode forward pass,
  compiled once per network (``Model.predict`` costs tens of milliseconds
  per call whatever the batch size);
* :func:`training_data`: the seeded minibatch pipeline handed to
  ``Model.fit`` (Keras' NumPy adapter costs tens of milliseconds per epoch).

On TensorFlow these are a concrete ``tf.function`` and a ``tf.data``
pipeline. Nothing here imports TensorFlow unless Keras runs on it.
"""

from __future__ import annotations

import math

import keras
import numpy as np

__all__ = ["MAX_EMBEDDED_BYTES", "backend_name", "inference_function", "training_data"]

#: above this many bytes the training arrays are not embedded in the graph
MAX_EMBEDDED_BYTES = 512 * 2**20


def backend_name():
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def inference_function(model):
    """A numpy-in, numpy-out inference-mode function of ``model``."""
    if backend_name() == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype)

        def infer(x):
            return model(x, training=False)

        # autograph off: a plain forward pass has no Python control flow
        concrete = tf.function(
            infer, input_signature=[spec], autograph=False
        ).get_concrete_function()
        return lambda X: concrete(tf.constant(X)).numpy()
    return lambda X: keras.ops.convert_to_numpy(model(X, training=False))


def training_data(X, y, sample_weight, batch_size, seed, shuffle, repeat=False):
    """Seeded minibatches of ``(X, y, sample_weight)`` for ``Model.fit``.

    On TensorFlow a ``tf.data`` pipeline (much cheaper per epoch than Keras'
    NumPy adapter on small data); large arrays are fed by a generator rather
    than embedded in the graph. With ``repeat`` the passes over the data
    follow one another without end, each reshuffled and with its own last
    partial batch, so that one Keras epoch can span several passes.
    """
    if backend_name() != "tensorflow":  # pragma: no cover - other backends
        return _generator(X, y, sample_weight, batch_size, seed, shuffle, repeat)
    import tensorflow as tf

    if X.nbytes <= MAX_EMBEDDED_BYTES:
        data = tf.data.Dataset.from_tensor_slices((X, y, sample_weight))
        if shuffle:
            data = data.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        data = data.batch(batch_size)
        return (data.repeat() if repeat else data).prefetch(2)
    signature = (
        tf.TensorSpec((None, *X.shape[1:]), X.dtype),
        tf.TensorSpec((None,), y.dtype),
        tf.TensorSpec((None,), sample_weight.dtype),
    )
    # a generator's length is unknown to tf.data: without it Keras warns
    # "ran out of data" every epoch and counts one optimizer step too many
    n_batches = math.ceil(len(y) / batch_size)
    data = tf.data.Dataset.from_generator(
        _generator(X, y, sample_weight, batch_size, seed, shuffle),
        output_signature=signature,
    ).apply(tf.data.experimental.assert_cardinality(n_batches))
    return (data.repeat() if repeat else data).prefetch(2)


def _generator(X, y, sample_weight, batch_size, seed, shuffle, repeat=False):
    """A callable yielding seeded minibatches (sorted rows within a batch).

    One pass over the data per call, or passes without end with ``repeat``.
    """
    rng = np.random.default_rng(seed)
    n = len(y)

    def batches():
        while True:
            order = rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, batch_size):
                idx = np.sort(order[start : start + batch_size])
                yield X[idx], y[idx], sample_weight[idx]
            if not repeat:
                return

    return batches
