"""TransferClassifier: source -> cut -> freeze -> head -> fit."""

from __future__ import annotations

import numbers

import keras
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ._base import KerasClassifierBase, temporary_seed
from ._cache import (
    apply_freeze_sharing,
    detach_shared,
    graft_on_shared,
    plan_cache,
    prefix_features,
    run_once,
    shareable_cut,
)
from ._freeze import freezable_groups, n_frozen_from_spec
from ._sources import frozen_source, resolve_pretrained

__all__ = ["TransferClassifier"]

_HEAD_LAYERS = (keras.layers.Dense, keras.layers.EinsumDense)


def _has_weights(layer):
    return bool(layer.weights)


def cut_network(model, cut, input_shape):
    """The base of ``model`` below ``cut`` (see ``TransferClassifier``)."""
    if len(model.inputs or []) > 1 or len(getattr(model, "outputs", None) or []) > 1:
        raise ValueError(
            f"The pretrained network has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; TransferClassifier needs one of each. "
            "Build a single-input, single-output sub-model first, e.g. "
            "keras.Model(model.inputs[0], model.get_layer(name).output)."
        )
    if not model.inputs:
        if cut is not None:
            raise ValueError(
                f"The pretrained network ({type(model).__name__}) is not a "
                "functional or Sequential model with a known input, so it cannot "
                "be cut; pass cut=None to use it whole as the base."
            )
        model.build((None, *input_shape))
        return model
    if cut is None:
        return model
    layers = model.layers
    if isinstance(cut, str) and cut == "auto":
        weighted = [i for i, layer in enumerate(layers) if _has_weights(layer)]
        if not weighted or not isinstance(layers[weighted[-1]], _HEAD_LAYERS):
            return model  # headless already (e.g. include_top=False)
        position = weighted[-1]
        if position == 0 or isinstance(layers[position - 1], keras.layers.InputLayer):
            raise ValueError(
                "cut='auto' would remove the only weighted layer of the "
                "pretrained network, leaving nothing to transfer; pass cut=None."
            )
        output = layers[position].input
    elif isinstance(cut, str):
        names = [layer.name for layer in layers]
        if cut not in names:
            raise ValueError(
                f"cut={cut!r} is not a layer of the pretrained network. Its "
                f"top-level layers are {names}; pass one of these names, an int "
                "position, 'auto' or None."
            )
        output = model.get_layer(cut).output
    else:
        if isinstance(cut, bool):  # an Integral to Python, but surely a typo
            raise ValueError(
                f"cut={cut!r} is not a valid cut: use 'auto', None, a layer "
                "name or an int position (keep model.layers[:cut])."
            )
        n = len(layers)
        first = 1 if isinstance(layers[0], keras.layers.InputLayer) else 0
        position = int(cut)
        index = position if position >= 0 else n + position
        if not first < index <= n:
            raise ValueError(
                f"cut={cut} is out of range: the pretrained network has {n} "
                f"top-level layers, so cut must be in {first + 1}..{n} or "
                f"-{n - first - 1}..-1 (keep layers[:cut])."
            )
        output = layers[index - 1].output
    return keras.Model(model.inputs, output, name=f"{model.name}_base")


def _check_input_shape(model, input_shape):
    expected = tuple(model.inputs[0].shape[1:])
    if len(expected) != len(input_shape) or any(
        e is not None and e != g for e, g in zip(expected, input_shape)
    ):
        raise ValueError(
            f"X has samples of shape {tuple(input_shape)}, but the pretrained "
            f"network expects {expected}. Reshape or resize X to the pretrained "
            "input (e.g. X.reshape(len(X), *shape))."
        )


def _split_at(model, cut):
    """``(prefix, rest)`` sub-models of ``model`` at layer ``cut``, built once.

    Building ``rest`` from an intermediate tensor adds nodes to every layer
    it spans, so per predict call it would grow the network: the pair is
    kept on the Keras model (not on the estimator, whose ``__dict__``
    predict must leave unchanged).
    """
    kept = model.__dict__.get("_sktransfer_split")
    if kept is None or kept[0] != cut:
        tensor = model.get_layer(cut).output
        kept = (
            cut,
            keras.Model(model.inputs[0], tensor),
            keras.Model(tensor, model.outputs[0]),
        )
        object.__setattr__(model, "_sktransfer_split", kept)
    return kept[1], kept[2]


