"""The shared estimator base: the one module that knows scikeras.

scikeras' ``BaseWrapper`` gives us parameter routing (``optimizer__...``,
``callbacks__...``, ``fit__...``), its target encoding and the compilation of
optimizer classes from strings. What it gets wrong with scikit-learn >= 1.6
and Keras 3 is repaired here (see ``shared/PITFALLS.md``): the fit path is
our own (seeded without touching process-wide state, ``tf.data`` input,
stratified early-stopping split sized to the data), prediction skips
``Model.predict``'s per-call cost, parameters are read from the signature
(not from ``__dict__``), and tags come from ``__sklearn_tags__``. Estimators
put ``ClassifierMixin`` first over this base.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import sys
from collections.abc import Mapping

import keras
import numpy as np


def _import_scikeras_unpatched():
    """Import scikeras without keeping the patches its import puts on Keras.

    ``import scikeras`` replaces ``__reduce__``/``__deepcopy__`` of
    ``keras.Model``, losses, metrics and optimizers for the whole process
    (PITFALLS: every deep copy then goes through a save/load round trip).
    Keras 3 pickles models natively, so importing sktransfer puts the
    originals back: importing us changes nothing in Keras. If the user
    imported scikeras first, their process keeps scikeras' behaviour.
    """
    if "scikeras" in sys.modules:
        return
    names = ("__reduce__", "__deepcopy__")
    classes = (
        keras.Model,
        keras.losses.Loss,
        keras.metrics.Metric,
        keras.optimizers.Optimizer,
    )
    saved = [
        (cls, {n: cls.__dict__[n] for n in names if n in cls.__dict__})
        for cls in classes
    ]
    import scikeras  # noqa: F401  (its import applies the patches)

    for cls, originals in saved:
        for name in names:
            if name in originals:
                setattr(cls, name, originals[name])
            elif name in cls.__dict__:
                delattr(cls, name)


_import_scikeras_unpatched()

from scikeras._utils import (  # noqa: E402
    accepts_kwargs,
    get_optimizer_class,
    has_param,
    route_params,
    try_to_convert_strings_to_classes,
    unflatten_params,
)
from scikeras.utils.transformers import ClassifierLabelEncoder  # noqa: E402
from scikeras.wrappers import BaseWrapper  # noqa: E402
from sklearn.base import BaseEstimator  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402
from sklearn.utils.multiclass import check_classification_targets  # noqa: E402
from sklearn.utils.validation import (  # noqa: E402
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from ._runtime import (  # noqa: E402
    StrategySpec,
    fresh_seed,
    run_inference,
    temporary_seed,
)

__all__ = ["KerasClassifierBase", "run_inference", "temporary_seed"]

#: validation sets smaller than this make early stopping a coin toss
MIN_VALIDATION_SAMPLES = 20
#: above this many bytes the training arrays are not embedded in the graph
MAX_EMBEDDED_BYTES = 512 * 2**20


class KerasClassifierBase(BaseWrapper):
    """Shared base of sktransfer's classifiers (put ``ClassifierMixin`` first).

    Subclasses implement ``_fit_model(X, y, sample_weight, seed)``, which
    builds and trains ``self.model_`` (usually through :meth:`_train`).
    """

    #: routing prefixes: scikeras' own plus the ones it forgets in set_params
    _routing_prefixes = frozenset(BaseWrapper._routing_prefixes) | {
        "callbacks",
        "score",
    }
    #: scikeras-only attributes read by inherited code paths we do not use
    build_fn = None
    warm_start = False

    _parameter_constraints: dict = {
        "optimizer": [str, type, keras.optimizers.Optimizer],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_split": [Interval(numbers.Real, 0, 1, closed="left")],
        "patience": [Interval(numbers.Integral, 0, None, closed="left")],
        "callbacks": [list, dict, keras.callbacks.Callback, None],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "distribution_strategy": [None, HasMethods(["scope"])],
    }

    # ------------------------------------------------------------------ params
    def _get_param_names(self):
        """Signature parameters plus the extra keywords given to ``__init__``.

        Extra keywords are routed parameters (``optimizer__beta_1``...) or
        unknown names that ``fit`` rejects with a clear ``TypeError``. Both
        must be parameters: scikit-learn requires that ``__init__`` and
        ``set_params`` never raise and that ``clone`` round-trips what was
        passed (``check_do_not_raise_errors_in_init_or_set_params`` passes
        ``kwargs=...`` through ``**kwargs``). Private (``_x``) and fitted
        (``x_``) attributes never count, and predict stores nothing on the
        estimator, so no cache can turn into a parameter.
        """
        names = set(BaseEstimator._get_param_names.__func__(type(self)))
        names.update(
            key
            for key in vars(self)
            if not key.startswith("_") and not key.endswith("_")
        )
        return sorted(names)

    __repr__ = BaseEstimator.__repr__

    #: parameters holding a read-only source network that clones share
    _shared_params: tuple = ()

    def __sklearn_clone__(self):
        """Clone as scikit-learn does, but share the read-only source network.

        ``clone`` would deep-copy a Keras model parameter (seconds for a large
        network, per clone and fold) and would turn a fitted source estimator
        into an unfitted one. Every fit copies the source before training, so
        sharing that one read-only parameter is safe; so is sharing
        ``distribution_strategy`` (see below); all else is cloned.
        """
        from sklearn.base import clone

        params = self.get_params(deep=False)
        for name, value in params.items():
            # the distribution strategy is a handle on devices, not state:
            # clones share it. A deep copy is another strategy object, and
            # variables made under one (a source trained with it) cannot be
            # read under another ("Mixing different tf.distribute.Strategy
            # objects"), so a grid search over such a source failed every fit.
            if name not in self._shared_params and name != "distribution_strategy":
                params[name] = clone(value, safe=False)
        return type(self)(**params)

    def __getstate__(self):
        """Pickle state, with ``distribution_strategy`` as a description.

        A ``tf.distribute`` strategy holds weak references and device handles
        and does not pickle, so an estimator carrying one failed to reach a
        loky or Dask worker ("cannot pickle 'weakref.ReferenceType' object").
        One-machine strategies travel as their type and device list and are
        rebuilt on the other side (see ``StrategySpec``).
        """
        state = super().__getstate__()
        strategy = state.get("distribution_strategy")
        if strategy is not None and not isinstance(strategy, StrategySpec):
            spec = StrategySpec.describe(strategy)
            if spec is not None:
                state = dict(state)  # may be self.__dict__ itself
                state["distribution_strategy"] = spec
        return state

    def __setstate__(self, state):
        spec = state.get("distribution_strategy")
        if isinstance(spec, StrategySpec):
            state = dict(state, distribution_strategy=spec.build())
        super().__setstate__(state)

    def _check_unknown_params(self):
        known = set(BaseEstimator._get_param_names.__func__(type(self)))
        unknown = sorted(
            key
            for key in vars(self)
            if not key.startswith("_")
            and not key.endswith("_")
            and key not in known
            and key.split("__", 1)[0] not in self._routing_prefixes
        )
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameters {unknown}. Valid "
                f"parameters are {sorted(known)}"
                " plus routed ones such as optimizer__<name>, callbacks__<name>, "
                "fit__<name>, model__<name> or score__<name>."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = True
        tags.non_deterministic = False
        return tags

    @property
    def partial_fit(self):
        # scikeras' partial_fit always trains exactly one epoch and skips our
        # fit path; hide it so scikit-learn does not treat us as incremental.
        raise AttributeError(
            f"{type(self).__name__} does not support partial_fit; use fit."
        )

    # ------------------------------------------------------------- validation
    def _validate_X(self, X, *, reset, y=None):
        """Validate X (and y) through scikit-learn; cast to Keras' float."""
        expected = getattr(self, "input_shape_", None)
        if not reset and expected is not None and len(expected) > 1:
            shape = np.shape(X) if hasattr(X, "shape") else None
            if shape is not None and len(shape) != len(expected) + 1:
                # images: n_features_in_ is only the height, so say it all
                raise ValueError(
                    f"X has samples of shape {tuple(shape[1:])}, but "
                    f"{type(self).__name__} was fitted on samples of shape "
                    f"{tuple(expected)}. Reshape X, e.g. "
                    f"X.reshape(len(X), *{tuple(expected)})."
                )
        kwargs = dict(
            reset=reset,
            allow_nd=True,
            dtype="numeric",
            accept_sparse=False,
            ensure_all_finite=True,
        )
        try:
            if y is None:
                X = validate_data(self, X, **kwargs)
            else:
                X, y = validate_data(self, X, y, **kwargs)
        except TypeError as exc:
            if "parse" in str(exc).lower() or "sparse" in str(exc).lower():
                raise TypeError(
                    f"{type(self).__name__} needs dense input: {exc} Convert "
                    "sparse X with X.toarray() (or add a densifying step to your "
                    "Pipeline)."
                ) from None
            raise
        except ValueError as exc:
            text = str(exc)
            # lower(): scikit-learn writes "Convert your data..." for str arrays
            lowered = text.lower()
            if "convert" in lowered and ("string" in lowered or "float" in lowered):
                raise ValueError(
                    f"{type(self).__name__} needs numeric features, but X holds "
                    f"non-numeric values ({text}). Encode them first, e.g. with "
                    "OneHotEncoder or OrdinalEncoder in a Pipeline."
                ) from None
            if "infinity" in lowered:
                # scikit-learn names the problem but not the fix
                raise ValueError(
                    f"{text} {type(self).__name__} needs finite features: replace "
                    "or drop infinite values first (e.g. np.nan_to_num, or clip "
                    "them in a Pipeline step)."
                ) from None
            expected = getattr(self, "input_shape_", None)
            if not reset and expected is not None and "features, but" in text:
                # scikit-learn's n_features check speaks of "features" even
                # for image arrays ((n, 4, 16) vs (n, 8, 8)): name the shapes
                raise ValueError(
                    f"X has sample shape {tuple(np.shape(X)[1:])}, but "
                    f"{type(self).__name__} was fitted on samples of shape "
                    f"{tuple(expected)} ({text}). Pass data shaped like the "
                    "training data."
                ) from None
            raise
        with np.errstate(over="ignore"):  # overflow is reported just below
            converted = np.asarray(X, dtype=keras.backend.floatx())
        if (
            X.dtype.kind == "f"
            and X.dtype.itemsize > converted.dtype.itemsize
            and not np.isfinite(converted).all()
        ):
            # finite float64 values beyond float32's range (|x| > 3.4e38)
            # become inf in the cast and then NaN probabilities, silently
            raise ValueError(
                f"X holds values too large for {converted.dtype} (the network's "
                f"precision): largest magnitude {np.abs(X).max():.3g}. Scale the "
                "features first, e.g. with StandardScaler in a Pipeline."
            )
        X = converted
        if not reset:
            expected = getattr(self, "input_shape_", None)
            if expected is not None and tuple(X.shape[1:]) != tuple(expected):
                raise ValueError(
                    f"X has sample shape {tuple(X.shape[1:])}, but "
                    f"{type(self).__name__} was fitted on samples of shape "
                    f"{tuple(expected)}. Pass data shaped like the training data."
                )
        return X if y is None else (X, y)

    def _encode_targets(self, y):
        try:
            check_classification_targets(y)
        except ValueError as exc:
            # keep scikit-learn's text (its checks match "Unknown label type")
            # and say what to do instead
            raise ValueError(
                f"{exc} {type(self).__name__} is a classifier: y must hold class "
                "labels (ints, strings or bools). For a continuous target use a "
                "regressor, or bin y into classes first (e.g. KBinsDiscretizer)."
            ) from None
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes, but "
                f"y has only 1 class ({classes[0]!r}). Check the labels, or the "
                "split that produced this training set."
            )
        encoder = ClassifierLabelEncoder(loss="sparse_categorical_crossentropy")
        encoder.fit(y)
        y_encoded = encoder.transform(y).reshape(-1).astype("int32")
        return encoder, y_encoded

    def _sample_weights(self, X, y_encoded, sample_weight):
        """Combine ``sample_weight`` and ``class_weight`` into a new array."""
        weights = _check_sample_weight(
            sample_weight, X, dtype=np.float32, ensure_non_negative=True, copy=True
        )
        if self.class_weight is not None:
            class_weight = self.class_weight
            if isinstance(class_weight, dict):
                index = {label: i for i, label in enumerate(self.classes_)}
                try:
                    class_weight = {index[k]: v for k, v in class_weight.items()}
                except KeyError as exc:
                    raise ValueError(
                        f"class_weight names class {exc.args[0]!r}, which is not "
                        f"among the labels {list(self.classes_)}."
                    ) from None
            weights = weights * compute_sample_weight(class_weight, y_encoded)
        weighted_classes = np.unique(y_encoded[weights > 0])
        if weighted_classes.size < 2:
            raise ValueError(
                "sample_weight leaves fewer than 2 classes with positive weight "
                "(only 1 class left); training needs at least 2 classes."
            )
        return weights.astype(np.float32)

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Train a fresh private copy of the network on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training data: a table, or image arrays.
        y : array-like of shape (n_samples,)
            Class labels of any type scikit-learn accepts.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, multiplied with ``class_weight``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        self._check_unknown_params()
        if y is None:
            # validate_data would return X alone and the unpacking below would
            # fail with an unhelpful "too many values to unpack"
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None."
            )
        X, y = self._validate_X(X, reset=True, y=y)
        encoder, y_encoded = self._encode_targets(y)
        self.classes_ = encoder.classes_
        self.n_classes_ = int(encoder.n_classes_)
        self.input_shape_ = tuple(int(d) for d in X.shape[1:])
        weights = self._sample_weights(X, y_encoded, sample_weight)
        self._check_fit_inputs(X)
        seed = fresh_seed(self.random_state)
        strategy = self.distribution_strategy
        # the network is built, compiled and trained under the strategy's scope
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self._fit_model(X, y_encoded, weights, seed)
        return self

    def _check_fit_inputs(self, X):
        """Hook: subclasses check X against their network before training."""

    def _fit_model(self, X, y, sample_weight, seed):  # pragma: no cover
        raise NotImplementedError

    def _call_model_factory(self, factory, seed, **meta):
        """Call a user's model factory the scikeras way, seeded."""
        params = self.get_params()
        kwargs = route_params(
            params, destination="model", pass_filter=set(), strict=True
        )
        if has_param(factory, "meta") or accepts_kwargs(factory):
            kwargs["meta"] = dict(meta)
        if has_param(factory, "params") or accepts_kwargs(factory):
            kwargs["params"] = params
        with temporary_seed(seed):
            model = factory(**kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"model callable returned {type(model).__name__}; it must return "
                "a keras.Model."
            )
        return model

    def _validation_split(self, y, seed):
        """Indices for training and early-stopping validation (or None).

        The split is stratified and seeded. Validation sets under
        ``MIN_VALIDATION_SAMPLES`` rows (or without room for every class)
        would stop runs at chance, so small data trains on everything for the
        full epoch budget instead.
        """
        n = len(y)
        if not self.early_stopping or self.validation_split == 0:
            return np.arange(n), None
        n_val = int(math.ceil(n * self.validation_split))
        counts = np.bincount(y)
        n_classes = np.count_nonzero(counts)
        if n_val < max(MIN_VALIDATION_SAMPLES, n_classes) or n - n_val < n_classes:
            return np.arange(n), None
        stratify = y if counts[counts > 0].min() >= 2 else None
        train, val = train_test_split(
            np.arange(n), test_size=n_val, stratify=stratify, random_state=seed
        )
        return np.sort(train), np.sort(val)

    def _make_optimizer(self, learning_rate):
        """A new optimizer from ``optimizer`` and ``optimizer__*`` params."""
        params = self.get_params()
        routed = route_params(
            params, destination="optimizer", pass_filter=set(), strict=False
        )
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            # never reuse (and mutate) a user's optimizer object
            config = optimizer.get_config()
            config.update(routed)
            config["learning_rate"] = routed.get("learning_rate", learning_rate)
            return type(optimizer).from_config(config)
        try:
            optimizer = try_to_convert_strings_to_classes(
                optimizer, get_optimizer_class
            )
        except ValueError:
            raise ValueError(
                f"optimizer={self.optimizer!r} is not a Keras optimizer name; use "
                "e.g. 'adam', 'sgd', 'rmsprop' or a keras.optimizers class."
            ) from None
        routed.setdefault("learning_rate", learning_rate)
        return unflatten_params(items=optimizer, params=routed)

    def _user_callbacks(self):
        """``callbacks`` (with ``callbacks__*`` routing) as a flat list."""
        params = self.get_params()
        callbacks = params.get("callbacks")
        if callbacks is None:
            return []
        callbacks = unflatten_params(
            items=callbacks,
            params=route_params(params, destination="callbacks", pass_filter=set()),
        )
        if isinstance(callbacks, Mapping):
            callbacks = list(callbacks.values())
        elif isinstance(callbacks, keras.callbacks.Callback):
            callbacks = [callbacks]
        flat = []
        for item in callbacks:
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        for item in flat:
            if not isinstance(item, keras.callbacks.Callback):
                raise TypeError(
                    "callbacks must be keras.callbacks.Callback instances or "
                    f"classes (in a list or dict); got {type(item).__name__}."
                )
        return flat

    def _dataset(self, X, y, sample_weight, batch_size, seed, shuffle):
        """A seeded ``tf.data`` pipeline: much cheaper per epoch than Keras'
        NumPy adapter on small data. Large arrays are fed by a generator
        rather than embedded in the graph."""
        import tensorflow as tf

        n = len(y)
        arrays = (X, y, sample_weight)
        if X.nbytes <= MAX_EMBEDDED_BYTES:
            data = tf.data.Dataset.from_tensor_slices(arrays)
            if shuffle:
                data = data.shuffle(n, seed=seed, reshuffle_each_iteration=True)
            return data.batch(batch_size).prefetch(2)
        rng = np.random.default_rng(seed)

        def batches():
            order = rng.permutation(n) if shuffle else np.arange(n)
            for start in range(0, n, batch_size):
                idx = np.sort(order[start : start + batch_size])
                yield X[idx], y[idx], sample_weight[idx]

        signature = (
            tf.TensorSpec((None, *X.shape[1:]), X.dtype),
            tf.TensorSpec((None,), y.dtype),
            tf.TensorSpec((None,), sample_weight.dtype),
        )
        return tf.data.Dataset.from_generator(
            batches, output_signature=signature
        ).prefetch(2)

    def _compile(self, model, learning_rate, steps_per_execution=1):
        """Compile with a fresh optimizer built on the trainable variables.

        Building the optimizer right away (instead of lazily inside the first
        traced step) avoids the per-fit growth of traced functions.
        """
        n_outputs = model.outputs[0].shape[-1] if model.outputs else None
        loss = (
            "binary_crossentropy"
            if n_outputs == 1 and self.n_classes_ == 2
            else "sparse_categorical_crossentropy"
        )
        compile_kwargs = route_params(
            self.get_params(), destination="compile", pass_filter=set(), strict=True
        )
        compile_kwargs.setdefault("jit_compile", False)
        # several steps per traced call: Keras' per-step cost dominates tiny data
        compile_kwargs.setdefault("steps_per_execution", steps_per_execution)
        model.compile(
            optimizer=self._make_optimizer(learning_rate), loss=loss, **compile_kwargs
        )
        model.optimizer.build(model.trainable_variables)

    def _train(
        self,
        model,
        X,
        y,
        sample_weight,
        *,
        seed,
        epochs,
        learning_rate,
        split,
        X_val=None,
    ):
        """Compile ``model`` and fit it; returns the Keras history dict.

        ``split`` is ``(train_idx, val_idx or None)`` from
        :meth:`_validation_split`; ``X_val`` overrides ``X[val_idx]`` (used
        when the inputs were replaced by cached features).
        """
        train_idx, val_idx = split
        batch_size = int(min(self.batch_size, len(train_idx)))
        steps = math.ceil(len(train_idx) / batch_size)
        self._compile(model, learning_rate, steps_per_execution=min(steps, 32))
        data = self._dataset(
            X[train_idx],
            y[train_idx],
            sample_weight[train_idx],
            batch_size,
            seed,
            shuffle=True,
        )
        callbacks = []
        validation = None
        stopper = None
        if val_idx is not None:
            X_val = X[val_idx] if X_val is None else X_val
            validation = self._dataset(
                X_val,
                y[val_idx],
                sample_weight[val_idx],
                max(batch_size, 256),
                seed,
                shuffle=False,
            )
            stopper = keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=self.patience,
                restore_best_weights=True,
            )
            callbacks.append(stopper)
        callbacks += self._user_callbacks()
        fit_kwargs = route_params(
            self.get_params(), destination="fit", pass_filter=set(), strict=True
        )
        history = model.fit(
            data,
            epochs=epochs,
            validation_data=validation,
            callbacks=callbacks,
            verbose=self.verbose,
            shuffle=False,  # the tf.data pipeline shuffles, seeded
            **fit_kwargs,
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
                f"Training diverged: the network's weights became NaN or "
                f"infinite (last loss {loss}). Scale the features (e.g. "
                "StandardScaler in a Pipeline) or lower learning_rate."
            )
        return {k: [float(v) for v in vals] for k, vals in history.history.items()}

    # --------------------------------------------------------------- predict
    def _forward(self, X):
        """Network output for validated X (see :func:`run_inference`)."""
        return run_inference(self.model_, X)

    def predict_proba(self, X):
        """Class probabilities for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Input data shaped like the training data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns ordered as ``classes_``.
        """
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        raw = self._forward(X).astype(np.float64)
        if raw.ndim == 1 or raw.shape[1] == 1:
            raw = raw.reshape(-1, 1)
            raw = np.hstack([1.0 - raw, raw])
        raw = np.clip(raw, 0.0, None)
        raw /= raw.sum(axis=1, keepdims=True)
        return raw

    def predict(self, X):
        """Predicted class labels for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Input data shaped like the training data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        # predict_proba first: on an unfitted estimator it raises
        # NotFittedError, where reading ``self.classes_`` first is AttributeError
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``(X, y)``; ``score__*`` parameters are routed.

        Estimators list ``ClassifierMixin`` first, whose ``score`` would win
        the method lookup and ignore the routing, so each one binds this
        method explicitly (``score = KerasClassifierBase.score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Test samples.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy of ``self.predict(X)``.
        """
        kwargs = route_params(
            self.get_params(), destination="score", pass_filter=set(), strict=True
        )
        return float(
            accuracy_score(y, self.predict(X), sample_weight=sample_weight, **kwargs)
        )

    # ------------------------------------------------------------- save/load
    def save(self, path):
        """Write the fitted estimator to a ``.keras`` file.

        The file is a regular Keras archive (``keras.saving.load_model``
        reads the network) with the estimator's parameters and labels in an
        extra plain-JSON entry; :func:`sktransfer.load` restores the fitted
        estimator. Nothing is pickled.

        Parameters
        ----------
        path : str or os.PathLike
            Destination, ending in ``.keras``.

        Returns
        -------
        path : str
            The path written.
        """
        from ._io import save_estimator

        check_is_fitted(self, "model_")
        return save_estimator(self, path)

    def _get_fitted_state(self):
        from ._io import encode_array

        state = {
            "classes_": encode_array(self.classes_),
            "n_features_in_": int(self.n_features_in_),
            "input_shape_": list(self.input_shape_),
            "history_": self.history_,
        }
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(c) for c in self.feature_names_in_]
        return state

    def _set_fitted_state(self, state, model):
        from ._io import decode_array

        self.classes_ = decode_array(state["classes_"])
        self.n_classes_ = len(self.classes_)
        self.n_features_in_ = state["n_features_in_"]
        self.input_shape_ = tuple(state["input_shape_"])
        self.history_ = state["history_"]
        if "feature_names_in_" in state:
            self.feature_names_in_ = np.asarray(
                state["feature_names_in_"], dtype=object
            )
        self.model_ = model
