"""Save and load: Keras-native files, plain-JSON metadata, ``safe_mode`` on.

An estimator is saved as one ``.keras`` archive: Keras writes the model, and
the estimator's parameters and fitted labels go into an extra
``sktransfer.json`` entry of the same zip file. Nothing is pickled, and
loading runs no code from the file unless the caller opts out of Keras'
``safe_mode``.
"""

from __future__ import annotations

import json
import os
import re
import zipfile

import keras
import numpy as np

__all__ = ["load", "load_keras_model", "save_estimator"]

_META_ENTRY = "sktransfer.json"
_FORMAT_VERSION = 1


def _registry():
    from ._pretrained import PretrainedClassifier

    classes = {"PretrainedClassifier": PretrainedClassifier}
    try:
        from ._transfer import TransferClassifier
    except ImportError:  # pragma: no cover - during bootstrapping
        pass
    else:
        classes["TransferClassifier"] = TransferClassifier
    return classes


def load_keras_model(
    path, *, allow_unsafe=False, custom_objects=None, what="model", compile=False
):
    """Load a Keras model file with clear errors and ``safe_mode`` on.

    Parameters
    ----------
    path : str
        A ``.keras`` archive or a legacy ``.h5`` file.
    allow_unsafe : bool, default=False
        Turn Keras' ``safe_mode`` off. Only for files you trust: a ``Lambda``
        layer's Python code then runs on load.
    custom_objects : dict, default=None
        Custom layer classes the file refers to.
    what : str, default="model"
        Name of the argument, for error messages.
    compile : bool, default=False
        Whether to restore the optimizer and loss.

    Returns
    -------
    model : keras.Model
    """
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{what} file {path!r} does not exist. Pass the path of a model saved "
            "with `model.save('name.keras')` or `estimator.save(...)`."
        )
    if os.path.isdir(path):
        raise ValueError(
            f"{what} path {path!r} is a directory; Keras 3 loads single .keras "
            "or .h5 files. Re-save the model with `model.save('name.keras')`."
        )
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".keras", ".h5", ".hdf5"):
        raise ValueError(
            f"{what} file {path!r} has suffix {suffix!r}; expected a .keras "
            "archive or a legacy .h5 file."
        )
    if suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{what} file {path!r} is not a valid .keras archive (not a zip "
            "file: truncated or not written by Keras). Re-save the model with "
            "`model.save('name.keras')`."
        )
    try:
        model = keras.saving.load_model(
            path,
            custom_objects=custom_objects,
            compile=compile,
            safe_mode=not allow_unsafe,
        )
    except (ValueError, TypeError) as exc:
        text = str(exc)
        if "safe_mode" in text or "arbitrary code" in text:
            raise ValueError(
                f"Refusing to load {what} file {path!r}: it contains Python code "
                "(for example a Lambda layer) that would run when the file is "
                "loaded, which is unsafe for files you did not write. If you "
                "trust this file, pass allow_unsafe=True."
            ) from None
        if "Could not locate" in text or "Unknown layer" in text:
            # Keras' first line names the enclosing Functional model, not the
            # missing class; the class name is further down its message
            missing = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
            name = missing.group(1) if missing else "Name"
            raise ValueError(
                f"{what} file {path!r} uses a custom object Keras does not know"
                f"{f' ({name!r})' if missing else ''}: Keras could not locate "
                f"its class. Pass it with custom_objects={{{name!r}: {name}}}, "
                "or register it with @keras.saving.register_keras_serializable()."
            ) from None
        raise ValueError(
            f"Could not load {what} file {path!r} as a Keras model: "
            f"{text.splitlines()[0] if text else type(exc).__name__}"
        ) from None
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ValueError(
            f"{what} file {path!r} is not a readable Keras model file "
            f"(truncated or corrupt: {exc}). Re-save the model."
        ) from None
    if not isinstance(model, keras.Model):  # pragma: no cover - defensive
        raise ValueError(f"{what} file {path!r} does not hold a Keras model.")
    return model


def _jsonable(value):
    """Whether ``value`` survives a JSON round trip unchanged."""
    try:
        return json.loads(json.dumps(value)) == (
            list(value) if isinstance(value, tuple) else value
        )
    except (TypeError, ValueError):
        return False


def encode_array(values):
    values = np.asarray(values)
    if values.dtype == object:
        kind = "object"
    else:
        kind = values.dtype.str
    return {"dtype": kind, "values": values.tolist()}


def decode_array(spec):
    if spec["dtype"] == "object":
        values = np.empty(len(spec["values"]), dtype=object)
        values[:] = spec["values"]
        return values
    return np.asarray(spec["values"], dtype=np.dtype(spec["dtype"]))


def save_estimator(estimator, path):
    """Write a fitted estimator to ``path`` (see ``Base.save``)."""
    import warnings

    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(
            f"save path {path!r} must end in '.keras' (a Keras archive that "
            "also holds the estimator's parameters)."
        )
    params, dropped = {}, []
    for name, value in estimator.get_params(deep=False).items():
        if _jsonable(value):
            params[name] = list(value) if isinstance(value, tuple) else value
            if isinstance(value, tuple):
                params.setdefault("__tuples__", []).append(name)
        else:
            dropped.append(name)
    if dropped:
        warnings.warn(
            f"{type(estimator).__name__}.save: parameters {dropped} are not plain "
            "values (objects, callables) and are stored as None; the "
            "loaded estimator predicts the same but refitting it needs them set "
            "again with set_params.",
            UserWarning,
            stacklevel=3,
        )
    meta = {
        "format": "sktransfer",
        "version": _FORMAT_VERSION,
        "class": type(estimator).__name__,
        "params": params,
        "dropped_params": dropped,
        "fitted": estimator._get_fitted_state(),
    }
    estimator.model_.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(_META_ENTRY, json.dumps(meta))
    return path


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
    model = load_keras_model(
        path, allow_unsafe=allow_unsafe, custom_objects=custom_objects
    )
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(_META_ENTRY))
    except KeyError:
        raise ValueError(
            f"{path!r} is a plain Keras model, not a saved sktransfer estimator. "
            "Load it with keras.saving.load_model, or use it as "
            "TransferClassifier(pretrained=path)."
        ) from None
    except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
        # a raw JSONDecodeError ("Expecting property name...") names neither
        # the file nor the fix
        raise ValueError(
            f"{path!r} has a corrupt {_META_ENTRY} entry (not valid JSON); the "
            "file was damaged or not written by sktransfer. Re-save the "
            "estimator with estimator.save(path)."
        ) from None
    classes = _registry()
    if not isinstance(meta, dict):
        meta = {}
    if meta.get("format") != "sktransfer" or meta.get("class") not in classes:
        raise ValueError(
            f"{path!r} holds unknown estimator metadata "
            f"(class={meta.get('class')!r}); expected one of {sorted(classes)}."
        )
    try:
        params = dict(meta["params"])
        for name in meta.get("dropped_params", []):
            params[name] = None
        for name in params.pop("__tuples__", []):
            params[name] = tuple(params[name])
        estimator = classes[meta["class"]](**params)
        estimator._set_fitted_state(meta["fitted"], model)
    except (KeyError, TypeError, ValueError) as exc:
        # incomplete or hand-edited metadata: a bare KeyError('fitted') is
        # no help to the user
        raise ValueError(
            f"{path!r} has incomplete sktransfer metadata ({type(exc).__name__}: "
            f"{exc}). Re-save the estimator with estimator.save(path)."
        ) from None
    return estimator
