"""Freeze-spec parsing and application.

Depth counts the base's layers that carry weights (Dense, Conv, Embedding,
...), from the input, with nested models flattened. A normalization layer
goes with the weighted layer before it (a Conv and its BatchNormalization
freeze together); one with no weighted layer before it stands alone.
"""

from __future__ import annotations

import numbers

import keras

from ._graph import containers_and_leaves, leaves

__all__ = [
    "FreezeGroup",
    "INFERENCE_ONLY",
    "apply_freeze",
    "freezable_groups",
    "frozen_and_trained",
    "is_frozen",
    "keep_inference_only",
    "n_frozen_from_spec",
]

_NORMALIZATION = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Normalization,
)


#: layers that never train in a transfer. A trainable BatchNormalization runs
#: in training mode: it normalizes with the statistics of each batch of the
#: target's few rows and moves its moving statistics towards them, so the
#: features the network computes while fine-tuning are not the features the
#: head was solved on, nor the ones it predicts with. Measured: a Dense -> BN
#: network fine-tuned with a learning rate of 1e-12 lost 3 points of training
#: accuracy; MobileNetV2 fell from 1.0 to 0.52 (chance) after one epoch. The
#: Keras fine-tuning guide keeps BatchNormalization in inference mode for the
#: same reason; a non-trainable one does that in Keras 3.
INFERENCE_ONLY = (keras.layers.BatchNormalization,)


def keep_inference_only(layers):
    """Freeze every BatchNormalization among ``layers`` (see INFERENCE_ONLY)."""
    for layer in layers:
        if isinstance(layer, INFERENCE_ONLY):
            layer.trainable = False


class FreezeGroup:
    """One unit of freeze depth: a weighted layer and its normalization."""

    def __init__(self, layer):
        self.layer = layer
        self.layers = [layer]

    @property
    def name(self):
        return self.layer.name


def freezable_groups(base):
    """The freezable units of ``base``, from the input.

    Parameters
    ----------
    base : keras.Model
        The network below the new head.

    Returns
    -------
    groups : list of FreezeGroup
    """
    groups = []
    for layer in leaves(base):
        if not layer.weights:
            continue
        if isinstance(layer, _NORMALIZATION) and groups:
            groups[-1].layers.append(layer)
        else:
            groups.append(FreezeGroup(layer))
    return groups


def _describe(groups):
    """The base's freezable layers, for error messages."""
    n = len(groups)
    names = [g.name for g in groups]
    shown = names if n <= 12 else names[:6] + ["..."] + names[-5:]
    return f"The base has {n} freezable layers: {shown}."


def is_frozen(index, n_frozen, trained=None):
    """Whether group ``index`` stays frozen: below the prefix depth, or not
    among the surgically ``trained`` groups when they are given."""
    return index < n_frozen or (trained is not None and index not in trained)


def n_frozen_from_spec(freeze, groups):
    """How many groups ``freeze`` freezes; ``ValueError`` if it is invalid.

    Parameters
    ----------
    freeze : int or "all"
        ``k >= 0`` freezes the first k groups, ``-k`` all but the last k,
        ``"all"`` every group.
    groups : list of FreezeGroup

    Returns
    -------
    n_frozen : int
    """
    n = len(groups)
    where = _describe(groups)
    if isinstance(freeze, str):
        if freeze == "all":
            return n
        raise ValueError(
            f"freeze={freeze!r} is not understood: use 'all', 0 (fine-tune "
            f"everything), k in 0..{n} to freeze the first k layers, or -k in "
            f"-{n}..-1 to train only the last k. {where}"
        )
    if isinstance(freeze, numbers.Integral) and not isinstance(freeze, bool):
        freeze = int(freeze)
        if 0 <= freeze <= n:
            return freeze
        if -n <= freeze < 0:
            return n + freeze
        raise ValueError(
            f"freeze={freeze} is out of range: valid depths are 0..{n} (freeze "
            f"the first k) and -{n}..-1 (train only the last k), or 'all'. {where}"
        )
    # a ValueError like every other invalid freeze (bools included: True is
    # an Integral, so it passes parameter validation and lands here)
    raise ValueError(
        f"freeze must be an int or 'all', got {type(freeze).__name__} {freeze!r}: "
        f"use 'all', k in 0..{n} or -k in -{n}..-1. {where}"
    )


def _trained_index(item, groups):
    n = len(groups)
    if isinstance(item, str):
        names = [g.name for g in groups]
        if item in names:
            return names.index(item)
        raise ValueError(
            f"train_layers names {item!r}, which is not a freezable layer of the "
            f"base; give layer names or indices. {_describe(groups)}"
        )
    if isinstance(item, numbers.Integral) and not isinstance(item, bool):
        if -n <= int(item) < n:
            return int(item) % n
        raise ValueError(
            f"train_layers index {item} is out of range: use 0..{n - 1} from the "
            f"input or -{n}..-1 from the top. {_describe(groups)}"
        )
    raise ValueError(
        f"train_layers must hold layer indices or names, got "
        f"{type(item).__name__} {item!r}. {_describe(groups)}"
    )


def frozen_and_trained(freeze, train_layers, groups):
    """``(n_frozen, trained)`` for ``freeze`` or surgical ``train_layers``.

    Parameters
    ----------
    freeze : int or "all"
        See :func:`n_frozen_from_spec`; used when ``train_layers`` is None.
    train_layers : None, int, str or sequence of int or str
        Surgical fine-tuning: the only groups that train (indices from the
        input, negative from the top, or layer names).
    groups : list of FreezeGroup

    Returns
    -------
    n_frozen : int
        The frozen prefix: every group below the lowest trained one (what
        the feature cache can hold).
    trained : tuple of int or None
        The groups that train, or None when all above the prefix do.
    """
    if train_layers is None:
        return n_frozen_from_spec(freeze, groups), None
    if not (isinstance(freeze, str) and freeze == "all"):
        raise ValueError(
            f"freeze={freeze!r} and train_layers={train_layers!r} both say what "
            "trains: set one. train_layers picks the layers to fine-tune "
            "(everything else stays frozen); leave freeze='all' with it."
        )
    items = train_layers if isinstance(train_layers, list | tuple) else [train_layers]
    if not items:
        raise ValueError(
            "train_layers=[] trains no layer: use freeze='all' to fine-tune "
            f"nothing, or name the layers to train. {_describe(groups)}"
        )
    trained = tuple(sorted({_trained_index(item, groups) for item in items}))
    return trained[0], trained


def apply_freeze(base, groups, n_frozen, trained=None):
    """Make the first ``n_frozen`` groups non-trainable, the rest trainable.

    With ``trained`` (surgical fine-tuning), only those groups train.
    BatchNormalization layers stay frozen in every group, so they run in
    inference mode (Keras 3) with their pretrained statistics, scale and
    offset (see INFERENCE_ONLY). The model must be recompiled afterwards for
    the change to take effect.
    """
    # Unfreeze every layer explicitly. ``base.trainable = True`` alone is a
    # no-op when ``base.trainable`` is already True: TensorFlow's
    # AutoTrackable.__setattr__ skips assigning an identical value, so the
    # setter never reaches the sublayers. Layers frozen for the warm-up phase
    # (or frozen in the source file) then stayed frozen: with warmup_epochs
    # and freeze=0 the base never trained after the warm-up.
    for layer in containers_and_leaves(base):
        layer.trainable = True
    for index, group in enumerate(groups):
        if is_frozen(index, n_frozen, trained):
            for layer in group.layers:
                layer.trainable = False
    keep_inference_only(leaves(base))
