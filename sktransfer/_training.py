"""The training loop, as functions of plain arguments.

Nothing here reads an estimator: :class:`TrainSpec` carries what the
estimator's parameters decided (optimizer factory, budgets, callbacks,
routed ``compile``/``fit`` keywords), so the loop is testable on its own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import keras
import numpy as np
from sklearn.model_selection import train_test_split

from ._backend import compile_defaults, training_data
from ._pool import pooled_trainer, trainer_key

__all__ = [
    "MIN_VALIDATION_SAMPLES",
    "TrainSpec",
    "check_fit_kwargs",
    "WholeNetworkCallback",
    "compile_model",
    "history_entries",
    "train",
    "validation_split",
]

#: validation sets smaller than this make early stopping a coin toss
MIN_VALIDATION_SAMPLES = 20

#: at most this many history entries when epochs run in chunks (see
#: :func:`history_entries`)
MAX_HISTORY_ENTRIES = 10

#: at most this many optimizer steps per compiled call
MAX_STEPS_PER_EXECUTION = 256


@dataclasses.dataclass
class TrainSpec:
    """How to train, decided once per fit from the estimator's parameters.

    Attributes
    ----------
    make_optimizer : callable
        ``make_optimizer(learning_rate)`` returns a new Keras optimizer.
    n_classes : int
        Number of classes (picks the loss for a one-unit output).
    batch_size : int
    early_stopping : bool
    validation_split : float
    patience : int
    callbacks : list of keras.callbacks.Callback
        The user's callbacks.
    verbose : int
    compile_kwargs, fit_kwargs : dict
        Routed ``compile__*`` and ``fit__*`` keywords.
    """

    make_optimizer: Callable
    n_classes: int
    batch_size: int = 32
    early_stopping: bool = True
    validation_split: float = 0.1
    patience: int = 10
    callbacks: list = dataclasses.field(default_factory=list)
    verbose: int = 0
    compile_kwargs: dict = dataclasses.field(default_factory=dict)
    fit_kwargs: dict = dataclasses.field(default_factory=dict)


#: ``Model.fit`` arguments the loop sets itself -> the parameter to use instead
_OWN_FIT_ARGUMENTS = {
    "x": "the X passed to fit",
    "y": "the y passed to fit",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "steps_per_epoch": "batch_size and epochs",
    "callbacks": "callbacks",
    "validation_data": "early_stopping and validation_split",
    "validation_split": "validation_split",
    "shuffle": "random_state (the loop shuffles, seeded)",
    "sample_weight": "fit(X, y, sample_weight=...)",
    "class_weight": "class_weight",
}


def check_fit_kwargs(fit_kwargs):
    """Raise ``ValueError`` for a ``fit__*`` keyword the loop sets itself.

    Checked before any training, so a misrouted keyword does not surface
    as a ``TypeError`` from inside Keras (``fit__verbose`` is allowed: it
    overrides ``verbose``).
    """
    clashes = sorted(set(fit_kwargs) & set(_OWN_FIT_ARGUMENTS))
    if clashes:
        fixes = "; ".join(f"fit__{k}: use {_OWN_FIT_ARGUMENTS[k]}" for k in clashes)
        raise ValueError(
            f"fit__{clashes[0]} cannot be routed to Keras' Model.fit: the "
            f"estimator sets it from its own parameters ({fixes})."
        )


def validation_split(y, *, early_stopping, fraction, seed):
    """Indices ``(train, validation or None)`` for early stopping.

    The split is stratified and seeded. Validation sets under
    ``MIN_VALIDATION_SAMPLES`` rows (or without room for every class) would
    stop runs at chance, so small data trains on everything for the full
    budget instead.
    """
    n = len(y)
    if not early_stopping or fraction == 0:
        return np.arange(n), None
    n_val = int(math.ceil(n * fraction))
    counts = np.bincount(y)
    n_classes = np.count_nonzero(counts)
    if n_val < max(MIN_VALIDATION_SAMPLES, n_classes) or n - n_val < n_classes:
        return np.arange(n), None
    stratify = y if counts[counts > 0].min() >= 2 else None
    train, val = train_test_split(
        np.arange(n), test_size=n_val, stratify=stratify, random_state=seed
    )
    return np.sort(train), np.sort(val)


def history_entries(epochs):
    """How many history entries ``epochs`` run in when chunked.

    The largest divisor of ``epochs`` up to ``MAX_HISTORY_ENTRIES``: every
    entry covers the same whole number of epochs (200 epochs: 10 entries of
    20; 30 epochs: 10 of 3; 12 epochs: 6 of 2; 7 epochs: 7 of 1). Each
    entry costs a return to Keras' Python loop, about 4-5 ms (measured: a
    60-row fit of the default network took 0.09 s less with 10 entries
    than with 20).
    """
    return max(
        d for d in range(1, min(epochs, MAX_HISTORY_ENTRIES) + 1) if epochs % d == 0
    )


def _loss(model, n_classes):
    n_outputs = model.outputs[0].shape[-1] if model.outputs else None
    if n_outputs == 1 and n_classes == 2:
        return "binary_crossentropy"
    return "sparse_categorical_crossentropy"


def compile_model(model, optimizer, n_classes, compile_kwargs, steps_per_execution):
    """Compile with ``optimizer`` built on the trainable variables at once.

    Building the optimizer right away (instead of lazily inside the first
    traced step) avoids leaving traced functions behind after every fit.
    ``steps_per_execution`` (what TensorFlow should run per compiled call)
    and the backend pick the execution settings
    (``_backend.compile_defaults``); ``compile_kwargs`` wins. Returns the
    ``compile`` arguments other than the optimizer (what a pooled trainer
    of the same network is compiled with).
    """
    settings = {
        "loss": _loss(model, n_classes),
        **compile_defaults(steps_per_execution),
        **compile_kwargs,
    }
    model.compile(optimizer=optimizer, **settings)
    model.optimizer.build(model.trainable_variables)
    return settings


_HOOKS = (
    [
        f"on_{phase}_{when}"
        for phase in ("train", "test", "predict")
        for when in ("begin", "end")
    ]
    + [
        f"on_{phase}_batch_{when}"
        for phase in ("train", "test", "predict")
        for when in ("begin", "end")
    ]
    + ["on_epoch_begin", "on_epoch_end"]
)


class WholeNetworkCallback(keras.callbacks.Callback):
    """A user's callback that sees the whole network while a part trains.

    With the feature cache, ``Model.fit`` runs on the sub-network above the
    frozen prefix; a ``ModelCheckpoint`` would then save a network whose
    input is the cached features. Wrapped in this, the user's callback gets
    ``network`` (the whole network, sharing the trained layers) as
    ``self.model``, with the training optimizer as ``self.model.optimizer``
    for the duration of the fit, and a ``stop_training`` it sets reaches
    the loop.
    """

    def __init__(self, callback, network):
        super().__init__()
        self.callback = callback
        self.network = network
        self._trained = None

    def set_model(self, model):
        self._trained = model
        self.network.stop_training = False
        # a plain attribute, as compile() sets it, removed after training
        vars(self.network)["optimizer"] = model.optimizer
        self.callback.set_model(self.network)

    def set_params(self, params):
        self.callback.set_params(params)


def _forward(hook):
    def method(self, *args, **kwargs):
        try:
            getattr(self.callback, hook)(*args, **kwargs)
        finally:
            if getattr(self.network, "stop_training", False):
                self._trained.stop_training = True
            if hook == "on_train_end":
                vars(self.network).pop("optimizer", None)

    method.__name__ = hook
    return method


for _hook in _HOOKS:
    setattr(WholeNetworkCallback, _hook, _forward(_hook))


def train(
    model,
    X,
    y,
    sample_weight,
    spec,
    *,
    seed,
    epochs,
    learning_rate,
    split,
    X_val=None,
    whole_network=None,
    chunked=True,
):
    """Compile ``model`` and fit it; returns the Keras history as a dict.

    Parameters
    ----------
    model : keras.Model
        The network to train (with trainability already set).
    X, y, sample_weight : ndarray
        Inputs (or cached features), encoded labels, weights.
    spec : TrainSpec
    seed : int
        Seeds shuffling.
    epochs : int
    learning_rate : float
    split : tuple
        ``(train_idx, val_idx or None)`` from :func:`validation_split`.
    X_val : ndarray, default=None
        Overrides ``X[val_idx]``.
    whole_network : keras.Model, default=None
        When ``model`` is part of a larger network, what user callbacks see.
    chunked : bool, default=True
        Whether epochs may run in chunks of several per history entry
        (:func:`history_entries`) where no epoch boundary is needed.
    """
    train_idx, val_idx = split
    batch_size = int(min(spec.batch_size, len(train_idx)))
    steps = math.ceil(len(train_idx) / batch_size)
    # Small data makes an epoch one or two optimizer steps, and Keras spends
    # about 3 ms of Python per epoch (callbacks, logs, a new iterator): 200
    # epochs on 60 rows cost more in that loop than in training. Where
    # nothing needs each epoch's boundary (no validation, no user callbacks,
    # no routed fit keywords), one Keras epoch runs several passes over the
    # repeated data, in compiled calls of up to MAX_STEPS_PER_EXECUTION
    # steps; the steps, batches and shuffling are the same as epoch by epoch.
    per_entry = 1
    if chunked and val_idx is None and not spec.callbacks and not spec.fit_kwargs:
        per_entry = epochs // history_entries(epochs)
    per_call = min(steps * per_entry, MAX_STEPS_PER_EXECUTION if per_entry > 1 else 32)
    settings = compile_model(
        model,
        spec.make_optimizer(learning_rate),
        spec.n_classes,
        spec.compile_kwargs,
        per_call,
    )
    data = training_data(
        X[train_idx],
        y[train_idx],
        sample_weight[train_idx],
        batch_size,
        seed,
        True,
        repeat=per_entry > 1,
    )
    callbacks, validation, stopper = [], None, None
    if val_idx is not None:
        X_val = X[val_idx] if X_val is None else X_val
        validation = training_data(
            X_val, y[val_idx], sample_weight[val_idx], max(batch_size, 256), seed, False
        )
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=spec.patience, restore_best_weights=True
        )
        callbacks.append(stopper)
    user = spec.callbacks
    if whole_network is not None and whole_network is not model:
        user = [WholeNetworkCallback(cb, whole_network) for cb in user]
    # a repeated architecture trains in a pooled trainer whose traced step
    # is reused (``_pool``); user callbacks must see the network itself
    key = None
    if not user:
        key = trainer_key(
            model, model.optimizer, settings["loss"], per_call, spec.compile_kwargs
        )
    with pooled_trainer(model, key, settings) as network:
        history = network.fit(
            data,
            epochs=epochs // per_entry,
            steps_per_epoch=steps * per_entry if per_entry > 1 else None,
            validation_data=validation,
            callbacks=callbacks + list(user),
            shuffle=False,  # the pipeline shuffles, seeded
            **{"verbose": spec.verbose, **spec.fit_kwargs},
        )
    if stopper is not None and stopper.best_weights is not None:
        # Keras restores only when it stops early; also restore at the end
        if stopper.stopped_epoch == 0 and stopper.best_epoch != epochs - 1:
            model.set_weights(stopper.best_weights)
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        # a diverged run (huge feature values, too high a learning rate)
        # would otherwise predict NaN probabilities without a word
        loss = history.history.get("loss", [float("nan")])[-1]
        raise ValueError(
            f"Training diverged: the network's weights became NaN or infinite "
            f"(last loss {loss}). Scale the features (e.g. StandardScaler in a "
            "Pipeline) or lower learning_rate."
        )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
