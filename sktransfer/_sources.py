"""Resolve a ``model`` / ``pretrained`` argument into a private Keras model.

Every fit works on a fresh private copy: the user's model object and file are
never modified, and no two fits (or cross-validation folds) share weights.
"""

from __future__ import annotations

import collections
import copy
import os
import tempfile
import threading
import weakref

import keras

from ._files import load_keras_model
from ._graph import containers_and_leaves, leaves, weights_digest
from ._keras_compat import (
    MIXING_STRATEGIES,
    read_weights,
    reseed_layers,
    safe_mode_off,
    without_tensorflow,
)
from ._network import defined_tensors

__all__ = [
    "FrozenSource",
    "SourceSnapshot",
    "copy_model",
    "frozen_source",
    "resolve_pretrained",
]

#: files parsed once per process: (path, mtime, size, options) -> model, or
#: None for a file seen once
_LOADED = collections.OrderedDict()
_LOADED_LOCK = threading.Lock()
#: how many parsed source files a process keeps
_LOADED_MAX = 2


def copy_model(model):
    """Return an independent copy of ``model`` with the same weights.

    ``keras.models.clone_model`` is tried first (fast, no I/O); models it
    cannot clone (subclassed models) go through an in-memory ``.keras`` round
    trip. The original is only read.
    """
    # ``model`` is already in memory: any Python code it holds (a Lambda
    # layer) is the caller's own, already loaded, so copying it executes
    # nothing new. Keras 3.15's ``clone_model`` fails closed on Lambda layers
    # outside a SafeModeScope ("Requested the deserialization of a `Lambda`
    # layer"), so open one for this copy only (Keras keeps it thread-local
    # and restores it on exit). Files are still loaded with safe_mode on.
    with safe_mode_off(), without_tensorflow():
        try:
            try:
                clone = keras.models.clone_model(model)
            except RuntimeError as exc:
                if MIXING_STRATEGIES not in str(exc):
                    raise
                # compiled under another strategy: clone_model reads the
                # optimizer's variables for the compile config. A fit compiles
                # anew, so the architecture alone is enough.
                clone = type(model).from_config(model.get_config())
            clone.set_weights(read_weights(model))
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


def _file_key(path, allow_unsafe, custom_objects):
    """Identity of a file's current contents and of how it is loaded, or None.

    The file is identified by its real path, modification time and size, so
    a rewritten file is parsed again. ``None`` (do not cache) when the file
    cannot be stat'ed or a custom object is unhashable.
    """
    try:
        stat = os.stat(path)
        objects = tuple(sorted((custom_objects or {}).items(), key=lambda kv: kv[0]))
        key = (
            os.path.realpath(path),
            stat.st_mtime_ns,
            stat.st_size,
            bool(allow_unsafe),
            objects,
        )
        hash(key)
    except (OSError, TypeError):
        return None
    return key


def _load_private(path, *, allow_unsafe, custom_objects):
    """A private model copy of the file at ``path``, parsed once per process.

    Parsing a ``.keras`` file costs seconds for a large network (about 4 s
    for MobileNetV3Small), and a grid search loads the same source once per
    candidate and fold. From the second load of the same file on, the parsed
    model is kept (a few files, least recently used first out) and never
    handed out: every call returns a ``copy_model`` of it (about 2.5 s for
    MobileNetV3Small), so fits still share nothing. A file loaded once pays
    no copy. Only functional and Sequential networks are kept, as those are
    what ``clone_model`` copies without another file round trip.
    """
    key = _file_key(path, allow_unsafe, custom_objects)
    with _LOADED_LOCK:
        loaded = _LOADED.get(key) if key is not None else None
        if key is not None:
            first = key not in _LOADED
            _LOADED[key] = loaded  # None: seen once, not kept yet
            _LOADED.move_to_end(key)
            while len(_LOADED) > _LOADED_MAX:
                _LOADED.popitem(last=False)
    if loaded is not None:
        return copy_model(loaded)
    with without_tensorflow():
        model = load_keras_model(
            path,
            allow_unsafe=allow_unsafe,
            custom_objects=custom_objects,
            what="pretrained",
        )
    if key is None or first or type(model).__name__ not in ("Functional", "Sequential"):
        # a file loaded once (a single fit) costs no extra copy: the freshly
        # parsed model is already private. Except a Sequential network: parsed
        # from a file, its layers are called more than once (extra inbound
        # nodes), so no clean cut of it is found and the first fit would skip
        # the feature cache that later fits (on copies) take. A copy has one
        # node per layer.
        return copy_model(model) if isinstance(model, keras.Sequential) else model
    with _LOADED_LOCK:  # loaded a second time: keep it, hand out a copy
        _LOADED[key] = model
    return copy_model(model)


def _unfitted_message(pretrained):
    """Why an estimator given as ``pretrained`` has no network, and the fix."""
    name = type(pretrained).__name__
    message = f"pretrained={name} is not fitted: it has no Keras `model_`. "
    if getattr(pretrained, "__dict__", {}).get("_cloned_from_fitted"):
        message += (
            "It is a clone of a fitted estimator, and cloning unfits: "
            "GridSearchCV and other meta-estimators clone every value of a "
            "parameter grid. Pass FrozenEstimator(est) (from sklearn.frozen; "
            "cloning keeps it fitted), its network est.model_, or a saved "
            ".keras file instead."
        )
    else:
        message += (
            "Fit it first, or pass its network (est.model_), a saved .keras "
            "file, or FrozenEstimator(est) (from sklearn.frozen) instead; a "
            "fitted estimator in a parameter grid needs one of those, as "
            "GridSearchCV clones grid values and cloning unfits."
        )
    return message


