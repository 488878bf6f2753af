"""Compiled trainers kept across fits, so a repeated fit does not trace again.

On TensorFlow, the first ``Model.fit`` of every new network traces its
train step into a graph: about 0.7 s on a two-core machine, more than the
whole training of a 60-row table (200 Adam steps take about 0.1 s). Grid
searches, cross-validation and the probe-then-fine-tune recipe fit the very
same architecture again and again, each time on a freshly built network, so
the trace used to dominate small fits.

A *trainer* is a private copy of a network's architecture, compiled with the
same optimizer, loss and execution settings, whose traced train function
stays alive between fits. To train a network, its variables (weights and
dropout seed states) and its freshly built optimizer's state (zero moments,
step 0, the learning rate) are copied into a trainer of the same
architecture, the trainer runs ``Model.fit``, and the results are copied
back. The arithmetic is the same as fitting the network itself: same
initial values, same batches, same steps; only the trace is reused.

Only networks whose every layer is a built-in Keras layer other than
``Lambda`` are pooled (a custom layer's config may not say everything that
changes its behaviour; a Lambda's config is code), with a float learning
rate, only on TensorFlow, outside distribution strategies and without routed
``compile__*`` keywords; the pool holds at most ``MAX_TRAINERS`` trainers
(least recently used out) of at most ``MAX_PARAMS`` parameters each.
Concurrent fits (threads) each take a trainer out of the pool while they
train, so no two fits share one.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import threading

import keras

from ._backend import backend_name
from ._graph import leaves
from ._runtime import temporary_seed

__all__ = ["MAX_PARAMS", "MAX_TRAINERS", "clear", "pooled_trainer", "trainer_key"]

#: trainers kept at most (least recently used dropped first)
MAX_TRAINERS = 8
#: networks with more parameters are not pooled (memory; their trace is
#: small next to their training anyway)
MAX_PARAMS = 4_000_000

_POOL: collections.OrderedDict = collections.OrderedDict()
_LOCK = threading.Lock()
_MARK = "\x00layer"


def clear():
    """Drop every pooled trainer."""
    with _LOCK:
        _POOL.clear()


def _layer_names(config, names):
    """Every layer name in a (nested) functional config, in order."""
    for layer in config.get("layers", []):
        inner = layer.get("config", {})
        # functional configs name each entry; Sequential ones in its config
        name = layer.get("name", inner.get("name") if isinstance(inner, dict) else None)
        if isinstance(name, str):
            names.setdefault(name, len(names))
        if isinstance(inner, dict) and "layers" in inner:
            _layer_names(inner, names)
    return names


def _canonical(value, names):
    """``value`` with every layer name replaced by its position.

    Initializers and seeds are left out: they only decide initial values
    (weights, dropout seed states), which are variables copied per fit.
    """
    if isinstance(value, dict):
        return {
            k: _canonical(v, names)
            for k, v in value.items()
            if not (k.endswith("_initializer") or k == "seed")
        }
    if isinstance(value, (list, tuple)):
        return [_canonical(v, names) for v in value]
    if isinstance(value, str) and value in names:
        return f"{_MARK}{names[value]}"
    return value


def _poolable(model):
    if backend_name() != "tensorflow":
        return False
    import tensorflow as tf  # only reached on the TensorFlow backend

    if tf.distribute.has_strategy() or getattr(model, "_distribute_strategy", None):
        return False
    kind = type(model)
    if not kind.__module__.startswith("keras.") or kind.__name__ not in (
        "Functional",
        "Sequential",
    ):
        return False  # subclassed models: their config is theirs to define
    if model.count_params() > MAX_PARAMS:
        return False
    # built-in layers only, and no Lambda (its config is code)
    return all(
        type(leaf).__module__.startswith("keras.")
        and not isinstance(leaf, keras.layers.Lambda)
        for leaf in leaves(model)
    )


def trainer_key(model, optimizer, loss, steps_per_execution, compile_kwargs):
    """A digest of everything a traced train step depends on, or None.

    The architecture (layer configs, wiring, which layers train) with Keras'
    automatic layer names replaced by positions, so two builds of one
    architecture match; the optimizer's config without its learning-rate
    value (a variable, copied per fit); the loss and ``steps_per_execution``
    (baked into the trace). None where the network cannot be pooled.
    """
    if compile_kwargs or not _poolable(model):
        return None
    try:
        config = model.get_config()
        opt = dict(optimizer.get_config())
        opt.pop("name", None)  # automatic, like layer names
    except (NotImplementedError, TypeError, ValueError):
        return None
    if not isinstance(opt.get("learning_rate"), float):
        return None  # a schedule or callable: not worth a trainer of its own
    opt.pop("learning_rate")  # a variable: copied with the optimizer state
    names = _layer_names(config, {})
    config.pop("name", None)  # the model's own (automatic) name
    structure = {
        "class": type(model).__name__,
        "config": _canonical(config, names),
        "trainable": [leaf.trainable for leaf in leaves(model)],
        "optimizer": [type(optimizer).__name__, opt],
        "loss": loss,
        "steps_per_execution": int(steps_per_execution),
    }
    try:
        text = json.dumps(structure, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _copy(destination, source):
    for dst, src in zip(destination, source, strict=True):
        if tuple(dst.shape) != tuple(src.shape):
            raise ValueError(f"pooled trainer mismatch: {dst.path} vs {src.path}")
        dst.assign(src)


def _new_trainer(model, compile_settings):
    # unseeded layers draw seeds from the global RNGs while they are built;
    # whatever they draw is overwritten by the copied state, so any seed does
    with temporary_seed(0):
        trainer = keras.models.clone_model(model)
        optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    for mine, theirs in zip(leaves(trainer), leaves(model), strict=True):
        mine.trainable = theirs.trainable
    trainer.compile(optimizer=optimizer, **compile_settings)
    trainer.optimizer.build(trainer.trainable_variables)
    return trainer


@contextlib.contextmanager
def pooled_trainer(model, key, compile_settings):
    """A compiled trainer holding ``model``'s state; copied back on success.

    ``model`` is compiled, its optimizer built (fresh state);
    ``compile_settings`` are the other ``compile`` arguments it got (loss,
    execution settings), for a new trainer. Yields the
    network to call ``fit`` on: a pooled trainer loaded with ``model``'s
    variables and optimizer state, or ``model`` itself when ``key`` is
    None. After the block the trained state is copied back into ``model``
    and its optimizer, and the trainer returns to the pool.
    """
    if key is None:
        yield model
        return
    with _LOCK:
        free = _POOL.get(key)
        trainer = free.pop() if free else None
    if trainer is None:
        trainer = _new_trainer(model, compile_settings)
    _copy(trainer.variables, model.variables)
    _copy(trainer.optimizer.variables, model.optimizer.variables)
    yield trainer
    _copy(model.variables, trainer.variables)
    _copy(model.optimizer.variables, trainer.optimizer.variables)
    with _LOCK:
        _POOL.setdefault(key, []).append(trainer)
        _POOL.move_to_end(key)
        while sum(len(v) for v in _POOL.values()) > MAX_TRAINERS:
            oldest = next(iter(_POOL))
            _POOL[oldest].pop(0)
            if not _POOL[oldest]:
                del _POOL[oldest]
