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

import keras
import numpy as np
from sklearn.utils.validation import check_memory

from ._cache import plan_cache, prefix_features
from ._probe import fit_probe
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
        Of the main phase after a warm-up or the probe (the estimator
        decides it; None: a tenth of ``learning_rate``).
    probe : bool
        Solve the output layer as a linear probe first (``_probe``); then
        no warm-up runs, and with the whole base frozen no Keras training.
    blocks : list of int or None
        Widths of the feature blocks the head reads (for the probe).
    probe_memory : None, str or joblib.Memory
        Where solved probes are kept: a probe is a function of the
        features, labels and weights alone, so the candidates of a grid
        over ``freeze`` that share a cut and a fold (the probe, then LP-FT
        at several depths) solve it once.
    """

    warmup_epochs: int
    epochs: int
    learning_rate: float
    fine_tune_learning_rate: float | None = None
    probe: bool = False
    blocks: list | None = None
    probe_memory: object = None


def solve_head(model, X, y, w, *, blocks, seed, memory, probe_memory=None):
    """Set ``model``'s output layer to the linear probe on its input features.

    The features are what the output layer reads, in inference mode (the
    network as it stands: frozen or not, before any fine-tuning); with
    ``memory`` they are cached like any frozen prefix's, and with
    ``probe_memory`` the solved probe too. Returns the chosen C.
    """
    head = model.layers[-1]
    below = keras.Model(model.inputs[0], head.input)
    features = prefix_features(below, X, memory)
    solve = check_memory(probe_memory).cache(fit_probe)
    probe = solve(features, y, sample_weight=w, blocks=blocks, seed=seed)
    head.set_weights([probe.kernel, probe.bias])
    return probe.C


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
    if phases.probe:
        # LP-FT (Kumar et al., ICLR 2022): a solved head, not a random one,
        # is what fine-tuning starts from, so the first steps do not distort
        # the pretrained features to fit a random head; it replaces the
        # warm-up (measured: a warm-up then freeze=0 on 30 rows scored at
        # chance where no warm-up scored 0.80)
        # solved on the training part of an early-stopping split: the
        # held-out rows judge the fine-tuning, so the head must not have
        # seen them (unless a class would be missing from the rest)
        rows, held_out = split
        if held_out is None or len(np.unique(y[rows])) < len(np.unique(y)):
            rows = slice(None)  # every row, without a copy
        solve_head(
            model, X[rows], y[rows], None if w is None else w[rows],
            blocks=phases.blocks, seed=seed, memory=memory,
            probe_memory=phases.probe_memory,
        )  # fmt: skip
        if n_frozen >= n_groups:
            freeze(n_frozen)
            return {}, 0, None  # the head is solved; nothing else trains
    elif phases.warmup_epochs:
        freeze(n_groups)
        # epoch by epoch: n_warmup_epochs_ counts the warm-up's entries
        history, _ = _train_phase(
            model, X, y, w, spec, seed=seed, epochs=phases.warmup_epochs,
            learning_rate=learning_rate, chunked=False, **cache,
        )  # fmt: skip
    if phases.probe or phases.warmup_epochs:
        # the head is trained: fine-tune gently (the estimator picks the
        # rate; see TransferClassifier.fine_tune_learning_rate)
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