class TransferClassifier(ClassifierMixin, KerasClassifierBase):
    """Transfer a pretrained Keras network to a new classification task.

    The recipe of the Keras transfer-learning guide as one scikit-learn
    estimator: the pretrained network is cut below its old head, its first
    layers are frozen, a new head is added for the target's classes, and the
    rest is fine-tuned. Every ``fit`` starts from a fresh private copy of the
    pretrained weights, so the user's model and file never change and no
    cross-validation fold sees another's training. The freeze depth is an
    ordinary hyperparameter: grid-search it.

    Parameters
    ----------
    pretrained : str, os.PathLike, keras.Model, estimator or callable
        A ``.keras`` / ``.h5`` file, a Keras model (Sequential, functional or
        with nested models such as a ``keras.applications`` network), a
        fitted :class:`PretrainedClassifier`, ``TransferClassifier`` or
        scikeras estimator (its ``model_``), or a callable returning a model.
    cut : "auto", int, str or None, default="auto"
        Where to cut the pretrained network. ``"auto"`` drops the old
        classification head (the last Dense layer with weights and what
        follows it) and keeps a network without a Dense head whole; an int
        ``k`` keeps ``model.layers[:k]``; a layer name keeps everything up to
        and including that layer; ``None`` keeps the whole network. A spatial
        output gets global average pooling before the head.
    freeze : int or "all", default="all"
        How much of the base stays fixed, counted in layers that carry
        weights (nested models flattened; a normalization layer goes with the
        layer before it), from the input: ``k >= 0`` freezes the first k,
        ``-k`` all but the last k, ``"all"`` the whole base, ``0`` nothing.
        Frozen BatchNormalization runs in inference mode.
    head_hidden_layer_sizes : tuple of int, default=()
        Hidden Dense layers of the new head.
    head_dropout : float, default=0.0
        Dropout before each Dense layer of the new head.
    activation : str, default="relu"
        Activation of the head's hidden layers.
    warmup_epochs : int, default=0
        Epochs of training the new head alone on a fully frozen base before
        the ``freeze`` setting applies (two-phase fine-tuning).
    fine_tune_learning_rate : float, default=None
        Learning rate after warm-up; ``None`` means ``learning_rate / 10``.
        Without warm-up, training uses ``learning_rate`` throughout.
    optimizer : str, keras.optimizers.Optimizer or class, default="adam"
        Keras optimizer; ``optimizer__<name>`` parameters are routed to it.
    learning_rate : float, default=1e-3
        Learning rate (of the warm-up phase, when there is one).
    epochs : int, default=200
        Maximum epochs of the main (fine-tuning) phase.
    batch_size : int, default=32
        Minibatch size (capped at the number of training samples).
    early_stopping : bool, default=True
        Stop on a stratified ``validation_split`` hold-out and restore the
        best weights; skipped when it would hold fewer than 20 samples.
    validation_split : float, default=0.1
        Fraction held out for early stopping.
    patience : int, default=10
        Epochs without improvement before stopping.
    callbacks : list, dict or keras.callbacks.Callback, default=None
        Extra Keras callbacks; ``callbacks__*`` parameters are routed.
    class_weight : dict or "balanced", default=None
        Weights per class, multiplied into ``sample_weight``.
    cache_features : "auto", bool, default="auto"
        When the frozen first part of the network is a clean cut (one tensor
        leads on from it) without training-time randomness (Dropout, noise,
        augmentation), compute its output once per fit and train only the
        rest on it. ``"auto"`` caches whenever that is valid and the frozen
        part holds weights; ``True`` raises where it is not valid. ``model_``
        is always the whole network and predicts the same either way.
    memory : None, str or joblib.Memory, default=None
        Keep the frozen part's features on disk (as ``Pipeline(memory=...)``
        does), keyed by its weights and architecture and by the input rows,
        so grid-search candidates and folds sharing a frozen base reuse them,
        across processes too. Held-out batches of 64 rows or more are then
        scored through the cached features as well. Fits in one process
        also share the frozen layers themselves (read-only: never made
        trainable) instead of each copying the whole source; every layer a
        fit trains is its own. To train a fitted ``model_`` further with
        Keras, copy it first (``keras.models.clone_model``).
    allow_unsafe : bool, default=False
        Load a ``pretrained`` file with Keras ``safe_mode`` off. Only for
        files you trust: code stored in them (a ``Lambda`` layer) runs.
    custom_objects : dict, default=None
        Custom Keras classes needed to load a ``pretrained`` file.
    random_state : int, RandomState instance or None, default=None
        Seeds the head's initialisation, dropout, shuffling and the
        validation split, without changing process-wide state.
    verbose : int, default=0
        Keras' verbosity during fit.
    distribution_strategy : tf.distribute.Strategy, default=None
        Build and train the network under this strategy's scope, e.g.
        ``tf.distribute.MirroredStrategy()`` across the GPUs of one machine.
    **kwargs : dict
        Routed parameters: ``optimizer__*``, ``callbacks__*``, ``compile__*``,
        ``fit__*``, ``score__*``.

    Attributes
    ----------
    model_ : keras.Model
        The whole fitted network: base and new head.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_classes_ : int
        Number of classes.
    n_features_in_ : int
        Number of features (for images: the height) seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.
    input_shape_ : tuple of int
        Shape of one sample seen in fit.
    history_ : dict
        Keras training history, warm-up epochs first.
    base_layers_ : list of str
        Names of the base's freezable layers, from the input.
    n_frozen_ : int
        How many of ``base_layers_`` were frozen in the main phase.
    n_warmup_epochs_ : int
        Warm-up epochs actually run: ``history_[key][:n_warmup_epochs_]``
        is the warm-up phase.
    feature_cut_ : str or None
        The layer whose output was cached in the main phase, or None.

    See Also
    --------
    PretrainedClassifier : Train the source network.
    sktransfer.load : Restore an estimator written by ``save``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sktransfer import PretrainedClassifier, TransferClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> source = PretrainedClassifier(hidden_layer_sizes=(32, 16), epochs=3,
    ...                               random_state=0).fit(X[y < 5], y[y < 5])
    >>> clf = TransferClassifier(source, freeze=1, epochs=3,
    ...                          random_state=0).fit(X[y >= 5], y[y >= 5])
    >>> clf.base_layers_ == [layer.name for layer in source.model_.layers[1:3]]
    True
    >>> clf.n_frozen_
    1
    """

    _parameter_constraints: dict = {
        **KerasClassifierBase._parameter_constraints,
        "cut": [StrOptions({"auto"}), str, numbers.Integral, None],
        "freeze": [StrOptions({"all"}), str, numbers.Integral],
        "head_hidden_layer_sizes": ["array-like"],
        "head_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "activation": [str, callable],
        "warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "fine_tune_learning_rate": [
            Interval(numbers.Real, 0, None, closed="neither"),
            None,
        ],
        "allow_unsafe": ["boolean"],
        "cache_features": [StrOptions({"auto"}), "boolean"],
        "memory": [None, str, HasMethods(["cache"])],
        "custom_objects": [dict, None],
    }

    def __init__(
        self,
        pretrained=None,
        *,
        cut="auto",
        freeze="all",
        head_hidden_layer_sizes=(),
        head_dropout=0.0,
        activation="relu",
        warmup_epochs=0,
        fine_tune_learning_rate=None,
        optimizer="adam",
        learning_rate=1e-3,
        epochs=200,
        batch_size=32,
        early_stopping=True,
        validation_split=0.1,
        patience=10,
        callbacks=None,
        class_weight=None,
        cache_features="auto",
        memory=None,
        allow_unsafe=False,
        custom_objects=None,
        random_state=None,
        verbose=0,
        distribution_strategy=None,
        **kwargs,
    ):
        self.pretrained = pretrained
        self.cut = cut
        self.freeze = freeze
        self.head_hidden_layer_sizes = head_hidden_layer_sizes
        self.head_dropout = head_dropout
        self.activation = activation
        self.warmup_epochs = warmup_epochs
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_split = validation_split
        self.patience = patience
        self.callbacks = callbacks
        self.class_weight = class_weight
        self.cache_features = cache_features
        self.memory = memory
        self.allow_unsafe = allow_unsafe
        self.custom_objects = custom_objects
        self.random_state = random_state
        self.verbose = verbose
        self.distribution_strategy = distribution_strategy
        vars(self).update(kwargs)

    # the read-only source is shared by clones (every fit copies it anyway):
    # deep-copying a network per clone costs seconds, and cloning a fitted
    # source estimator would unfit it
    _shared_params = ("pretrained",)

    def _check_fit_inputs(self, X):
        if self.pretrained is None:
            raise ValueError(
                "TransferClassifier needs pretrained=: a .keras/.h5 file, a "
                "keras.Model, a fitted estimator or a callable returning a model."
            )
        sizes = tuple(self.head_hidden_layer_sizes)
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(
                f"head_hidden_layer_sizes must be positive integers, got {sizes!r}."
            )

    def _build(self, seed):
        """Private network: (base, groups, full model); validates everything."""
        if (
            self.memory is not None
            and self.cache_features is not False
            and self.distribution_strategy is None
        ):
            built = self._build_shared(seed)
            if built is not None:
                return built
        with temporary_seed(seed):
            source = resolve_pretrained(
                self.pretrained,
                allow_unsafe=self.allow_unsafe,
                custom_objects=self.custom_objects,
            )
        base = cut_network(source, self.cut, self.input_shape_)
        _check_input_shape(base, self.input_shape_)
        groups = freezable_groups(base)
        n_frozen = n_frozen_from_spec(self.freeze, groups)
        model = self._add_head(base, seed)
        return base, groups, n_frozen, model

    def _build_shared(self, seed):
        """``_build`` on the static layers of a frozen source, or None.

        With ``memory`` the frozen part's features come from the cache, and
        copying the source (2.5-4 s for MobileNetV3Small) was most of what a
        grid-search candidate still paid. The network is built instead on
        the process's frozen copy of the source (``frozen_source``): the
        layers this fit keeps static are shared, the rest is copied. See
        ``_cache`` ("sharing a frozen source") for why that is safe. None
        (copy the whole source) when nothing can be shared.
        """
        source = frozen_source(
            self.pretrained,
            allow_unsafe=self.allow_unsafe,
            custom_objects=self.custom_objects,
        )
        if source is None:
            return None
        view = cut_network(source, self.cut, self.input_shape_)
        _check_input_shape(view, self.input_shape_)
        groups = freezable_groups(view)
        n_frozen = n_frozen_from_spec(self.freeze, groups)
        split = shareable_cut(view, groups, n_frozen, source)
        if split is None:
            return None
        with temporary_seed(seed):
            base = graft_on_shared(view, split)
        if base is None:
            detach_shared(source)
            return None
        groups = freezable_groups(base)
        model = self._add_head(base, seed)
        detach_shared(source)
        return base, groups, n_frozen, model

    def _add_head(self, base, seed):
        seeds = iter(range(seed + 1, seed + 1000))
        # Name the head's layers explicitly, avoiding the base's names. Keras'
        # automatic names come from a per-process counter: in a fresh process
        # (a loky or Dask worker, a new session) a source loaded from a file
        # already holds "dense", "dense_1", ... and the first automatic head
        # layer is "dense" again, so keras.Model(...) failed with 'The name
        # "dense" is used 2 times in the model'.
        taken = {layer.name for layer in base.layers}

        def name(stem):
            candidate, i = stem, 1
            while candidate in taken:
                candidate, i = f"{stem}_{i}", i + 1
            taken.add(candidate)
            return candidate

        x = base.outputs[0]
        if len(x.shape) == 4:
            x = keras.layers.GlobalAveragePooling2D(name=name("head_pool"))(x)
        elif len(x.shape) == 3:
            x = keras.layers.GlobalAveragePooling1D(name=name("head_pool"))(x)
        elif len(x.shape) != 2:
            x = keras.layers.Flatten(name=name("head_flatten"))(x)
        for units in self.head_hidden_layer_sizes:
            if self.head_dropout:
                x = keras.layers.Dropout(
                    self.head_dropout, seed=next(seeds), name=name("head_dropout")
                )(x)
            x = keras.layers.Dense(
                units,
                activation=self.activation,
                kernel_initializer=keras.initializers.GlorotUniform(next(seeds)),
                name=name("head_dense"),
            )(x)
        if self.head_dropout:
            x = keras.layers.Dropout(
                self.head_dropout, seed=next(seeds), name=name("head_dropout")
            )(x)
        outputs = keras.layers.Dense(
            self.n_classes_,
            activation="softmax",
            kernel_initializer=keras.initializers.GlorotUniform(next(seeds)),
            name=name("head_output"),
        )(x)
        return keras.Model(base.inputs, outputs)

    def _fit_model(self, X, y, sample_weight, seed):
        base, groups, n_frozen, model = self._build(seed)
        if self.cache_features is True and n_frozen == 0:
            raise ValueError(
                "cache_features=True needs a frozen part to cache, but freeze="
                f"{self.freeze!r} freezes nothing. Use cache_features='auto'."
            )
        split = self._validation_split(y, seed)
        history = {}
        fine_tune_lr = self.learning_rate
        if self.warmup_epochs:
            apply_freeze_sharing(base, groups, len(groups))
            history = self._train_phase(
                model,
                X,
                y,
                sample_weight,
                split,
                seed,
                self.warmup_epochs,
                self.learning_rate,
            )
            fine_tune_lr = (
                self.fine_tune_learning_rate
                if self.fine_tune_learning_rate is not None
                else self.learning_rate / 10
            )
        apply_freeze_sharing(base, groups, n_frozen)
        tuned = self._train_phase(
            model, X, y, sample_weight, split, seed + 1, self.epochs, fine_tune_lr
        )
        for key, values in tuned.items():
            history.setdefault(key, []).extend(values)
        self.history_ = history
        # where the warm-up ends in history_ (early stopping may cut it short)
        self.n_warmup_epochs_ = len(history.get("loss", [])) - len(
            tuned.get("loss", [])
        )
        self.base_layers_ = [g.name for g in groups]
        self.n_frozen_ = n_frozen
        self.model_ = model

    def _train_phase(self, model, X, y, sample_weight, split, seed, epochs, lr):
        """Train ``model``; through the frozen-prefix cache when it is valid.

        The cached path trains the sub-network above the cut on the prefix's
        features; it shares its layers with ``model``, which stays the whole
        network. Validation rows go through the same features.
        """
        plan = plan_cache(model, self.cache_features)
        self.feature_cut_ = None if plan is None else plan.layer_name
        if plan is None:
            return self._train(
                model,
                X,
                y,
                sample_weight,
                seed=seed,
                epochs=epochs,
                learning_rate=lr,
                split=split,
            )
        features = prefix_features(plan.prefix, X, self.memory)
        return self._train(
            plan.rest,
            features,
            y,
            sample_weight,
            seed=seed,
            epochs=epochs,
            learning_rate=lr,
            split=split,
        )

    def _forward(self, X):
        """With ``memory``, batches go through the cached prefix features.

        A held-out fold is the same rows for every grid candidate that shares
        the frozen base, so its features come from the cache instead of a
        pass through the whole network.
        """
        cut = getattr(self, "feature_cut_", None)
        if self.memory is None or cut is None or len(X) < 64:
            return super()._forward(X)
        prefix, rest = _split_at(self.model_, cut)
        # eagerly: the prefix runs once per new set of rows, and tracing the
        # sub-models costs more than it saves (see ``run_once``)
        return run_once(rest, prefix_features(prefix, X, self.memory))

    def _get_fitted_state(self):
        state = super()._get_fitted_state()
        state["base_layers_"] = list(self.base_layers_)
        state["n_frozen_"] = int(self.n_frozen_)
        state["n_warmup_epochs_"] = int(self.n_warmup_epochs_)
        state["feature_cut_"] = self.feature_cut_
        return state

    def _set_fitted_state(self, state, model):
        super()._set_fitted_state(state, model)
        self.base_layers_ = list(state["base_layers_"])
        self.n_frozen_ = int(state["n_frozen_"])
        self.n_warmup_epochs_ = int(state.get("n_warmup_epochs_", 0))
        self.feature_cut_ = state.get("feature_cut_")

    # ClassifierMixin's score comes first in the MRO: use the routed one
    score = KerasClassifierBase.score
