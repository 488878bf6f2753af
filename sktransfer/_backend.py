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

__all__ = [
    "MAX_EMBEDDED_BYTES",
    "SeededBatches",
    "backend_name",
    "compile_defaults",
    "inference_function",
    "padded_rows",
    "training_data",
]

#: above this many bytes the training arrays are not embedded in the graph
MAX_EMBEDDED_BYTES = 512 * 2**20


def backend_name():
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


def compile_defaults(steps_per_execution):
    """``Model.compile`` settings that train small networks fastest here.

    TensorFlow: no XLA, ``steps_per_execution`` steps per compiled call (the
    per-step cost of Keras' loop dominates small data). JAX: ``jax.jit``
    (its eager mode was about twenty times slower on an MLP) and one step
    per call (several measured no faster). PyTorch: eager, one step per call
    (``torch.compile`` costs more than it saves on a fit of seconds).
    """
    backend = backend_name()
    if backend == "tensorflow":
        return {"jit_compile": False, "steps_per_execution": steps_per_execution}
    if backend == "jax":
        return {"jit_compile": True, "steps_per_execution": 1}
    return {"jit_compile": False, "steps_per_execution": 1}


def inference_function(model):
    """A numpy-in, numpy-out inference-mode function of ``model``.

    TensorFlow: a concrete ``tf.function``. JAX: ``jax.jit`` of the model's
    stateless call, rows padded to a power of two so that predicting on
    many batch sizes compiles a handful of shapes, not one per size. PyTorch:
    a direct call in ``torch.inference_mode``. Each reads the model's
    current weights at every call.
    """
    backend = backend_name()
    if backend == "tensorflow":
        return _tensorflow_inference(model)
    if backend == "jax":
        return _jax_inference(model)
    if backend == "torch":
        return _torch_inference(model)
    return lambda X: keras.ops.convert_to_numpy(model(X, training=False))


def _tensorflow_inference(model):
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype)

    def infer(x):
        return model(x, training=False)

    # autograph off: a plain forward pass has no Python control flow
    concrete = tf.function(
        infer, input_signature=[spec], autograph=False
    ).get_concrete_function()
    return lambda X: concrete(tf.constant(X)).numpy()


def _jax_inference(model):
    import jax

    def forward(trainable, non_trainable, x):
        outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
        return outputs

    compiled = jax.jit(forward)

    def infer(X):
        n = len(X)
        rows = padded_rows(n)
        if rows != n:
            X = np.concatenate([X, np.zeros((rows - n, *X.shape[1:]), X.dtype)])
        out = compiled(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            X,
        )
        return np.asarray(out)[:n]

    return infer


def padded_rows(n):
    """``n`` rounded up to one of few sizes: powers of two, then eighths.

    Up to 128 rows the next power of two; above, the next multiple of an
    eighth of it (at most 1/8 of the rows wasted, eight shapes an octave).
    """
    power = 1 << max(0, n - 1).bit_length()
    if power <= 128:
        return power
    step = power // 8
    return -(-n // step) * step


def _torch_inference(model):
    import torch

    def infer(X):
        # inference mode skips autograd's version counters as well (measured
        # several times faster than no_grad on 1,000 rows); the tensor is
        # made once, on Keras' device
        with torch.inference_mode():
            x = keras.ops.convert_to_tensor(np.ascontiguousarray(X))
            return keras.ops.convert_to_numpy(model(x, training=False))

    return infer


def training_data(X, y, sample_weight, batch_size, seed, shuffle, repeat=False):
    """Seeded minibatches of ``(X, y, sample_weight)`` for ``Model.fit``.

    On TensorFlow a ``tf.data`` pipeline (much cheaper per epoch than Keras'
    NumPy adapter on small data); large arrays are fed by a generator rather
    than embedded in the graph. With ``repeat`` the passes over the data
    follow one another without end, each reshuffled and with its own last
    partial batch, so that one Keras epoch can span several passes.
    """
    if backend_name() != "tensorflow":
        return SeededBatches(X, y, sample_weight, batch_size, seed, shuffle, repeat)
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


class SeededBatches(keras.utils.PyDataset):
    """Seeded minibatches for ``Model.fit`` on JAX and PyTorch.

    A ``PyDataset`` served in the training thread: each pass over the data
    draws its row order from a NumPy generator seeded once, so the same
    seed gives the same batches (Keras' array adapter shuffles with its own
    unseeded draws). Rows within a batch are sorted. With ``repeat`` it has
    no end: Keras reads batch after batch across its epochs
    (``steps_per_epoch``), a new pass starting where the last one ended.
    """

    def __init__(self, X, y, sample_weight, batch_size, seed, shuffle, repeat=False):
        super().__init__()
        self.arrays = (X, y, sample_weight)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.repeat = repeat
        self.rng = np.random.default_rng(seed)
        self.order = self._draw()
        self.passes = 0  # the pass ``order`` belongs to (with ``repeat``)

    def _draw(self):
        n = len(self.arrays[1])
        return self.rng.permutation(n) if self.shuffle else np.arange(n)

    def __len__(self):
        return math.ceil(len(self.order) / self.batch_size)

    @property
    def num_batches(self):
        return None if self.repeat else len(self)

    def __getitem__(self, index):
        if self.repeat:  # read in order: index k of pass p is p * len + k
            passes, index = divmod(index, len(self))
            while self.passes < passes:
                self.order = self._draw()
                self.passes += 1
        start = index * self.batch_size
        rows = np.sort(self.order[start : start + self.batch_size])
        return tuple(array[rows] for array in self.arrays)

    def on_epoch_end(self):
        if not self.repeat:
            self.order = self._draw()


def _generator(X, y, sample_weight, batch_size, seed, shuffle):
    """A callable yielding one pass of seeded minibatches (sorted rows within
    a batch); ``tf.data`` repeats it where passes follow one another."""
    rng = np.random.default_rng(seed)
    n = len(y)

    def batches():
        order = rng.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            idx = np.sort(order[start : start + batch_size])
            yield X[idx], y[idx], sample_weight[idx]

    return batches
