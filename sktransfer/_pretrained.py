"""PretrainedClassifier: train a Keras network from scratch, the sklearn way."""

from __future__ import annotations

import numbers

import keras
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval

from ._base import KerasClassifierBase, temporary_seed
from ._sources import copy_model

__all__ = ["PretrainedClassifier", "build_default_network"]


def build_default_network(
    input_shape, n_classes, *, hidden_layer_sizes, activation, dropout, seed
):
    """The default network for ``input_shape``: an MLP or a small CNN.

    2-D input (a table) gets an MLP with ``hidden_layer_sizes``; image
    arrays ``(h, w)`` or ``(h, w, c)`` get two convolution blocks followed by
    that MLP. Every random op is seeded from ``seed``, so the build touches
    no global RNG.
    """
    seeds = iter(range(seed, seed + 1000))

    def init():
        return keras.initializers.GlorotUniform(seed=next(seeds))

    inputs = keras.Input(shape=tuple(input_shape))
    x = inputs
    if len(input_shape) in (2, 3):
        if len(input_shape) == 2:
            x = keras.layers.Reshape((*input_shape, 1))(x)
        for filters in (32, 64):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                activation=activation,
                kernel_initializer=init(),
            )(x)
            if min(x.shape[1], x.shape[2]) >= 4:
                x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Flatten()(x)
    elif len(input_shape) != 1:
        raise ValueError(
            f"The default network handles tables (n, features) and images "
            f"(n, h, w) or (n, h, w, c); got samples of shape {tuple(input_shape)}."
            " Pass your own network with model=."
        )
    for units in hidden_layer_sizes:
        x = keras.layers.Dense(units, activation=activation, kernel_initializer=init())(
            x
        )
        if dropout:
            x = keras.layers.Dropout(dropout, seed=next(seeds))(x)
    outputs = keras.layers.Dense(
        n_classes, activation="softmax", kernel_initializer=init()
    )(x)
    return keras.Model(inputs, outputs)


class PretrainedClassifier(ClassifierMixin, KerasClassifierBase):
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
        before every fit and never trained in place. A callable returning a
        model is called like scikeras does, with ``meta`` (``n_features_in_``,
        ``n_classes_``, ``input_shape_``, ``classes_``) and ``model__*``
        parameters if it accepts them.
    hidden_layer_sizes : tuple of int, default=(128, 64)
        Units of the default network's hidden Dense layers.
    activation : str, default="relu"
        Activation of the hidden layers.
    dropout : float, default=0.0
        Dropout rate after each hidden Dense layer.
    optimizer : str, keras.optimizers.Optimizer or class, default="adam"
        Keras optimizer; ``optimizer__<name>`` parameters are routed to it. An
        instance is copied, never reused.
    learning_rate : float, default=1e-3
        Learning rate given to the optimizer.
    epochs : int, default=200
        Maximum number of passes over the training data.
    batch_size : int, default=32
        Minibatch size (capped at the number of training samples).
    early_stopping : bool, default=True
        Hold out ``validation_split`` of the data (stratified), stop when its
        loss has not improved for ``patience`` epochs and restore the best
        weights. Skipped when the held-out part would have fewer than 20
        samples.
    validation_split : float, default=0.1
        Fraction held out for early stopping.
    patience : int, default=10
        Epochs without improvement before stopping.
    callbacks : list, dict or keras.callbacks.Callback, default=None
        Extra Keras callbacks; ``callbacks__*`` parameters are routed.
    class_weight : dict or "balanced", default=None
        Weights per class, multiplied into ``sample_weight``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, dropout, shuffling and the validation
        split. Process-wide state (global RNGs, TensorFlow determinism) is
        left as it was.
    verbose : int, default=0
        Keras' verbosity during fit.
    distribution_strategy : tf.distribute.Strategy, default=None
        Build and train the network under this strategy's scope, e.g.
        ``tf.distribute.MirroredStrategy()`` across the GPUs of one machine.
    **kwargs : dict
        Routed parameters: ``optimizer__*``, ``callbacks__*``, ``model__*``,
        ``compile__*``, ``fit__*``, ``score__*``.

    Attributes
    ----------
    model_ : keras.Model
        The trained network.
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
        Keras training history (``loss``, and ``val_loss`` with early stopping).

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
        learning_rate=1e-3,
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
                hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                activation=self.activation,
                dropout=self.dropout,
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
        self._check_network(model)
        return model

    def _check_network(self, model):
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(
                f"model has {len(model.inputs)} inputs and {len(model.outputs)} "
                "outputs; PretrainedClassifier needs exactly one of each."
            )
        expected = tuple(model.inputs[0].shape[1:])
        if len(expected) != len(self.input_shape_) or any(
            e is not None and e != g for e, g in zip(expected, self.input_shape_)
        ):
            raise ValueError(
                f"X has samples of shape {self.input_shape_}, but the model "
                f"expects {expected}. Reshape X or change the model's Input."
            )
        units = model.outputs[0].shape[-1]
        if units != self.n_classes_ and not (units == 1 and self.n_classes_ == 2):
            raise ValueError(
                f"model's output has {units} units, but y has {self.n_classes_} "
                "classes. End the model with Dense(n_classes, "
                "activation='softmax'), or leave model=None."
            )

    def _fit_model(self, X, y, sample_weight, seed):
        model = self._build(seed)
        split = self._validation_split(y, seed)
        self.history_ = self._train(
            model,
            X,
            y,
            sample_weight,
            seed=seed,
            epochs=self.epochs,
            learning_rate=self.learning_rate,
            split=split,
        )
        self.model_ = model

    # ClassifierMixin's score comes first in the MRO: use the routed one
    score = KerasClassifierBase.score
