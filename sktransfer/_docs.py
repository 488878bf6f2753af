"""Parameter and attribute documentation shared by the estimators.

Written once here and put into each estimator's docstring by
:func:`fill_doc`, so the classes cannot drift apart in wording.
"""

from __future__ import annotations

import textwrap

__all__ = ["fill_doc"]

_SHARED = {
    "pretrained_parameters": """
pretrained : str, os.PathLike, keras.Model, estimator or callable
    A ``.keras`` / ``.h5`` file, a Keras model (Sequential, functional or
    with nested models such as a ``keras.applications`` network), a
    fitted :class:`PretrainedClassifier`, ``TransferClassifier`` or
    scikeras estimator (its ``model_``), or a callable returning a model.
    Clones of this estimator share it, fitted. As a value in a parameter
    grid, though, a fitted estimator arrives unfitted (``GridSearchCV``
    clones grid values): give ``FrozenEstimator(est)``
    (``sklearn.frozen``), ``est.model_`` or a saved file there.
cut : {"auto", "multi", "scores", "penultimate"}, int, str or None, \
default="auto"
    Which features of the pretrained network to use. Where the network
    ends in a Dense classification head (its old head): ``"scores"`` keeps
    what the source knows about its own classes, its class scores (logits)
    and probabilities; ``"multi"`` (what ``"auto"`` means) adds the pooled
    output of every weighted layer below the old head, as Head2Toe (Evci
    et al., ICML 2022); ``"penultimate"`` drops the old head and what
    follows it and reads the layer below. A network without a Dense head
    is kept whole by all four. An int ``k`` keeps ``model.layers[:k]``; a
    layer name keeps everything up to and including that layer (names win
    over the four words above); ``None`` keeps the whole network. A spatial
    output gets global average pooling (before the new head of
    ``TransferClassifier``; as the output of ``TransferFeatures``). On
    20-row targets a probe on ``"multi"`` beat one on ``"penultimate"`` by
    6 to 13 points (README, "Transfer panel").
""",
    "loading_parameters": """
allow_unsafe : bool, default=False
    Load a ``pretrained`` file with Keras ``safe_mode`` off. Only for
    files you trust: code stored in them (a ``Lambda`` layer) runs.
custom_objects : dict, default=None
    Custom Keras classes needed to load a ``pretrained`` file.
""",
    "training_parameters": """
batch_size : int, default=32
    Minibatch size (capped at the number of training samples). Up to 32
    rows train full-batch; 200 epochs on 20-100 rows are 200-800 Adam
    steps, which matched a tuned learning-rate and L2 grid within 0.5
    points on few-shot digit tasks of 20, 50 and 100 rows.
early_stopping : bool, default=True
    Hold out ``validation_split`` of the data (stratified), stop when its
    loss has not improved for ``patience`` epochs and restore the best
    weights. Skipped when the held-out part would have fewer than 20
    samples: validating on a handful of rows stops runs at chance.
validation_split : float, default=0.1
    Fraction held out for early stopping.
patience : int, default=10
    Epochs without improvement before stopping.
callbacks : list, dict or keras.callbacks.Callback, default=None
    Extra Keras callbacks; ``callbacks__*`` parameters are routed. They see
    the whole network as ``self.model``, also while only a part of it
    trains on cached features.
class_weight : dict or "balanced", default=None
    Weights per class, multiplied into ``sample_weight``.
""",
    "optimizer_parameters": """
optimizer : str, keras.optimizers.Optimizer or class, default="adam"
    Keras optimizer; ``optimizer__<name>`` parameters are routed to it. An
    instance is used as configured, its own learning rate or schedule
    included, but every fit trains with a fresh copy built from its config:
    the object itself is never used, advanced or changed.
learning_rate : float, LearningRateSchedule, callable or None, default=None
    The learning rate. ``None`` means ``optimizer__learning_rate`` if set,
    else the optimizer object's own learning rate (a float, a
    ``keras.optimizers.schedules.LearningRateSchedule`` or a callable),
    else 1e-3. When set, it replaces the learning rate (or schedule) of an
    optimizer object, so a grid over ``learning_rate`` works with a
    configured optimizer object too. Setting both ``learning_rate`` and
    ``optimizer__learning_rate`` raises ``ValueError``. A schedule is
    copied per fit and starts at step 0 in every training phase.
""",
    "runtime_parameters": """
verbose : int, default=0
    Keras' verbosity during fit.
distribution_strategy : tf.distribute.Strategy, default=None
    Build and train the network under this strategy's scope, e.g.
    ``tf.distribute.MirroredStrategy()`` across the GPUs of one machine.
    TensorFlow backend only (a ``ValueError`` on JAX and PyTorch); on JAX,
    ``keras.distribution.set_distribution(...)`` before ``fit`` spreads
    training over devices instead.
""",
    "fitted_attributes": """
classes_ : ndarray of shape (n_classes,)
    Class labels.
n_classes_ : int
    Number of classes.
n_features_in_ : int
    Number of features (for images: the height) seen in fit.
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Column names, when X was a DataFrame with string column names.
input_shape_ : tuple of int
    Shape of one sample seen in fit.
""",
}


def fill_doc(cls):
    """Class decorator: replace ``{name}`` lines with the shared text.

    A placeholder stands alone on its line, indented like the entries
    around it; the shared text takes that indentation.
    """
    doc = cls.__doc__
    for name, text in _SHARED.items():
        marker = "{" + name + "}"
        for line in doc.splitlines():
            if line.strip() == marker:
                indent = line[: len(line) - len(line.lstrip())]
                block = textwrap.indent(text.strip("\n"), indent)
                doc = doc.replace(line, block)
    cls.__doc__ = doc
    return cls
