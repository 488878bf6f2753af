"""``sktransfer.load``: restore an estimator written by ``save``."""

from __future__ import annotations

import os

from ._archive import decode_params, read_meta
from ._files import load_keras_model
from ._keras_compat import without_tensorflow
from ._pretrained import PretrainedClassifier
from ._transfer import TransferClassifier

__all__ = ["load"]

_CLASSES = {cls.__name__: cls for cls in (PretrainedClassifier, TransferClassifier)}


def load(path, *, allow_unsafe=False, custom_objects=None):
    """Load an estimator written by ``save``, fitted and ready to predict.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file written by ``PretrainedClassifier.save`` or
        ``TransferClassifier.save``.
    allow_unsafe : bool, default=False
        Turn Keras' ``safe_mode`` off. Leave it off for files you did not
        write: with it on, a file holding Python code (a ``Lambda`` layer) is
        refused instead of executed.
    custom_objects : dict, default=None
        Custom Keras classes the model needs.

    Returns
    -------
    estimator : PretrainedClassifier or TransferClassifier
        The fitted estimator.

    Raises
    ------
    ValueError
        When the file is missing, corrupt, or a plain Keras model rather
        than a saved estimator (the message says how to use it instead).

    See Also
    --------
    PretrainedClassifier.save : Write an estimator.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sktransfer import PretrainedClassifier, load
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = PretrainedClassifier(hidden_layer_sizes=(8,), epochs=2,
    ...                            random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "iris.keras")
    >>> _ = clf.save(path)
    >>> restored = load(path)
    >>> bool((restored.predict(X) == clf.predict(X)).all())
    True
    """
    path = os.fspath(path)
    with without_tensorflow():
        model = load_keras_model(
            path, allow_unsafe=allow_unsafe, custom_objects=custom_objects
        )
    meta = read_meta(path, _CLASSES)
    try:
        estimator = _CLASSES[meta["class"]](**decode_params(meta))
        estimator._set_fitted_state(meta["fitted"], model)
    except (KeyError, TypeError, ValueError) as exc:
        # incomplete or hand-edited metadata: a bare KeyError('fitted') is
        # no help to the user
        raise ValueError(
            f"{path!r} has incomplete sktransfer metadata ({type(exc).__name__}: "
            f"{exc}). Re-save the estimator with estimator.save(path)."
        ) from None
    return estimator
