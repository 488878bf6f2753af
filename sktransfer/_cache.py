"""Frozen-prefix feature cache.

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
import numpy as np
from sklearn.utils.validation import check_memory

from ._freeze import apply_freeze
from ._runtime import PREDICT_CHUNK_ELEMENTS

__all__ = [
    "CachePlan",
    "apply_freeze_sharing",
    "detach_shared",
    "graft_on_shared",
    "plan_cache",
    "prefix_features",
    "run_once",
    "shareable_cut",
]


def _leaves(layer):
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from _leaves(inner)
    else:
        yield layer


_RANDOM_LAYERS = (
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def _is_random(leaf):
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
        not leaf.trainable_weights and not _is_random(leaf) for leaf in _leaves(layer)
    )


def _clean_cuts(layers, last, output):
    """Clean cuts of a network, from ``layers[last]`` towards the input.

    Yields ``(index, tensor, rest)``: ``tensor`` is ``layers[index]``'s
    output and ``rest = keras.Model(tensor, output)`` the network above it,
    which builds only when nothing but ``tensor`` leads on to ``output`` (no
    skip connection crosses the cut); ``rest`` is None when ``tensor`` is
    ``output`` itself. Stops at the input layer.
    """
    for index in range(last, -1, -1):
        if isinstance(layers[index], keras.layers.InputLayer):
            return
        try:
            tensor = layers[index].output
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
    cuts = _clean_cuts(layers, last_static, model.outputs[0]) if has_weights else ()
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


def _signature(prefix):
    """Name-free identity of a prefix: layer types, configs and weights.

    Nested models are walked to their layers (a nested model's own config
    lists its layers' names). ``trainable`` is left out: the features are
    always computed in inference mode, where it changes nothing. One pass of
    SHA-1 over the configs and the raw weight buffers: about 0.1 s for
    MobileNetV3Small, where ``joblib.hash`` of per-layer weight copies took
    0.3-0.4 s, paid at every fit and every scoring call.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    for leaf in _leaves(prefix):
        config = leaf.get_config()
        config = {k: v for k, v in config.items() if k not in ("name", "trainable")}
        digest.update(f"{type(leaf).__name__}{sorted(config.items())!r}".encode())
    for weight in prefix.get_weights():
        digest.update(f"{weight.dtype.str}{weight.shape}".encode())
        digest.update(np.ascontiguousarray(weight).data)
    return digest.hexdigest()


def run_once(model, X):
    """``model``'s inference-mode output for X: eagerly, in chunks.

    For a network that runs once (the prefix, once per fit; the sub-models
    built to score through cached features) tracing a ``tf.function`` costs
    far more than it saves: 4-6 s for MobileNetV3Small, against about 1.3 s
    to run 1,000 32x32 images through it eagerly. ``run_inference`` (traced
    once, kept on the model) stays the path for repeated predictions.
    """
    per_row = max(1, int(np.prod(X.shape[1:])))
    chunk = max(1, PREDICT_CHUNK_ELEMENTS // per_row)
    parts = [
        keras.ops.convert_to_numpy(model(X[start : start + chunk], training=False))
        for start in range(0, len(X), chunk)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _compute(signature, X, prefix):
    return run_once(prefix, X)


def prefix_features(prefix, X, memory=None):
    """``prefix``'s output for X, through ``memory`` when given."""
    memory = check_memory(memory)
    if getattr(memory, "location", None) is None:
        return run_once(prefix, X)
    cached = memory.cache(_compute, ignore=["prefix"])
    return cached(_signature(prefix), X, prefix=prefix)


# -------------------------------------------------- sharing a frozen source
# With ``memory``, fits in one process build their network on the layers of
# one frozen private copy of the source (``_sources.frozen_source``) instead
# of copying the whole source each time: about 2.5-4 s per fit for
# MobileNetV3Small, the largest cost left on a grid-search candidate once its
# features come from the cache. Only a *static* first part is shared: layers
# that this fit's freeze setting freezes (or that hold no weights), without
# training-time randomness, up to a clean cut. Anything above the cut, which
# the fit may train, is copied (``clone_model``) as before. Why it is safe:
#
# * shared layers are non-trainable from the frozen source's creation on,
#   and no fit ever sets them trainable: ``apply_freeze_sharing`` skips them
#   (``apply_freeze`` would unfreeze and refreeze them, and another thread
#   could trace a train step in between). So no optimizer ever updates them,
#   and frozen BatchNormalization runs in inference mode;
# * two fitted estimators therefore share no trainable layer, and none of
#   their training reaches another's network or the user's source;
# * the frozen source is checked (all layers frozen, weights unchanged)
#   before every reuse and replaced when something changed it, e.g. a user
#   who made a fitted ``model_`` trainable and trained it in Keras;
# * ``model_`` stays the whole network and predicts exactly as a private
#   copy would; pickling or saving it writes an independent network.
#
# Layers with training-time randomness above the cut disable sharing, so
# that their seeds are drawn exactly as in a full copy of the source.


def shareable_cut(base, groups, n_frozen, source):
    """Where ``base`` can be split into a shared static part and the rest.

    Parameters
    ----------
    base : keras.Model
        The cut network, built on the frozen source's layers.
    groups : list of FreezeGroup
        ``base``'s freeze units.
    n_frozen : int
        How many of them this fit freezes (in its main phase).
    source : keras.Model
        The frozen source. The answer is kept on it: building a sub-model
        from an intermediate tensor adds nodes to the layers it spans, so
        it is built once per source and split, not once per fit.

    Returns
    -------
    split : tuple ``(index, tensor, upper)`` or None
        ``base.layers[: index + 1]`` are shared, ``tensor`` is their output
        and ``upper`` the sub-model from it to ``base``'s output (None when
        the whole base is shared). None when nothing can be shared.
    """
    splits = source.__dict__.get("_sktransfer_splits")
    if splits is None:
        splits = {}
        object.__setattr__(source, "_sktransfer_splits", splits)
    key = (id(base.outputs[0]), n_frozen)
    if key not in splits:
        splits[key] = _find_shareable_cut(base, groups, n_frozen)
    return splits[key]


def _find_shareable_cut(base, groups, n_frozen):
    frozen = {id(layer) for group in groups[:n_frozen] for layer in group.layers}

    def static(layer):
        return all(
            (not leaf.weights or id(leaf) in frozen) and not _is_random(leaf)
            for leaf in _leaves(layer)
        )

    layers = base.layers
    last = -1
    for index, layer in enumerate(layers):
        if not static(layer):
            break
        last = index
    for index, tensor, upper in _clean_cuts(layers, last, base.outputs[0]):
        if not any(layer.weights for layer in layers[: index + 1]):
            return None  # shallower cuts hold no weights either
        if upper is not None and any(_is_random(leaf) for leaf in _leaves(upper)):
            return None  # keep random layers' seeds as in a full copy
        return index, tensor, upper
    return None


def graft_on_shared(base, split):
    """A network on ``base``'s shared layers, with private copies above them.

    The new network has ``base``'s input and layers up to the split and
    copies of the rest, with the same weights; it records the ids of its
    shared layers (containers and leaves) for :func:`apply_freeze_sharing`.
    Call it under the fit's ``temporary_seed``. None when the layers above
    the split cannot be copied this way (the caller copies the source).
    """
    from keras.src.saving.serialization_lib import SafeModeScope

    index, tensor, upper = split
    if upper is None:
        output = tensor
    else:
        # What ``clone_model(upper)`` does, but wired to ``tensor`` itself:
        # ``clone_model`` would wrap the result in a model on a new input.
        # ``upper`` is built from an intermediate tensor, so Keras stood a
        # placeholder input in for it; running its graph from ``tensor``
        # calls a fresh copy of each layer (same config) on the shared
        # output. Lambda layers: see ``_sources.copy_model``.
        copies = {}

        def copy_layer(layer):
            if id(layer) not in copies:
                copies[id(layer)] = (
                    layer,
                    layer.__class__.from_config(layer.get_config()),
                )
            return copies[id(layer)][1]

        try:
            with SafeModeScope(safe_mode=False):
                output = upper._run_through_graph(tensor, operation_fn=copy_layer)
            for layer, copy in copies.values():
                copy.set_weights(layer.get_weights())
        except Exception:  # anything unusual: fall back to a full copy
            return None
    network = keras.Model(base.inputs, output, name=base.name)
    # a Sequential source lists no InputLayer among its layers: count the
    # network's own input layers (the source's) as shared too
    shared = frozenset(
        [
            id(item)
            for layer in base.layers[: index + 1]
            for item in _containers_and_leaves(layer)
        ]
        + [
            id(layer)
            for layer in network.layers
            if isinstance(layer, keras.layers.InputLayer)
        ]
    )
    # kept on the object, not as a tracked Keras attribute
    object.__setattr__(network, "_sktransfer_shared", shared)
    return network


def detach_shared(source):
    """Forget the links from ``source``'s layers to layers built on them.

    Calling a new layer on a tensor of the frozen source appends a node to
    its producer's ``_outbound_nodes``; Keras only keeps those as a record
    (networks are traced through inbound nodes), and left there they would
    keep every fit's private layers alive as long as the frozen source.
    """
    own = {id(layer) for layer in source.layers}
    for layer in source.layers:
        nodes = layer._outbound_nodes
        if any(id(node.operation) not in own for node in nodes):
            nodes[:] = [node for node in nodes if id(node.operation) in own]


def _containers_and_leaves(layer):
    yield layer
    if isinstance(layer, keras.Model):
        for inner in layer.layers:
            yield from _containers_and_leaves(inner)


def apply_freeze_sharing(base, groups, n_frozen):
    """``apply_freeze`` that never touches shared layers (see above).

    For a ``base`` from :func:`graft_on_shared`; any other network goes to
    ``apply_freeze``. Every private layer is unfrozen explicitly, then the
    private layers of the first ``n_frozen`` groups are frozen; the shared
    layers are frozen already, and ``base`` itself (which contains them) is
    not assigned to.
    """
    shared = base.__dict__.get("_sktransfer_shared")
    if not shared:
        return apply_freeze(base, groups, n_frozen)
    for layer in base.layers:
        if id(layer) not in shared:
            for item in _containers_and_leaves(layer):
                item.trainable = True
    for group in groups[:n_frozen]:
        for layer in group.layers:
            if id(layer) not in shared:
                layer.trainable = False
    return None
