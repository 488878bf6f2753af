"""Resolve a ``model`` / ``pretrained`` argument into a private Keras model.

Every fit works on a fresh private copy: the user's model object and file are
never modified, and no two fits (or cross-validation folds) share weights.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

import keras

from ._io import load_keras_model

__all__ = ["copy_model", "resolve_pretrained"]


def _read_weights(model):
    """``model.get_weights()``, also under another strategy's scope.

    Variables created under one ``tf.distribute`` strategy (a source trained
    with ``distribution_strategy=A``) cannot be read inside another's scope
    (fitting with ``distribution_strategy=B``): Keras raises "Mixing different
    tf.distribute.Strategy objects". A mirrored variable's first component is
    a plain variable holding the same value, readable anywhere.
    """
    try:
        return model.get_weights()
    except RuntimeError:
        return [
            getattr(v.value, "values", (v.value,))[0].numpy() for v in model.weights
        ]


def copy_model(model):
    """Return an independent copy of ``model`` with the same weights.

    ``keras.models.clone_model`` is tried first (fast, no I/O); models it
    cannot clone (subclassed models) go through an in-memory ``.keras`` round
    trip. The original is only read.
    """
    from keras.src.saving.serialization_lib import SafeModeScope

    # ``model`` is already in memory: any Python code it holds (a Lambda
    # layer) is the caller's own, already loaded, so copying it executes
    # nothing new. Keras 3.15's ``clone_model`` fails closed on Lambda layers
    # outside a SafeModeScope ("Requested the deserialization of a `Lambda`
    # layer"), so open one for this copy only (Keras keeps it thread-local
    # and restores it on exit). Files are still loaded with safe_mode on.
    with SafeModeScope(safe_mode=False):
        try:
            try:
                clone = keras.models.clone_model(model)
            except RuntimeError as exc:
                if "Mixing different tf.distribute" not in str(exc):
                    raise
                # compiled under another strategy: clone_model reads the
                # optimizer's variables for the compile config. A fit compiles
                # anew, so the architecture alone is enough.
                clone = type(model).from_config(model.get_config())
            clone.set_weights(_read_weights(model))
            return clone
        except Exception:  # subclassed or otherwise unclonable: serialise
            # a temporary file, not io.BytesIO: keras.saving.save_model
            # rejects file objects ("Invalid filepath extension")
            try:
                with tempfile.TemporaryDirectory() as folder:
                    path = os.path.join(folder, "copy.keras")
                    keras.saving.save_model(model, path)
                    return keras.saving.load_model(path, compile=False, safe_mode=False)
            except Exception as exc:
                # Keras' own error is a multi-page chained traceback about
                # get_config; say what sktransfer needs and how to provide it
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise TypeError(
                    f"Could not copy the {type(model).__name__} model ({first}). "
                    "Every fit trains a private copy, so the model must be "
                    "clonable: give a subclassed model get_config()/from_config() "
                    "and register it with "
                    "@keras.saving.register_keras_serializable(), or pass a "
                    "callable that builds a new model instead."
                ) from None


def resolve_pretrained(pretrained, *, allow_unsafe=False, custom_objects=None):
    """Turn ``pretrained`` into a private ``keras.Model`` copy.

    Parameters
    ----------
    pretrained : str, os.PathLike, keras.Model, estimator or callable
        A path to a ``.keras`` / ``.h5`` file, a Keras model, a fitted
        estimator with a ``model_`` attribute (sktransfer or scikeras), or a
        callable returning a model.
    allow_unsafe : bool, default=False
        Load files with Keras ``safe_mode`` off (runs code stored in them).
    custom_objects : dict, default=None
        Custom layers needed to load a file.

    Returns
    -------
    model : keras.Model
        A model that shares no state with ``pretrained``.
    """
    if isinstance(pretrained, (str, os.PathLike)):
        return load_keras_model(
            os.fspath(pretrained),
            allow_unsafe=allow_unsafe,
            custom_objects=custom_objects,
            what="pretrained",
        )
    if isinstance(pretrained, keras.Model):
        return copy_model(pretrained)
    if hasattr(pretrained, "get_params") and hasattr(pretrained, "fit"):
        model = getattr(pretrained, "model_", None)
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"pretrained={type(pretrained).__name__} is not fitted: it has no "
                "Keras `model_`. Fit it first, or pass the Keras model or a "
                "saved .keras file instead."
            )
        return copy_model(model)
    if callable(pretrained):
        model = pretrained()
        if not isinstance(model, keras.Model):
            raise TypeError(
                "pretrained was a callable but returned "
                f"{type(model).__name__}; it must return a keras.Model."
            )
        # a factory may hand back a shared (cached) model: copy it too
        return copy_model(model)
    raise TypeError(
        "pretrained must be a path to a .keras/.h5 file, a keras.Model, a fitted "
        "estimator with a `model_`, or a callable returning a keras.Model; got "
        f"{type(pretrained).__name__}."
    )


def is_keras_archive(path):
    """Whether ``path`` is a zip archive as written by ``Model.save``."""
    return zipfile.is_zipfile(path)
