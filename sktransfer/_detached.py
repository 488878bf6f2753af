"""Fits that train only the part above a shared frozen prefix.

With ``memory``, grid-search candidates and folds that share a frozen base
read its features from the cache. Copying the whole source per fit (2.5-4 s
for MobileNetV3Small) was then most of what a candidate still paid. Such a
fit instead:

1. runs the frozen prefix on the process's frozen source (``_sources``),
   through the cache, and trains a *private* network above it: copies of
   the layers between the cut and the base's output, on a new input, plus
   the new head. No layer of it is shared with anything;
2. keeps a :class:`DetachedNetwork`: the trained part, the read-only source
   snapshot and what it needs to build the whole network;
3. builds the whole network (a private copy of the prefix plus the trained
   part) only when something needs it: ``model_``, saving, pickling, or
   predicting when the frozen source has changed or was dropped. Scoring
   held-out rows of a grid search never pays for it.

So no two fitted estimators share a mutable Keras object, and a user who
trains one estimator's ``model_`` in Keras changes no other's predictions.
"""

from __future__ import annotations

import threading

import keras

from ._cache import clean_cuts, is_random, kept_signature, prefix_features
from ._freeze import (
    apply_freeze,
    freezable_groups,
    frozen_and_trained,
    is_frozen,
    keep_inference_only,
)
from ._graph import leaves
from ._keras_compat import run_through_graph, stash, stashed
from ._network import add_head, cut_network
from ._validation import check_network_input

__all__ = ["DetachedModelMixin", "DetachedNetwork", "DetachedPlan", "plan_detached"]


class DetachedPlan:
    """Where a fit on a frozen source splits, and its frozen prefix."""

    def __init__(self, frozen, view, groups, depth, index, upper, prefix):
        self.frozen = frozen
        self.view = view
        self.groups = groups
        self.n_frozen, self.trained = depth
        self.layer_name = view.layers[index].name
        self.upper = upper
        self.prefix = prefix
        self.signature = kept_signature(prefix)


def _static_split(view, groups, n_frozen):
    """``(index, tensor, upper)`` of the deepest shareable cut, or None."""
    frozen = {id(layer) for group in groups[:n_frozen] for layer in group.layers}

    def static(layer):
        return all(
            (not leaf.weights or id(leaf) in frozen) and not is_random(leaf)
            for leaf in leaves(layer)
        )

    layers = view.layers
    last = -1
    for index, layer in enumerate(layers):
        if not static(layer):
            break
        last = index
    for index, tensor, upper in clean_cuts(view, last):
        if not any(layer.weights for layer in layers[: index + 1]):
            return None  # shallower cuts hold no weights either
        if upper is not None and any(is_random(leaf) for leaf in leaves(upper)):
            return None  # random layers above: seeds as in a full copy
        return index, tensor, upper
    return None


def plan_detached(frozen, cut, freeze, input_shape, train_layers=None):
    """A :class:`DetachedPlan` on ``frozen`` (a ``FrozenSource``), or None.

    Validates ``cut``, ``freeze`` (or surgical ``train_layers``: the
    prefix below the lowest trained layer is what is shared) and the input
    shape exactly as a full
    build does. The views, splits and prefixes are kept on the frozen
    source: building a sub-model from an intermediate tensor adds nodes to
    the layers it spans, so each is built once per source, not per fit.
    """
    source = frozen.model
    views = stashed(source, "views")
    if views is None:
        views = {}
        stash(source, "views", views)
    key = repr(cut)
    if key not in views:
        view = cut_network(source, cut, input_shape)
        views[key] = (view, freezable_groups(view), {})
    view, groups, splits = views[key]
    check_network_input(view, input_shape, "the pretrained network")
    n_frozen, trained = frozen_and_trained(freeze, train_layers, groups)
    if n_frozen not in splits:
        split = _static_split(view, groups, n_frozen)
        prefix = None
        if split is not None:
            prefix = keras.Model(view.inputs[0], split[1])
        splits[n_frozen] = (split, prefix)
    split, prefix = splits[n_frozen]
    if split is None:
        return None
    depth = (n_frozen, trained)
    return DetachedPlan(frozen, view, groups, depth, split[0], split[2], prefix)


