"""The shared estimator base: the one module that knows scikeras.

scikeras' ``BaseWrapper`` gives us parameter routing (``optimizer__...``,
``callbacks__...``, ``fit__...``), its target encoding and the compilation of
optimizer classes from strings. What it gets wrong with scikit-learn >= 1.6
and Keras 3 is repaired here: the fit path is our own (``_training``: seeded without
touching process-wide state, a backend-fast input pipeline, an early-stopping
split sized to the data), prediction skips ``Model.predict``'s per-call cost,
parameters are read from the signature (scikeras reads ``__dict__``, so any
cache stored on the estimator became a "parameter"), and tags come from
``__sklearn_tags__`` (scikeras lists ``ClassifierMixin`` after its wrapper, so
``is_classifier`` is False under scikit-learn >= 1.6). Estimators put
``ClassifierMixin`` first over this base.

Everything else sktransfer does lives in modules that never import
scikeras: if scikeras breaks, this is the one module to replace.
"""

from __future__ import annotations

import contextlib
import copy
import sys
from collections.abc import Mapping

import keras

from ._keras_compat import own_learning_rate, tensorflow_unused


@contextlib.contextmanager
def _tensorflow_hidden():
    """Hide TensorFlow from imports made inside, when Keras runs without it.

    scikeras imports TensorFlow whenever it is installed (to offer its
    process-wide seeding), and TensorFlow is a core dependency: on JAX or
    PyTorch that would load TensorFlow for nothing (seconds, hundreds of
    MiB). A ``None`` entry in ``sys.modules`` makes ``import tensorflow``
    fail, so scikeras takes its own TensorFlow-free fallback. The entry
    lives only while scikeras is imported; nothing is hidden on TensorFlow
    or once TensorFlow is loaded.
    """
    if not tensorflow_unused():
        yield
        return
    sys.modules["tensorflow"] = None
    try:
        yield
    finally:
        if sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]


def _import_scikeras_unpatched():
    """Import scikeras without keeping the patches its import puts on Keras.

    ``import scikeras`` replaces ``__reduce__``/``__deepcopy__`` of
    ``keras.Model``, losses, metrics and optimizers for the whole process
    (every deep copy then goes through a save/load round trip: about 1 s
    for MobileNet, per clone and per fold).
    Keras 3 pickles models natively, so importing sktransfer puts the
    originals back: importing us changes nothing in Keras. If the user
    imported scikeras first, their process keeps scikeras' behaviour.
    """
    if "scikeras" in sys.modules:
        return
    names = ("__reduce__", "__deepcopy__")
    classes = (
        keras.Model,
        keras.losses.Loss,
        keras.metrics.Metric,
        keras.optimizers.Optimizer,
    )
    saved = [
        (cls, {n: cls.__dict__[n] for n in names if n in cls.__dict__})
        for cls in classes
    ]
    import scikeras  # noqa: F401  (its import applies the patches)

    for cls, originals in saved:
        for name in names:
            if name in originals:
                setattr(cls, name, originals[name])
            elif name in cls.__dict__:
                delattr(cls, name)


with _tensorflow_hidden():
    _import_scikeras_unpatched()
    from scikeras._utils import (  # noqa: E402
        accepts_kwargs,
        get_optimizer_class,
        has_param,
        route_params,
        try_to_convert_strings_to_classes,
        unflatten_params,
    )
    from scikeras.utils.transformers import ClassifierLabelEncoder  # noqa: E402
    from scikeras.wrappers import BaseWrapper  # noqa: E402

from sklearn.base import BaseEstimator  # noqa: E402

from ._cloning import SharedParamsMixin, clone_sharing  # noqa: E402
from ._runtime import StrategySpec, temporary_seed  # noqa: E402
from ._validation import plain  # noqa: E402

__all__ = ["DEFAULT_LEARNING_RATE", "ScikerasSeam"]

#: the learning rate when neither the estimator nor the optimizer sets one
DEFAULT_LEARNING_RATE = 1e-3


