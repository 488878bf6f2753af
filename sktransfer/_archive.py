"""The saved-estimator format: a ``.keras`` archive plus a plain-JSON entry.

Keras writes the network; the estimator's parameters and fitted labels go
into an extra ``sktransfer.json`` entry of the same zip file. Nothing is
pickled: parameters that are not plain JSON values are stored as ``None``
and listed, so the loaded estimator predicts the same and says what to set
again before refitting.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

__all__ = [
    "decode_array",
    "decode_params",
    "encode_array",
    "encode_params",
    "read_meta",
    "write_archive",
]

META_ENTRY = "sktransfer.json"
FORMAT_VERSION = 1


def _jsonable(value):
    """Whether ``value`` survives a JSON round trip unchanged."""
    try:
        return json.loads(json.dumps(value)) == (
            list(value) if isinstance(value, tuple) else value
        )
    except (TypeError, ValueError):
        return False


def encode_array(values):
    """A JSON description of a label array (dtype kept, objects as lists)."""
    values = np.asarray(values)
    kind = "object" if values.dtype == object else values.dtype.str
    return {"dtype": kind, "values": values.tolist()}


def decode_array(spec):
    """The array :func:`encode_array` described."""
    if spec["dtype"] == "object":
        values = np.empty(len(spec["values"]), dtype=object)
        values[:] = spec["values"]
        return values
    return np.asarray(spec["values"], dtype=np.dtype(spec["dtype"]))


def encode_params(params):
    """``(json_params, dropped_names)``: plain values kept, tuples marked."""
    encoded, dropped = {}, []
    for name, value in params.items():
        if isinstance(value, os.PathLike):  # a pathlib.Path source file
            value = os.fspath(value)
        if _jsonable(value):
            encoded[name] = list(value) if isinstance(value, tuple) else value
            if isinstance(value, tuple):
                encoded.setdefault("__tuples__", []).append(name)
        else:
            dropped.append(name)
    return encoded, dropped


def decode_params(meta):
    """The constructor keywords stored by :func:`encode_params`."""
    params = dict(meta["params"])
    for name in meta.get("dropped_params", []):
        params[name] = None
    for name in params.pop("__tuples__", []):
        params[name] = tuple(params[name])
    return params


def write_archive(model, path, *, class_name, params, dropped, fitted):
    """Save ``model`` to ``path`` (``.keras``) with the estimator's metadata."""
    path = os.fspath(path)
    meta = {
        "format": "sktransfer",
        "version": FORMAT_VERSION,
        "class": class_name,
        "params": params,
        "dropped_params": dropped,
        "fitted": fitted,
    }
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(META_ENTRY, json.dumps(meta))
    return path


def read_meta(path, known_classes):
    """The metadata dict of a saved estimator; ``ValueError`` if it has none.

    ``path`` must already have been read as a Keras model file (see
    ``_files.load_keras_model``); ``known_classes`` names the estimator
    classes the caller can rebuild.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(META_ENTRY))
    except (KeyError, zipfile.BadZipFile):
        # a legacy .h5 file is no zip archive at all: also a plain model
        raise ValueError(
            f"{path!r} is a plain Keras model, not a saved sktransfer estimator. "
            "Load it with keras.saving.load_model, or use it as "
            "TransferClassifier(pretrained=path)."
        ) from None
    except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
        # a raw JSONDecodeError ("Expecting property name...") names neither
        # the file nor the fix
        raise ValueError(
            f"{path!r} has a corrupt {META_ENTRY} entry (not valid JSON); the "
            "file was damaged or not written by sktransfer. Re-save the "
            "estimator with estimator.save(path)."
        ) from None
    if not isinstance(meta, dict):
        meta = {}
    if meta.get("format") != "sktransfer" or meta.get("class") not in known_classes:
        raise ValueError(
            f"{path!r} holds unknown estimator metadata "
            f"(class={meta.get('class')!r}); expected one of {sorted(known_classes)}."
        )
    return meta