def build_trainable_part(plan, n_classes, head):
    """Private copies of the layers above the prefix, plus the new head.

    Returns ``(network, frozen_leaves)``: the network takes the prefix's
    features as input; ``frozen_leaves`` maps a group count ``k`` to the
    copied leaves that ``freeze=k`` keeps fixed (see :func:`freeze_part`).
    """
    features = keras.Input(shape=plan.prefix.outputs[0].shape[1:])
    originals = {}

    def copy_layer(layer):
        if id(layer) not in originals:
            copy = layer.__class__.from_config(layer.get_config())
            originals[id(layer)] = (layer, copy)
        return originals[id(layer)][1]

    output = features
    if plan.upper is not None:
        output = run_through_graph(plan.upper, features, copy_layer)
        for layer, copy in originals.values():
            copy.set_weights(layer.get_weights())
    copies = {}
    for layer, copy in originals.values():
        copies.update(zip(map(id, leaves(layer)), leaves(copy)))
    base = keras.Model(features, output)
    reserved = {layer.name for layer in plan.view.layers}
    network = add_head(base, n_classes, reserved_names=reserved, **head)
    group_leaves = [
        [copies[id(layer)] for layer in group.layers if id(layer) in copies]
        for group in plan.groups
    ]
    return network, group_leaves


def freeze_part(network, group_leaves, n_frozen, trained=None):
    """Freeze the copied leaves of the first ``n_frozen`` groups, train the rest.

    With ``trained`` (surgical fine-tuning), only those groups train.
    """
    for layer in network.layers:
        layer.trainable = True
        for leaf in leaves(layer):
            leaf.trainable = True
    for index, group in enumerate(group_leaves):
        if is_frozen(index, n_frozen, trained):
            for leaf in group:
                leaf.trainable = False
    keep_inference_only(leaves(network))


class DetachedNetwork:
    """A fitted network kept as its trained part until the whole is needed.

    Parameters
    ----------
    part : keras.Model
        The trained network above the prefix (features in, probabilities out).
    plan : DetachedPlan
        Where the prefix ends; its frozen source serves predictions while it
        is unchanged.
    build : dict
        ``cut``, ``input_shape``, ``n_classes``, ``head`` (the keywords of
        ``add_head``) and ``n_frozen``: what building the whole network needs.
    """

    def __init__(self, part, plan, build):
        self.part = part
        self.snapshot = plan.frozen.snapshot
        self.layer_name = plan.layer_name
        self.signature = plan.signature
        self.build = dict(build)
        self._plan = plan
        self._whole = None
        self._lock = threading.Lock()

    @property
    def materialized(self):
        return self._whole is not None

    def network(self):
        """The whole network: a private prefix copy plus the trained part."""
        with self._lock:
            if self._whole is None:
                self._whole = self._materialize()
                self._plan = None  # the frozen source is no longer needed
        return self._whole

    def _materialize(self):
        build = self.build
        source = self.snapshot.build()
        base = cut_network(source, build["cut"], build["input_shape"])
        groups = freezable_groups(base)
        whole = add_head(base, build["n_classes"], **build["head"])
        apply_freeze(base, groups, build["n_frozen"], build.get("trained"))
        for layer in self.part.layers:
            if not isinstance(layer, keras.layers.InputLayer):
                whole.get_layer(layer.name).set_weights(layer.get_weights())
        return whole

    def forward(self, X, memory):
        """Predictions through cached features (None: use :meth:`network`).

        The frozen source is immutable (nothing outside this package holds
        it), so it serves predictions until the whole network exists; from
        then on, the whole network does, as a user may change it.
        """
        plan = self._plan
        if plan is None:
            return None
        features = prefix_features(plan.prefix, X, memory, plan.signature)
        return keras.ops.convert_to_numpy(self.part(features, training=False))

    def __getstate__(self):
        raise TypeError(
            "DetachedNetwork is not pickled: the estimator pickles its whole "
            "network instead."
        )


class DetachedModelMixin:
    """``model_`` for estimators whose fit may leave a :class:`DetachedNetwork`.

    ``model_`` is built on first use after a fit on a shared frozen source;
    otherwise it is the network the fit trained. Pickling builds it.
    """

    @property
    def model_(self):
        model = self.__dict__.get("_model")
        if model is not None:
            return model
        detached = self.__dict__.get("_detached")
        if detached is None:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute 'model_'"
            )
        return detached.network()

    @model_.setter
    def model_(self, model):
        self._model = model
        self._detached = None

    def __getstate__(self):
        state = super().__getstate__()
        detached = state.get("_detached")
        if detached is not None:  # pickle the whole network, built now
            state["_model"] = detached.network()
            state["_detached"] = None
        return state
