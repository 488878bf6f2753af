"""Input validation: X, y and weights, with errors that say what to do.

Every message here is produced by checking the condition itself, not by
matching the wording of scikit-learn's or Keras' errors, so an upstream
rewording cannot silently drop the hint. Shape messages have one home:
:func:`shape_error`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

from ._backend import backend_name

__all__ = [
    "check_source_columns",
    "check_strategy_backend",
    "as_input_dtype",
    "plain",
    "check_network_input",
    "check_targets",
    "combine_weights",
    "shape_error",
    "validate_X",
]


def plain(value):
    """Python scalars for NumPy scalars, also inside tuples and lists.

    Keras rejects some NumPy scalars (an optimizer's ``np.float32`` learning
    rate), and ``RandomizedSearchCV`` with NumPy-built grids produces them;
    every numeric parameter passes through this before Keras sees it.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(plain(item) for item in value)
    return value


def shape_error(got, expected, owner, fix="Pass data shaped like the training data."):
    """The one ``ValueError`` for samples of the wrong shape.

    Parameters
    ----------
    got, expected : tuple
        One sample's shape in X, and the shape ``owner`` expects.
    owner : str
        Who expects it: ``"PretrainedClassifier was fitted on sample shape"``,
        ``"the pretrained network expects"``...
    fix : str
        The sentence that says what to do.
    """
    return ValueError(
        f"X has sample shape {tuple(got)}, but {owner} {tuple(expected)}. {fix}"
    )


def _reshape_hint(expected):
    return f"Reshape X, e.g. X.reshape(len(X), *{tuple(expected)})."


def check_network_input(model, input_shape, what):
    """``ValueError`` unless ``model``'s single input takes ``input_shape``."""
    expected = tuple(model.inputs[0].shape[1:])
    if len(expected) != len(input_shape) or any(
        e is not None and e != g for e, g in zip(expected, input_shape)
    ):
        raise shape_error(
            input_shape,
            expected,
            f"{what} expects",
            "Reshape or resize X to the network's input "
            "(e.g. X.reshape(len(X), *shape)), or change the model's Input.",
        )


def _check_raw(X, name):
    """Checks on X before scikit-learn converts it: sparse, non-numeric.

    Returns X's shape (None when X is no array at all).
    """
    if sp.issparse(X):
        raise TypeError(
            f"{name} needs dense input, but X is a sparse {type(X).__name__}. "
            "Convert it with X.toarray() (or add a densifying step to your "
            "Pipeline)."
        )
    try:
        array = np.asarray(X)
    except (ValueError, TypeError):  # ragged lists: scikit-learn says it
        return None
    if array.dtype.kind in "OUSV":
        try:
            array.astype(np.float64)
        except ValueError:  # text; objects that are no number at all are a
            # TypeError, left to scikit-learn's conversion below
            raise ValueError(
                f"{name} needs numeric features, but X holds non-numeric values "
                f"(dtype {array.dtype}). Encode them first, e.g. with "
                "OneHotEncoder or OrdinalEncoder in a Pipeline."
            ) from None
    return array.shape


def _check_shape(shape, expected, name):
    # one sample (1-D X) is left to scikit-learn's "Reshape your data" error
    if shape is None or len(shape) < 2 or tuple(shape[1:]) == tuple(expected):
        return
    got = tuple(shape[1:])
    if len(expected) > 1:
        fix = _reshape_hint(expected)
    elif len(got) == 1:
        fix = (
            f"X has {got[0]} features, but {name} is expecting {expected[0]} "
            "features as input. Pass data shaped like the training data."
        )
    else:
        fix = "Pass data shaped like the training data."
    raise shape_error(got, expected, f"{name} was fitted on sample shape", fix)


def _check_finite(X, name):
    if X.dtype.kind not in "fc":
        return
    finite = np.isfinite(X)
    if finite.all():
        return
    if np.isnan(X).any():
        raise ValueError(
            f"Input X contains NaN. {name} needs complete features: impute the "
            "missing values first (e.g. SimpleImputer in a Pipeline) or drop "
            "those rows."
        )
    raise ValueError(
        f"Input X contains infinity. {name} needs finite features: replace or "
        "drop infinite values first (e.g. np.nan_to_num, or clip them in a "
        "Pipeline step)."
    )


def validate_X(
    estimator, X, *, reset, y=None, dtype="float32", input_shape=None, vocabulary=None
):
    """Validate X (and y) for ``estimator``; return them cast to ``dtype``.

    scikit-learn's ``validate_data`` records or checks ``n_features_in_``
    and ``feature_names_in_``; the checks it would phrase for tables only
    (sample shape, finiteness) are made here first, for images too.
    ``input_shape`` is the fitted sample shape (checked when not ``reset``),
    ``vocabulary`` the size of an Embedding the ids feed (see
    :func:`as_input_dtype`). ``dtype=None`` leaves the (numeric) X as it
    is, for a caller that casts it with :func:`as_input_dtype` once the
    network's input dtype is known.
    """
    name = type(estimator).__name__
    shape = _check_raw(X, name)
    if not reset and input_shape is not None:
        _check_shape(shape, input_shape, name)
    kwargs = dict(
        reset=reset,
        allow_nd=True,
        dtype="numeric",
        accept_sparse=False,
        ensure_all_finite=False,  # checked below, with the fix in the message
    )
    if y is None:
        X = validate_data(estimator, X, **kwargs)
    else:
        X, y = validate_data(estimator, X, y, **kwargs)
    _check_finite(X, name)
    if dtype is not None:
        X = as_input_dtype(X, dtype, name, vocabulary)
    return X if y is None else (X, y)