class ScikerasSeam(SharedParamsMixin, BaseWrapper):
    """What sktransfer takes from scikeras, and what it repairs there.

    Parameters and cloning (routed ``optimizer__*``, ``callbacks__*``,
    ``compile__*``, ``fit__*``, ``model__*``, ``score__*`` keywords), the
    target encoding, and building optimizers and callbacks from those
    parameters. Everything else is ``KerasClassifierBase``'s
    (``_classifier``), which never imports scikeras.
    """

    #: routing prefixes: scikeras' own plus the ones it forgets in set_params
    _routing_prefixes = frozenset(BaseWrapper._routing_prefixes) | {
        "callbacks",
        "score",
    }
    #: scikeras-only attributes read by inherited code paths we do not use
    build_fn = None
    warm_start = False

    # ------------------------------------------------------------------ params
    def _get_param_names(self):
        """Signature parameters plus the extra keywords given to ``__init__``.

        Extra keywords are routed parameters (``optimizer__beta_1``...) or
        unknown names that ``fit`` rejects with a clear ``TypeError``. Both
        must be parameters: scikit-learn requires that ``__init__`` and
        ``set_params`` never raise and that ``clone`` round-trips what was
        passed. Private (``_x``) and fitted (``x_``) attributes never count.
        """
        names = set(BaseEstimator._get_param_names.__func__(type(self)))
        names.update(
            key
            for key in vars(self)
            if not key.startswith("_") and not key.endswith("_")
        )
        return sorted(names)

    __repr__ = BaseEstimator.__repr__

    def __sklearn_clone__(self):
        """Clone as scikit-learn does, but share the read-only source network.

        ``clone`` would deep-copy a Keras model parameter (seconds for a large
        network, per clone and fold) and would turn a fitted source estimator
        into an unfitted one. Every fit copies the source before training, so
        sharing that read-only parameter is safe. The distribution strategy
        is a handle on devices, not state: clones share it too (variables
        made under one strategy cannot be read under a deep copy of it).
        Metadata requests (``set_fit_request``) are kept, as
        ``BaseEstimator``'s own clone keeps them. A clone of a fitted
        estimator is unfitted, as any scikit-learn clone; it remembers that
        it came from a fitted one, so that using it as a ``pretrained``
        source (a fitted estimator in a parameter grid, which ``GridSearchCV``
        clones) can say why it is unfitted and what to pass instead.
        """
        cloned = clone_sharing(self, (*self._shared_params, "distribution_strategy"))
        if "classes_" in vars(self):
            cloned._cloned_from_fitted = True
        return cloned

    def __getstate__(self):
        """Pickle state, with ``distribution_strategy`` as a description.

        A ``tf.distribute`` strategy holds weak references and device
        handles and does not pickle; one-machine strategies travel as their
        type and devices and are rebuilt on the other side.
        """
        state = dict(super().__getstate__())
        strategy = state.get("distribution_strategy")
        if strategy is not None and not isinstance(strategy, StrategySpec):
            spec = StrategySpec.describe(strategy)
            if spec is not None:
                state["distribution_strategy"] = spec
        return state

    def __setstate__(self, state):
        spec = state.get("distribution_strategy")
        if isinstance(spec, StrategySpec):
            state = dict(state, distribution_strategy=spec.build())
        super().__setstate__(state)

    def _check_unknown_params(self):
        known = set(BaseEstimator._get_param_names.__func__(type(self)))
        unknown = sorted(
            key
            for key in vars(self)
            if not key.startswith("_")
            and not key.endswith("_")
            and key not in known
            and key.split("__", 1)[0] not in self._routing_prefixes
        )
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameters {unknown}. Valid "
                f"parameters are {sorted(known)}"
                " plus routed ones such as optimizer__<name>, callbacks__<name>, "
                "fit__<name>, model__<name> or score__<name>."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True
        tags.target_tags.required = True
        tags.non_deterministic = False
        return tags

    @property
    def partial_fit(self):
        # scikeras' partial_fit always trains exactly one epoch and skips our
        # fit path; hide it so scikit-learn does not treat us as incremental.
        raise AttributeError(
            f"{type(self).__name__} does not support partial_fit; use fit."
        )

    def _encode_targets(self, y):
        """``(classes, encoded y as int32)`` with scikeras' target encoder."""
        encoder = ClassifierLabelEncoder(loss="sparse_categorical_crossentropy")
        encoded = encoder.fit(y).transform(y).reshape(-1).astype("int32")
        return encoder.classes_, encoded

    def _call_model_factory(self, factory, seed, **meta):
        """Call a user's model factory the scikeras way, seeded."""
        params = self.get_params()
        kwargs = route_params(
            params, destination="model", pass_filter=set(), strict=True
        )
        if has_param(factory, "meta") or accepts_kwargs(factory):
            kwargs["meta"] = dict(meta)
        if has_param(factory, "params") or accepts_kwargs(factory):
            kwargs["params"] = params
        with temporary_seed(seed):
            model = factory(**kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"model callable returned {type(model).__name__}; it must return "
                "a keras.Model."
            )
        return model

    def _routed(self, destination, strict=True):
        """``destination__*`` parameters, NumPy scalars made plain."""
        routed = route_params(
            self.get_params(), destination=destination, pass_filter=set(), strict=strict
        )
        return {name: plain(value) for name, value in routed.items()}

    def _learning_rate(self):
        """The learning rate to train with: a float, a schedule or a callable.

        ``learning_rate`` when set, else ``optimizer__learning_rate``, else
        the optimizer object's own (a float, a ``LearningRateSchedule`` or a
        callable), else 1e-3. Setting both ``learning_rate`` and
        ``optimizer__learning_rate`` is an error: they name one setting.
        """
        explicit = plain(self.learning_rate)
        routed = self._routed("optimizer", strict=False)
        if explicit is not None and "learning_rate" in routed:
            raise ValueError(
                f"learning_rate={explicit!r} and optimizer__learning_rate="
                f"{routed['learning_rate']!r} are both set; they name the same "
                "setting. Keep one (learning_rate is the one to grid-search)."
            )
        if explicit is not None:
            return explicit
        if routed.get("learning_rate") is not None:
            return routed["learning_rate"]
        if isinstance(self.optimizer, keras.optimizers.Optimizer):
            return own_learning_rate(self.optimizer)
        return DEFAULT_LEARNING_RATE

    def _make_optimizer(self, learning_rate):
        """A new optimizer from ``optimizer`` and ``optimizer__*`` params.

        ``learning_rate`` (a float, a schedule or a callable, as
        :meth:`_learning_rate` resolved it, possibly scaled for a phase)
        replaces the optimizer's own. An optimizer object is rebuilt from
        its config and a schedule deep-copied: a fit never uses, advances or
        changes the user's objects.
        """
        routed = self._routed("optimizer", strict=False)
        routed.pop("learning_rate", None)  # resolved by _learning_rate
        if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            learning_rate = copy.deepcopy(learning_rate)
        else:
            learning_rate = plain(learning_rate)
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            # never reuse (and mutate) a user's optimizer object
            try:
                config = optimizer.get_config()
            except Exception as exc:  # a learning-rate callable Keras cannot save
                raise TypeError(
                    f"Could not copy optimizer={optimizer!r} ({exc}). Pass its "
                    "learning rate as learning_rate= (a float, a "
                    "keras.optimizers.schedules.LearningRateSchedule or a "
                    "callable) instead."
                ) from None
            config.update(routed)
            config["learning_rate"] = learning_rate
            return type(optimizer).from_config(config)
        try:
            optimizer = try_to_convert_strings_to_classes(
                optimizer, get_optimizer_class
            )
        except ValueError:
            raise ValueError(
                f"optimizer={self.optimizer!r} is not a Keras optimizer name; use "
                "e.g. 'adam', 'sgd', 'rmsprop' or a keras.optimizers class."
            ) from None
        routed["learning_rate"] = learning_rate
        return unflatten_params(items=optimizer, params=routed)

    def _user_callbacks(self):
        """``callbacks`` (with ``callbacks__*`` routing) as a flat list."""
        params = self.get_params()
        callbacks = params.get("callbacks")
        if callbacks is None:
            return []
        callbacks = unflatten_params(
            items=callbacks,
            params=route_params(params, destination="callbacks", pass_filter=set()),
        )
        if isinstance(callbacks, Mapping):
            callbacks = list(callbacks.values())
        elif isinstance(callbacks, keras.callbacks.Callback):
            callbacks = [callbacks]
        flat = []
        for item in callbacks:
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        for item in flat:
            if not isinstance(item, keras.callbacks.Callback):
                raise TypeError(
                    "callbacks must be keras.callbacks.Callback instances or "
                    f"classes (in a list or dict); got {type(item).__name__}."
                )
        return flat
