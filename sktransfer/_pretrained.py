"""PretrainedClassifier: train a Keras network from scratch, the sklearn way."""

from __future__ import annotations

import numbers

import keras
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval

from ._classifier import KerasClassifierBase, RoutedScoreMixin
from ._docs import fill_doc
from ._network import (
    build_default_network,
    check_classifier_network,
    with_known_input,
)
from ._runtime import temporary_seed
from ._sources import copy_model
from ._training import train, validation_split
from ._validation import plain

__all__ = ["PretrainedClassifier"]


@fill_doc
class PretrainedClassifier(RoutedScoreMixin, ClassifierMixin, KerasClassifierBase):
    """A Keras network trained from scratch, as a scikit-learn classifier.

    The first half of transfer learning: pretrain on the large source task,
    then hand the fitted estimator (or its saved file) to
    :class:`TransferClassifier`. With no arguments it is a drop-in for
    :class:`~sklearn.neural_network.MLPClassifier`: an MLP with early
    stopping on a stratified validation split (skipped on data too small to
    validate on).

    Parameters
    ----------
    model : None, keras.Model or callable, default=None
        ``None`` builds the default network from the data: an MLP for 2-D
        ``X``, a small CNN for image arrays ``(n, h, w)`` / ``(n, h, w, c)``.
        A ``keras.Model`` (its output must have one unit per class) is copied
        before every fit and never trained in place; a subclassed model is
        copied through its ``get_config()`` (Keras' automatic one keeps
        only the constructor's defaults: write one that returns the
        arguments, and register the class with
        ``keras.saving.register_keras_serializable``) and trained inside a
        functional wrapper, which ``model_`` then is. A callable returning a
        model is called like scikeras does, with ``meta`` (``n_features_in_``,
        ``n_classes_``, ``input_shape_``, ``classes_``) and ``model__*``
        parameters if it accepts them.
    hidden_layer_sizes : tuple of int, default=(128, 64)
        Units of the default network's hidden Dense layers.
    activation : str, default="relu"
        Activation of the hidden layers.
    dropout : float, default=0.0
        Dropout rate after each hidden Dense layer.
    {optimizer_parameters}
    epochs : int, default=200
        Maximum number of passes over the training data.
    {training_parameters}
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, shuffling and the validation
        split. Process-wide state (global RNGs, TensorFlow determinism) is
        left as it was.
    {runtime_parameters}
    **kwargs : dict
        Routed parameters: ``optimizer__*``, ``callbacks__*``, ``model__*``,
        ``compile__*``, ``fit__*``, ``score__*``.

    Attributes
    ----------
    model_ : keras.Model
        The trained network.
    {fitted_attributes}
    history_ : dict
        Keras training history (``loss``, and ``val_loss`` with early stopping):
        one entry per epoch, except where no epoch boundary is needed (no
        validation, callbacks or ``fit__`` keywords): there the epochs run
        in up to 10 equal chunks, compiled calls of many steps each, and each
        entry is the mean loss over its chunk.

    See Also
    --------
    TransferClassifier : Reuse the fitted network on a new task.
    sklearn.neural_network.MLPClassifier : scikit-learn's own MLP.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sktransfer import PretrainedClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = PretrainedClassifier(hidden_layer_sizes=(16,), epochs=5,
    ...                            random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **KerasClassifierBase._parameter_constraints,
        "model": [None, keras.Model, callable],
        "hidden_layer_sizes": ["array-like"],
        "activation": [str, callable],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        model=None,
        *,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        dropout=0.0,
        optimizer="adam",
        learning_rate=None,
        epochs=200,
        batch_size=32,
        early_stopping=True,
        validation_split=0.1,
        patience=10,
        callbacks=None,
        class_weight=None,
        random_state=None,
        verbose=0,
        distribution_strategy=None,
        **kwargs,
    ):
        self.model = model
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_split = validation_split
        self.patience = patience
        self.callbacks = callbacks
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose
        self.distribution_strategy = distribution_strategy
        vars(self).update(kwargs)

    # a Keras model given as ``model`` is shared by clones, not deep-copied:
    # every fit trains a private copy of it, so sharing is safe and cheap
    _shared_params = ("model",)

    def _check_fit_inputs(self, X):
        sizes = self.hidden_layer_sizes
        if self.model is None and not all(
            isinstance(s, numbers.Integral) and s > 0 for s in sizes
        ):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {sizes!r}."
            )

    def _build(self, seed):
        if self.model is None:
            return build_default_network(
                self.input_shape_,
                self.n_classes_,
                hidden_layer_sizes=plain(tuple(self.hidden_layer_sizes)),
                activation=self.activation,
                dropout=plain(self.dropout),
                seed=seed,
            )
        if isinstance(self.model, keras.Model):
            with temporary_seed(seed):
                model = copy_model(self.model)
        else:
            model = self._call_model_factory(
                self.model,
                seed,
                n_features_in_=self.n_features_in_,
                n_classes_=self.n_classes_,
                input_shape_=self.input_shape_,
                classes_=self.classes_,
            )
            # The factory may hand back a model it keeps (a closure, a cache,
            # a module global): comparing with ``self.model`` (the callable)
            # never caught that, and such a model was trained in place, with
            # every CV fold continuing from the previous one. Always train a
            # private copy (cheap next to a fit), seeded like the build.
            with temporary_seed(seed):
                model = copy_model(model)
        # a subclassed model gets a functional wrapper (model_ is then that
        # wrapper, with the user's model class as its one inner layer)
        model = with_known_input(model, self.input_shape_)
        check_classifier_network(model, self.input_shape_, self.n_classes_)
        return model

    def _fit_model(self, X, y, sample_weight, seed):
        model = self._build(seed)
        X = self._as_network_input(X, model)
        split = validation_split(
            y,
            early_stopping=self.early_stopping,
            fraction=self.validation_split,
            seed=seed,
        )
        self.history_ = train(
            model,
            X,
            y,
            sample_weight,
            self._train_spec(),
            seed=seed,
            epochs=int(self.epochs),
            learning_rate=self._learning_rate(),
            split=split,
        )
        self.model_ = model
