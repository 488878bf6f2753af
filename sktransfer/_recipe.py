"""The transfer training recipe: phases of training, through the cache.

A transfer fit trains in phases (an optional warm-up of the new head alone
on a fully frozen base, then the main phase with the ``freeze`` setting),
each through the frozen-prefix feature cache when it is valid. The network
and how to freeze it are given as plain arguments, so one recipe serves a
fit on a private copy of the whole network and one on a shared frozen
source (``_detached``).
"""

from __future__ import annotations

import dataclasses

from ._cache import plan_cache, prefix_features
from ._training import train

__all__ = ["Phases", "run_phases"]


@dataclasses.dataclass
class Phases:
    """The phase settings of a transfer fit.

    Attributes
    ----------
    warmup_epochs : int
        Epochs of the head alone first (0: no warm-up).
    epochs : int
        Epochs of the main phase.
    learning_rate : float
        Learning rate of the first phase.
    fine_tune_learning_rate : float or None
        Of the main phase after a warm-up; None means a tenth of
        ``learning_rate``.
    """

    warmup_epochs: int
    epochs: int
    learning_rate: float
    fine_tune_learning_rate: float | None = None


def _train_phase(model, X, y, w, spec, *, cache_mode, memory, **kwargs):
    """Train ``model``; through the frozen-prefix cache when it is valid.

    The cached path trains the sub-network above the cut on the prefix's
    features; it shares its layers with ``model``, which stays the whole
    network (and is what user callbacks see). Returns ``(history, cut)``.
    """
    plan = plan_cache(model, cache_mode)
    if plan is None:
        return train(model, X, y, w, spec, **kwargs), None
    features = prefix_features(plan.prefix, X, memory)
    history = train(plan.rest, features, y, w, spec, whole_network=model, **kwargs)
    return history, plan.layer_name


def run_phases(
    model, X, y, w, spec, phases, *, freeze, n_groups, n_frozen, split, seed,
    cache_mode, memory,
):  # fmt: skip
    """Train ``model`` in phases; ``(history, n_warmup_epochs, feature_cut)``.

    ``freeze(k)`` freezes the first k of the base's ``n_groups`` freeze
    groups (and makes the rest trainable); ``n_frozen`` is the main phase's
    depth. ``feature_cut`` names the layer whose output the main phase
    trained on (None: no cache).
    """
    history, learning_rate = {}, phases.learning_rate
    cache = dict(cache_mode=cache_mode, memory=memory, split=split)
    if phases.warmup_epochs:
        freeze(n_groups)
        history, _ = _train_phase(
            model, X, y, w, spec, seed=seed, epochs=phases.warmup_epochs,
            learning_rate=learning_rate, **cache,
        )  # fmt: skip
        learning_rate = (
            phases.fine_tune_learning_rate
            if phases.fine_tune_learning_rate is not None
            else phases.learning_rate / 10
        )
    freeze(n_frozen)
    tuned, cut = _train_phase(
        model, X, y, w, spec, seed=seed + 1, epochs=phases.epochs,
        learning_rate=learning_rate, **cache,
    )  # fmt: skip
    for key, values in tuned.items():
        history.setdefault(key, []).extend(values)
    # where the warm-up ends in history (early stopping may cut it short)
    n_warmup = len(history.get("loss", [])) - len(tuned.get("loss", []))
    return history, n_warmup, cut
