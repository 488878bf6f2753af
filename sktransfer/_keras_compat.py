"""Every use of Keras and TensorFlow internals, in one place.

sktransfer relies on a few things Keras does not export publicly. Each is
wrapped here, so a Keras upgrade that moves one breaks this module (and
``tests/test_layers.py``, which pins them) rather than code all over the
package:

* ``SafeModeScope``: copying a network the caller already holds in memory
  (a ``Lambda`` layer's code is theirs, already loaded) needs Keras' safe
  mode off for that copy only; files are always loaded with it on.
* the global seed generator and Python/NumPy RNG states that Keras draws
  default seeds from (``swap_global_seed_generator``);
* ``Functional._run_through_graph`` to re-run a sub-graph on another tensor;
* attributes kept on a Keras object without Keras tracking them (``stash``);
* the state of the seed generators of random layers (``reseed_layers``);
* an optimizer's learning rate as it was given: a float, a schedule or a
  callable (``own_learning_rate``; the public property evaluates it);
* Keras' lazy handle on TensorFlow, which its serialization consults even
  on JAX and PyTorch (``without_tensorflow``).
"""

from __future__ import annotations

import contextlib
import sys

import keras

__all__ = [
    "MIXING_STRATEGIES",
    "layer_output",
    "own_learning_rate",
    "read_weights",
    "reseed_layers",
    "run_through_graph",
    "safe_mode_off",
    "stash",
    "stashed",
    "swap_global_seed_generator",
    "tensorflow_unused",
    "without_tensorflow",
]

#: the message Keras/TensorFlow raise when variables of two strategies meet
MIXING_STRATEGIES = "Mixing different tf.distribute"


def safe_mode_off():
    """A context in which Keras deserializes ``Lambda`` code (thread-local)."""
    from keras.src.saving.serialization_lib import SafeModeScope

    return SafeModeScope(safe_mode=False)


@contextlib.contextmanager
def swap_global_seed_generator(seed):
    """Let Keras draw default seeds from a generator seeded with ``seed``."""
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator

    attr = seed_generator.GLOBAL_SEED_GENERATOR
    old = global_state.get_global_attribute(attr)
    global_state.set_global_attribute(attr, seed_generator.SeedGenerator(seed % 2**31))
    try:
        yield
    finally:
        global_state.set_global_attribute(attr, old)


def run_through_graph(model, tensor, operation_fn):
    """Run the graph of ``model`` (built on an intermediate tensor) on ``tensor``.

    ``operation_fn(layer)`` returns the operation to call in place of each
    layer (a copy, to build a new network wired to ``tensor``).
    """
    return model._run_through_graph(tensor, operation_fn=operation_fn)


def stash(obj, name, value):
    """Keep ``value`` on a Keras object without Keras tracking it."""
    object.__setattr__(obj, f"_sktransfer_{name}", value)


def stashed(obj, name, default=None):
    """What :func:`stash` kept on ``obj`` (``default`` when nothing)."""
    return obj.__dict__.get(f"_sktransfer_{name}", default)


def read_weights(model):
    """``model.get_weights()``, also under another strategy's scope.

    Variables created under one ``tf.distribute`` strategy (a source trained
    with ``distribution_strategy=A``) cannot be read inside another's scope
    (fitting with ``distribution_strategy=B``). A mirrored variable's first
    component is a plain variable holding the same value, readable anywhere.
    """
    try:
        return model.get_weights()
    except RuntimeError:
        return [
            keras.ops.convert_to_numpy(getattr(v.value, "values", (v.value,))[0])
            for v in model.weights
        ]


def own_learning_rate(optimizer):
    """``optimizer``'s learning rate as given: a float, a schedule or a callable.

    The public ``learning_rate`` property evaluates a schedule at the
    current step; this returns the schedule (or callable) itself, and a
    constant learning rate as a Python float.
    """
    value = optimizer._learning_rate
    if isinstance(value, keras.Variable):
        return float(keras.ops.convert_to_numpy(value))
    return value


def reseed_layers(layers, seed):
    """Restart the seed generators of ``layers`` (Dropout, noise...) from ``seed``.

    A random layer built without an explicit seed draws its seed when it is
    created, so a copy's seed depends on how many draws came before it (a
    first load of a file parses it, later loads copy a kept model). The
    k-th generator, in layer order, restarts from ``seed + k``.
    """
    generators = [
        value
        for layer in layers
        for value in vars(layer).values()
        if isinstance(value, keras.random.SeedGenerator)
    ]
    for k, generator in enumerate(generators):
        state = generator.state
        state.assign(
            keras.ops.convert_to_numpy(
                keras.ops.cast([(seed + k) % 2**31, 0], state.dtype)
            )
        )


def tensorflow_unused():
    """Whether Keras runs on another backend and TensorFlow is not loaded.

    Then no TensorFlow object can exist, and loading TensorFlow (seconds,
    hundreds of MiB) would be for nothing.
    """
    return keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules


@contextlib.contextmanager
def without_tensorflow():
    """Keep Keras from importing TensorFlow on another backend, while inside.

    Keras' serialization asks ``tf.available`` (which imports TensorFlow
    when it is installed) to recognise TensorFlow types, even on JAX or
    PyTorch. When Keras runs on another backend and TensorFlow is not
    loaded, no TensorFlow object can exist, so the answer "unavailable" is
    exact; the handle's previous state is put back afterwards.
    """
    if not tensorflow_unused():
        yield
        return
    from keras.src.utils import module_utils

    handle = module_utils.tensorflow
    saved = handle._available
    handle._available = False
    try:
        yield
    finally:
        handle._available = saved


def layer_output(model, layer):
    """The tensor ``layer`` outputs inside ``model``'s graph.

    ``layer.output`` is the output of the layer's first call. For a nested
    model (the Keras transfer recipe's ``base = MobileNetV3Small(...)``
    called on a new ``keras.Input``) that first call is the nested model's
    own construction, so its ``output`` belongs to the inner graph and is not
    connected to ``model``'s input: a cut there failed with "Output ... is
    not connected to inputs". The node of ``model``'s own graph that calls
    ``layer`` holds the right tensor.
    """
    for nodes in getattr(model, "_nodes_by_depth", {}).values():
        for node in nodes:
            if node.operation is layer:
                outputs = node.outputs
                return outputs[0] if len(outputs) == 1 else outputs
    return layer.output
