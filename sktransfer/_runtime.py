"""Seeding, fast inference and distribution strategies.

Seeds never touch process-wide state for longer than a build: global RNGs
are put back, and TensorFlow's op-determinism flag is never set.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

from ._backend import inference_function
from ._graph import run_chunked, run_eagerly
from ._keras_compat import stash, stashed, swap_global_seed_generator

__all__ = [
    "EAGER_FIRST_ROWS",
    "StrategySpec",
    "fresh_seed",
    "run_inference",
    "temporary_seed",
]

#: a network's first prediction on at most this many rows runs eagerly
EAGER_FIRST_ROWS = 256


@contextlib.contextmanager
def temporary_seed(seed):
    """Seed the RNGs Keras draws default seeds from, then restore them.

    Keras 3 layers and initializers built without an explicit seed draw one
    from Python's ``random`` and from a global ``SeedGenerator``. For models
    we do not build ourselves (a user's factory, a cloned architecture) we
    seed those for the duration of the build only: Python's and NumPy's
    global RNG states and Keras' global generator are put back afterwards.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()  # noqa: NPY002 - saved to be restored
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)  # noqa: NPY002 - restored below
        with swap_global_seed_generator(seed):
            yield
    finally:
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


def run_inference(model, X):
    """``model``'s inference-mode output for X, in chunks, numpy in and out.

    ``Model.predict`` costs tens of milliseconds per call whatever the batch
    size and ``predict_on_batch`` most of a millisecond; a function compiled
    once per network costs a fraction of that. It is kept on the Keras
    model, not the estimator, so predicting leaves the estimator's
    ``__dict__`` unchanged.

    The first call on a network, when it is small (up to
    ``EAGER_FIRST_ROWS`` rows), runs eagerly instead: a network scored once
    (a cross-validation fold's) never pays for the trace, about 40 ms a
    network, more than eagerly predicting a few hundred rows.
    """
    function = stashed(model, "inference")
    if function is None:
        if len(X) <= EAGER_FIRST_ROWS and not stashed(model, "predicted"):
            stash(model, "predicted", True)
            return run_eagerly(model, X)
        function = inference_function(model)
        stash(model, "inference", function)
    return run_chunked(function, X)


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
