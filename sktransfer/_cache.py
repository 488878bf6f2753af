"""The frozen-prefix feature cache.

When the first part of a network is frozen and deterministic, its output is
the same every epoch: compute it once, train only the rest on it. A prefix
qualifies when it is a *clean cut* (the rest of the network sees the input
only through one tensor) and holds no training-time randomness (Dropout,
noise or augmentation layers, BatchNormalization that still trains). With a
``joblib.Memory`` the features also persist on disk, keyed by the prefix's
architecture and weights (never by Keras' automatic layer names, which change
on every build) and by the input rows, so grid-search candidates and folds
that share a frozen base compute them once, across processes too.
"""

from __future__ import annotations

import hashlib
import inspect

import keras
from sklearn.utils.validation import check_memory

from ._graph import leaves, run_eagerly, weights_digest
from ._keras_compat import layer_output, stash, stashed, without_tensorflow

__all__ = [
    "CachePlan",
    "clean_cuts",
    "is_random",
    "kept_signature",
    "plan_cache",
    "prefix_features",
    "prefix_signature",
]

_RANDOM_LAYERS = (
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def is_random(leaf):
    """Whether ``leaf`` behaves randomly (or unknowably) in training mode."""
    if isinstance(leaf, _RANDOM_LAYERS) or type(leaf).__name__.startswith("Random"):
        return True  # dropout, noise and augmentation (RandomFlip, ...)
    if type(leaf).__module__.startswith("keras."):
        return False  # built-in layers: only the ones above are random
    try:  # a custom layer that looks at `training` may do anything with it
        return "training" in inspect.signature(leaf.call).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic callables
        return True


def _is_static(layer):
    """No trainable weights and no training-time randomness.

    A frozen BatchNormalization has no trainable weights and runs in
    inference mode, so it counts as static.
    """
    return all(
        not leaf.trainable_weights and not is_random(leaf) for leaf in leaves(layer)
    )


def clean_cuts(model, last):
    """Clean cuts of ``model``, from ``model.layers[last]`` towards the input.

    Yields ``(index, tensor, rest)``: ``tensor`` is ``layers[index]``'s
    output in ``model``'s graph (a nested model's included) and
    ``rest = keras.Model(tensor, output)`` the network above it,
    which builds only when nothing but ``tensor`` leads on to ``output`` (no
    skip connection crosses the cut); ``rest`` is None when ``tensor`` is
    ``output`` itself. Stops at the input layer.
    """
    layers, output = model.layers, model.outputs[0]
    for index in range(last, -1, -1):
        if isinstance(layers[index], keras.layers.InputLayer):
            return
        try:
            tensor = layer_output(model, layers[index])
        except (AttributeError, ValueError):  # a shared layer: several outputs
            continue
        if not isinstance(tensor, keras.KerasTensor):
            continue
        if tensor is output:
            yield index, tensor, None
            continue
        try:
            rest = keras.Model(tensor, output)
        except ValueError:  # not a clean cut: a skip connection crosses it
            continue
        yield index, tensor, rest


class CachePlan:
    """A split of ``model`` into a static ``prefix`` and a trainable ``rest``."""

    def __init__(self, prefix, rest, layer_name):
        self.prefix = prefix
        self.rest = rest
        self.layer_name = layer_name


def plan_cache(model, mode):
    """Find the deepest clean, static cut of ``model``.

    Parameters
    ----------
    model : keras.Model
        The whole network, with trainability already set.
    mode : {"auto", True, False}
        ``True`` raises a ``ValueError`` when no valid cut exists.

    Returns
    -------
    plan : CachePlan or None
    """
    if mode is False:
        return None
    layers = model.layers
    last_static = -1
    for index, layer in enumerate(layers):
        if not isinstance(layer, keras.layers.InputLayer) and not _is_static(layer):
            break
        last_static = index
    has_weights = any(layer.weights for layer in layers[: last_static + 1])
    cuts = clean_cuts(model, last_static) if has_weights else ()
    for index, tensor, rest in cuts:
        if rest is None:  # the whole network is static: nothing to train
            continue
        # one input tensor, not a list of one: calling a model built on a
        # list with an array warns about the input structure
        prefix = keras.Model(model.inputs[0], tensor)
        return CachePlan(prefix, rest, layers[index].name)
    if mode is True:
        raise ValueError(
            "cache_features=True, but no frozen part of the network can be "
            "cached: it needs at least one frozen layer with weights at the "
            "input side, no Dropout/noise/augmentation or training "
            "BatchNormalization in it, and a single tensor leading on. Use "
            "cache_features='auto' (caches when valid) or freeze more layers."
        )
    return None


def prefix_signature(prefix):
    """Name-free identity of a prefix: layer types, configs, wiring, weights.

    Nested models are walked to their layers (a nested model's own config
    lists its layers' names). ``trainable`` is left out: the features are
    always computed in inference mode, where it changes nothing. The shapes
    each layer reads stand in for the wiring: the "scores" and "multi" cuts
    of one source hold the very same layers, and only what their
    Concatenate reads tells them apart.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    for leaf in leaves(prefix):
        with without_tensorflow():
            config = leaf.get_config()
        config = {k: v for k, v in config.items() if k not in ("name", "trainable")}
        digest.update(f"{type(leaf).__name__}{sorted(config.items())!r}".encode())
        digest.update(repr(_input_shapes(leaf)).encode())
    digest.update(repr([tuple(t.shape) for t in prefix.outputs]).encode())
    return weights_digest(prefix.get_weights(), digest)


def kept_signature(prefix):
    """:func:`prefix_signature`, hashed once and kept on the prefix."""
    signature = stashed(prefix, "signature")
    if signature is None:
        signature = prefix_signature(prefix)
        stash(prefix, "signature", signature)
    return signature


def _input_shapes(layer):
    """The shapes ``layer`` reads (None where it is called more than once)."""
    try:
        return keras.tree.map_structure(lambda t: tuple(t.shape), layer.input)
    except (AttributeError, ValueError):
        return None


def _compute(signature, X, prefix):
    return run_eagerly(prefix, X)


def prefix_features(prefix, X, memory=None, signature=None):
    """``prefix``'s output for X, through ``memory`` when given.

    ``signature`` (from :func:`prefix_signature`) may be passed when known,
    to skip hashing the prefix's weights again.
    """
    memory = check_memory(memory)
    if getattr(memory, "location", None) is None:
        return run_eagerly(prefix, X)
    if signature is None:
        signature = prefix_signature(prefix)
    cached = memory.cache(_compute, ignore=["prefix"])
    return cached(signature, X, prefix=prefix)
