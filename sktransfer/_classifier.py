"""The classifiers' shared behaviour: fit orchestration, predict, save.

Everything here works on plain parameters and the package's own modules;
what comes from scikeras (parameter routing, target encoding, optimizers
and callbacks from parameters) is inherited from ``_base.ScikerasSeam``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings

import keras
import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._archive import decode_array, encode_array, encode_params, write_archive
from ._base import ScikerasSeam
from ._keras_compat import without_tensorflow
from ._network import defined_tensors, embedding_vocabulary
from ._runtime import fresh_seed, run_inference
from ._training import TrainSpec, check_fit_kwargs
from ._validation import (
    as_input_dtype,
    check_source_columns,
    check_strategy_backend,
    check_targets,
    combine_weights,
    validate_X,
)

__all__ = ["KerasClassifierBase", "RoutedScoreMixin"]


def _input_dtype(network):
    """``network``'s input dtype; float32 for one without a defined input."""
    inputs = defined_tensors(network, "inputs")
    return str(inputs[0].dtype) if inputs else "float32"


class RoutedScoreMixin:
    """``score`` with ``score__*`` parameters routed to ``accuracy_score``.

    Put it left of ``ClassifierMixin``, whose own ``score`` would otherwise
    win the method lookup and ignore the routing.
    """

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``(X, y)``; ``score__*`` parameters are routed.

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
        kwargs = self._routed("score")
        return float(
            accuracy_score(y, self.predict(X), sample_weight=sample_weight, **kwargs)
        )


class KerasClassifierBase(ScikerasSeam):
    """Shared base of sktransfer's classifiers (put ``ClassifierMixin`` first).

    Subclasses implement ``_fit_model(X, y, sample_weight, seed)``, which
    builds and trains ``self.model_``, usually through
    ``_training.train(..., self._train_spec())``. ``X`` arrives validated but
    not cast: ``_as_network_input(X, network)`` casts it to the built
    network's input dtype (float32, or integer ids for an ``Embedding``),
    which prediction then follows.
    """

    _parameter_constraints: dict = {
        "optimizer": [str, type, keras.optimizers.Optimizer],
        "learning_rate": [
            Interval(numbers.Real, 0, None, closed="neither"),
            keras.optimizers.schedules.LearningRateSchedule,
            callable,
            None,
        ],
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
        # cast once the network (and its input dtype) is built: _fit_model
        X, y = validate_X(self, X, reset=True, y=y, dtype=None)
        check_source_columns(self)
        check_targets(y, type(self).__name__)
        self.classes_, y_encoded = self._encode_targets(y)
        self.n_classes_ = len(self.classes_)
        self.input_shape_ = tuple(int(d) for d in X.shape[1:])
        weights = combine_weights(
            X, y_encoded, sample_weight, self.class_weight, self.classes_
        )
        self._check_fit_inputs(X)
        seed = fresh_seed(self.random_state)
        strategy = self.distribution_strategy
        check_strategy_backend(strategy, type(self).__name__)
        # the network is built, compiled and trained under the strategy's scope
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope, without_tensorflow():
            self._fit_model(X, y_encoded, weights, seed)
        return self

    def _check_fit_inputs(self, X):
        """Hook: subclasses check X against their parameters before training."""

    def _as_network_input(self, X, network):
        """X cast to ``network``'s input dtype, remembered for prediction.

        A network without a defined input (subclassed) takes float32.
        """
        self._remember_input(network)
        return as_input_dtype(
            X, self._input_dtype, type(self).__name__, self._vocabulary
        )

    def _remember_input(self, network):
        """What predict checks X against: the input dtype and the vocabulary
        of an Embedding the input feeds (after fit, and after load)."""
        self._input_dtype = _input_dtype(network)
        self._vocabulary = embedding_vocabulary(network)

    def _fit_model(self, X, y, sample_weight, seed):  # pragma: no cover
        raise NotImplementedError

    def _train_spec(self):
        """What ``_training.train`` needs, decided from the parameters."""
        check_fit_kwargs(self._routed("fit"))
        return TrainSpec(
            make_optimizer=self._make_optimizer,
            n_classes=self.n_classes_,
            batch_size=int(self.batch_size),
            early_stopping=bool(self.early_stopping),
            validation_split=float(self.validation_split),
            patience=int(self.patience),
            callbacks=self._user_callbacks(),
            verbose=self.verbose,
            compile_kwargs=self._routed("compile"),
            fit_kwargs=self._routed("fit"),
        )

    # --------------------------------------------------------------- predict
    def _validated(self, X):
        return validate_X(
            self,
            X,
            reset=False,
            input_shape=self.input_shape_,
            dtype=self.__dict__.get("_input_dtype", "float32"),
            vocabulary=self.__dict__.get("_vocabulary"),
        )

    def _forward(self, X):
        """Network output for validated X."""
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
        check_is_fitted(self, "classes_")
        X = self._validated(X)
        with without_tensorflow():
            raw = self._forward(X).astype(np.float64)
        if raw.ndim == 1 or raw.shape[1] == 1:
            raw = raw.reshape(-1, 1)
            raw = np.hstack([1.0 - raw, raw])
        raw = np.clip(raw, 0.0, None)
        raw /= raw.sum(axis=1, keepdims=True)
        return raw

    def predict_log_proba(self, X):
        """Log of the class probabilities for X, as ``MLPClassifier`` has.

        Parameters
        ----------
        X : array-like
            Input data, as for :meth:`predict_proba`.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``, columns ordered as ``classes_``; a
            probability of exactly 0 gives ``-inf``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

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
        check_is_fitted(self, "classes_")
        path = os.fspath(path)
        if not path.endswith(".keras"):
            raise ValueError(
                f"save path {path!r} must end in '.keras' (a Keras archive that "
                "also holds the estimator's parameters)."
            )
        params, dropped = encode_params(self.get_params(deep=False))
        if dropped:
            warnings.warn(
                f"{type(self).__name__}.save: parameters {dropped} are not plain "
                "values (objects, callables) and are stored as None; the "
                "loaded estimator predicts the same but refitting it needs them "
                "set again with set_params.",
                UserWarning,
                stacklevel=2,
            )
        with without_tensorflow():
            return write_archive(
                self.model_,
                path,
                class_name=type(self).__name__,
                params=params,
                dropped=dropped,
                fitted=self._get_fitted_state(),
            )

    def _get_fitted_state(self):
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
        self._remember_input(model)