def resolve_pretrained(
    pretrained, *, allow_unsafe=False, custom_objects=None, seed=None
):
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
    seed : int, default=None
        Restart the copy's random layers (Dropout, noise) from this seed, so
        they do not depend on how the copy was made (a first load, a copy of
        a kept model) or what ran before in the process.

    Returns
    -------
    model : keras.Model
        A model that shares no state with ``pretrained``.
    """
    model = _resolve(pretrained, allow_unsafe, custom_objects)
    if seed is not None:
        reseed_layers(leaves(model), seed)
    return model


def _resolve(pretrained, allow_unsafe, custom_objects):
    if isinstance(pretrained, (str, os.PathLike)):
        return _load_private(
            os.fspath(pretrained),
            allow_unsafe=allow_unsafe,
            custom_objects=custom_objects,
        )
    if isinstance(pretrained, keras.Model):
        return copy_model(pretrained)
    if hasattr(pretrained, "get_params") and hasattr(pretrained, "fit"):
        model = getattr(pretrained, "model_", None)
        if not isinstance(model, keras.Model):
            raise ValueError(_unfitted_message(pretrained))
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


# ----------------------------------------------------------- frozen sources
# Fits with ``memory`` train only the part of the network above a frozen,
# static prefix, on the prefix's cached features. The prefix runs on a
# *frozen source*: one private copy of the source per process, every layer
# of it made non-trainable once, when it is created, and never set trainable
# again. It is internal: no fitted estimator holds it or any of its layers.
# A fit keeps a ``SourceSnapshot`` instead (read-only NumPy weights and the
# architecture), from which its whole network is built when something needs
# it; the frozen source itself only computes features. It is checked before
# every reuse against the user's source (a file's modification time, an
# in-memory network's weights) and rebuilt when that changed.

#: source identity -> FrozenSource (its model None: cannot be cut)
_FROZEN = collections.OrderedDict()
_FROZEN_LOCK = threading.Lock()
#: how many frozen sources a process keeps
_FROZEN_MAX = 2


class SourceSnapshot:
    """An immutable record of a source network: architecture and weights.

    Fitted estimators keep a reference to it (it holds no Keras object) and
    build their own network from it with :meth:`build`.
    """

    def __init__(self, model, custom_objects=None):
        with without_tensorflow():
            self.config = keras.saving.serialize_keras_object(model)
        self.weights = [w.copy() for w in read_weights(model)]
        for weight in self.weights:
            weight.setflags(write=False)
        self.custom_objects = dict(custom_objects or {})

    def build(self):
        """A new private network with the snapshot's architecture and weights."""
        with safe_mode_off(), without_tensorflow():
            # a deep copy: deserializing pops entries from the dict it reads
            model = keras.saving.deserialize_keras_object(
                copy.deepcopy(self.config), custom_objects=self.custom_objects
            )
        model.set_weights(self.weights)
        return model


class FrozenSource:
    """The process's frozen copy of one source, and its snapshot."""

    def __init__(self, model, source, custom_objects):
        self.model = model
        self.source = None if source is None else weakref.ref(source)
        self.snapshot = None if model is None else SourceSnapshot(model, custom_objects)

    def matches(self, source):
        """Same source object (for in-memory sources).

        The frozen copy itself needs no re-check of its weights: no fitted
        estimator holds it or its layers (see ``_detached``), so nothing
        outside this package can change it.
        """
        return self.source is None or self.source() is source


def _source_identity(pretrained, allow_unsafe, custom_objects):
    """``(key, source model or None)``; the key is None when unknown.

    A file is identified by path, modification time and size; an in-memory
    network (or a fitted estimator's ``model_``) by the object and a digest
    of its weights, so training it further between fits gives a new key. A
    callable builds a new network per call: it has no identity.
    """
    if isinstance(pretrained, (str, os.PathLike)):
        key = _file_key(os.fspath(pretrained), allow_unsafe, custom_objects)
        return (None if key is None else ("file", key)), None
    if not isinstance(pretrained, keras.Model) and hasattr(pretrained, "fit"):
        pretrained = getattr(pretrained, "model_", None)
    if isinstance(pretrained, keras.Model):
        digest = weights_digest(pretrained.get_weights())
        return ("model", id(pretrained), digest), pretrained
    return None, None


def frozen_source(pretrained, *, allow_unsafe=False, custom_objects=None):
    """The process's :class:`FrozenSource` of ``pretrained``, or None.

    Every layer of its ``model`` is non-trainable and must stay so: callers
    may run it and read it, never set anything in it trainable, train it or
    hand it out. None when the source has no stable identity (a callable) or
    its network cannot be cut (no known input, e.g. a subclassed model).
    """
    key, source = _source_identity(pretrained, allow_unsafe, custom_objects)
    if key is None:
        return None
    with _FROZEN_LOCK:
        entry = _FROZEN.get(key)
        if entry is not None:
            _FROZEN.move_to_end(key)
    if entry is None or not entry.matches(source):
        model = resolve_pretrained(
            pretrained, allow_unsafe=allow_unsafe, custom_objects=custom_objects
        )
        if not defined_tensors(model, "inputs"):
            model = None  # no known input: fits copy it whole
        else:
            # set every layer explicitly: assigning a value a layer already
            # holds is skipped by TensorFlow's tracking and would not recurse
            for layer in containers_and_leaves(model):
                layer.trainable = False
        entry = FrozenSource(model, source, custom_objects)
        with _FROZEN_LOCK:
            _FROZEN[key] = entry
            _FROZEN.move_to_end(key)
            while len(_FROZEN) > _FROZEN_MAX:
                _FROZEN.popitem(last=False)
    return entry if entry.model is not None else None