def as_input_dtype(X, dtype, name, vocabulary=None):
    """Validated X cast to a network's input ``dtype``, values checked.

    Floats: values beyond the target's range are an error, not ``inf``.
    Integers (token or category ids): non-integer or out-of-range values
    are an error, not silently truncated; with ``vocabulary`` (the
    ``input_dim`` of an Embedding the input feeds) ids must lie in
    ``0..vocabulary - 1``, where TensorFlow would fail mid-training with an
    ``InvalidArgumentError``. ``name`` is the estimator's.
    """
    target = np.dtype(dtype)
    if target.kind in "iu":
        X = _to_integer(X, target, name)
        if vocabulary is not None and X.size and (X.min() < 0 or X.max() >= vocabulary):
            raise ValueError(
                f"X holds ids {X.min()}..{X.max()}, but {name}'s network "
                f"embeds ids 0..{vocabulary - 1} (its Embedding's input_dim is "
                f"{vocabulary}). Map ids outside the vocabulary to a reserved "
                "one (e.g. 0 or an out-of-vocabulary token), as the tokenizer "
                "that built the source's vocabulary does."
            )
        return X
    if target.kind != "f":
        return np.asarray(X, dtype=target)
    with np.errstate(over="ignore"):  # overflow is reported just below
        converted = np.asarray(X, dtype=target)
    if (
        X.dtype.kind == "f"
        and X.dtype.itemsize > target.itemsize
        and not np.isfinite(converted).all()
    ):
        # finite float64 values beyond float32's range (|x| > 3.4e38)
        # become inf in the cast and then NaN probabilities, silently
        raise ValueError(
            f"X holds values too large for {target} (the network's "
            f"precision): largest magnitude {np.abs(X).max():.3g}. Scale the "
            "features first, e.g. with StandardScaler in a Pipeline."
        )
    return converted


def _to_integer(X, target, name):
    """X cast to an integer input dtype (token or category ids), exactly."""
    if X.dtype.kind == "f" and not np.array_equal(X, np.round(X)):
        raise ValueError(
            f"{name}'s network takes {target} inputs (token or category ids), "
            "but X holds non-integer values. Pass integer ids."
        )
    info = np.iinfo(target)
    if X.size and (X.min() < info.min or X.max() > info.max):
        raise ValueError(
            f"X holds ids outside the range of {target}, the network's input "
            f"dtype ({X.min()}..{X.max()})."
        )
    return np.asarray(X, dtype=target)


def check_targets(y, name):
    """``ValueError`` unless y holds class labels of at least two classes."""
    try:
        check_classification_targets(y)
    except ValueError as exc:
        # scikit-learn's text stays first (callers may match "Unknown label
        # type"); ours only adds what to do instead
        raise ValueError(
            f"{exc} {name} is a classifier: y must hold class labels (ints, "
            "strings or bools). For a continuous target use a regressor, or "
            "bin y into classes first (e.g. KBinsDiscretizer)."
        ) from None
    classes = np.unique(y)
    if classes.size < 2:
        label = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]
        raise ValueError(
            f"{name} needs samples of at least 2 classes, but y has only 1 class "
            f"({label!r}). Check the labels, or the split that produced "
            "this training set."
        )


def combine_weights(X, y_encoded, sample_weight, class_weight, classes):
    """``sample_weight`` times ``class_weight``, as a new float32 array."""
    weights = _check_sample_weight(
        sample_weight, X, dtype=np.float32, ensure_non_negative=True, copy=True
    )
    if class_weight is not None:
        if isinstance(class_weight, dict):
            index = {label: i for i, label in enumerate(classes)}
            missing = [k for k in class_weight if k not in index]
            if missing:
                raise ValueError(
                    f"class_weight names class {missing[0]!r}, which is not "
                    f"among the labels {np.asarray(classes).tolist()}."
                )
            class_weight = {index[k]: v for k, v in class_weight.items()}
        weights = weights * compute_sample_weight(class_weight, y_encoded)
    if np.unique(y_encoded[weights > 0]).size < 2:
        raise ValueError(
            "sample_weight leaves fewer than 2 classes with positive weight "
            "(only 1 class left); training needs at least 2 classes."
        )
    return weights.astype(np.float32)


def check_source_columns(estimator):
    """``ValueError`` where X's columns are the source's, in another order.

    A fitted source estimator remembers its DataFrame's column names; the
    network reads columns by position, so the same names in another order
    would silently feed every feature to the wrong input. Other names are
    the user's own choice (a target table may name its columns differently)
    and are taken by position.
    """
    source = getattr(estimator, "pretrained", None)
    expected = getattr(source, "feature_names_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    if expected is None or names is None:
        return
    expected, names = [str(n) for n in expected], [str(n) for n in names]
    if names != expected and sorted(names) == sorted(expected):
        moved = [n for n, e in zip(names, expected) if n != e]
        raise ValueError(
            f"X has the source's columns in another order ({len(moved)} are "
            f"not where the source had them, e.g. {moved[:3]}), and the "
            "network reads columns by position. Reorder them as the source "
            f"{type(source).__name__} was fitted: X[source.feature_names_in_]."
        )


def check_strategy_backend(strategy, name):
    """``ValueError`` for a ``distribution_strategy`` Keras cannot use here.

    A ``tf.distribute`` strategy works only when Keras runs on TensorFlow.
    """
    backend = backend_name()
    if strategy is not None and backend != "tensorflow":
        raise ValueError(
            f"{name}(distribution_strategy=...) needs Keras' TensorFlow backend "
            f"(it is a tf.distribute strategy); Keras runs on {backend!r}. Leave "
            "distribution_strategy=None: on JAX, set a keras.distribution "
            "layout (e.g. keras.distribution.set_distribution("
            "keras.distribution.DataParallel())) before fit; on PyTorch, one "
            "device is used."
        )
