"""Keras/TensorFlow runtime helpers: seeding, fast inference, strategies.

Nothing here knows scikeras (that stays in ``_base.py``).
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

__all__ = [
    "PREDICT_CHUNK_ELEMENTS",
    "StrategySpec",
    "fresh_seed",
    "run_inference",
    "temporary_seed",
]

#: input elements handed to one ``predict_on_batch`` call (~64 MiB float32)
PREDICT_CHUNK_ELEMENTS = 2**24


@contextlib.contextmanager
def temporary_seed(seed):
    """Seed the RNGs Keras draws default seeds from, then restore them.

    Keras 3 layers and initializers built without an explicit seed draw one
    from Python's ``random`` and from a global ``SeedGenerator``. For models
    we do not build ourselves (a user's factory, a cloned architecture) we
    seed those for the duration of the build only: Python's and NumPy's
    global RNG states and Keras' global generator are put back afterwards,
    and TensorFlow's op-determinism flag is never touched.
    """
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - saved to be restored
    attr = seed_generator.GLOBAL_SEED_GENERATOR
    old_generator = global_state.get_global_attribute(attr)
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - restored below
        global_state.set_global_attribute(
            attr, seed_generator.SeedGenerator(seed % 2**31)
        )
        yield
    finally:
        global_state.set_global_attribute(attr, old_generator)
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002 - the restore


def fresh_seed(random_state):
    """An int seed from ``random_state`` without touching global RNGs."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % 2**31)
    if isinstance(random_state, np.random.RandomState):
        copy = np.random.RandomState()
        copy.set_state(random_state.get_state())
        return int(copy.randint(2**31 - 1))
    return int(random_state) % 2**31


def _inference_function(model):
    """A cached inference-mode function of ``model`` (numpy in, numpy out)."""
    function = model.__dict__.get("_sktransfer_inference")
    if function is None:
        import tensorflow as tf

        spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype)

        def infer(x):
            return model(x, training=False)

        # autograph off: a plain forward pass has no Python control flow
        concrete = tf.function(
            infer, input_signature=[spec], autograph=False
        ).get_concrete_function()

        def function(X):
            return concrete(tf.constant(X)).numpy()

        # object.__setattr__: bypass Keras' attribute tracking
        object.__setattr__(model, "_sktransfer_inference", function)
    return function


def run_inference(model, X):
    """``model``'s inference-mode output for X, in chunks, numpy in and out.

    ``Model.predict`` costs tens of milliseconds per call whatever the batch
    size and ``predict_on_batch`` most of a millisecond; a concrete function
    traced once per network costs a fraction of that. It is kept on the
    Keras model, not the estimator, so predicting leaves the estimator's
    ``__dict__`` unchanged.
    """
    function = _inference_function(model)
    per_row = max(1, int(np.prod(X.shape[1:])))
    chunk = max(1, PREDICT_CHUNK_ELEMENTS // per_row)
    if len(X) <= chunk:
        return function(X)
    return np.concatenate(
        [function(X[start : start + chunk]) for start in range(0, len(X), chunk)]
    )


class StrategySpec:
    """A picklable stand-in for a one-machine ``tf.distribute`` strategy.

    ``MirroredStrategy`` and ``OneDeviceStrategy`` are described by their
    class and devices, and the process-wide default strategy by nothing; any
    other strategy (multi-worker, TPU, parameter server) is bound to a
    cluster set up in its own process and is pickled as is (or fails to).
    A ``MirroredStrategy`` over all local devices (what ``MirroredStrategy()``
    picks) is rebuilt over all devices of the receiving machine: a client
    without GPUs must not pin a GPU worker to its CPU.
    """

    def __init__(self, kind, devices):
        self.kind = kind
        self.devices = devices

    @classmethod
    def describe(cls, strategy):
        import tensorflow as tf

        kind = type(strategy)
        if kind is tf.distribute.MirroredStrategy:
            devices = list(strategy.extended.worker_devices)

            def where(names):
                return {
                    (spec.device_type, spec.device_index)
                    for spec in map(tf.DeviceSpec.from_string, names)
                }

            local = [d.name for d in tf.config.list_logical_devices("GPU")] or [
                d.name for d in tf.config.list_logical_devices("CPU")[:1]
            ]
            return cls("mirrored", None if where(devices) == where(local) else devices)
        if kind is tf.distribute.OneDeviceStrategy:
            return cls("one_device", list(strategy.extended.worker_devices))
        if kind.__name__ == "_DefaultDistributionStrategy":
            return cls("default", None)
        return None

    def build(self):
        import tensorflow as tf

        if self.kind == "mirrored":
            return tf.distribute.MirroredStrategy(self.devices)
        if self.kind == "one_device":
            return tf.distribute.OneDeviceStrategy(self.devices[0])
        return tf.distribute.get_strategy()
