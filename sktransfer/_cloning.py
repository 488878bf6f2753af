"""Cloning that shares read-only parameters.

``sklearn.base.clone`` deep-copies every parameter. A pretrained Keras
network is read-only to every fit (each fit copies it first), so copying it
per clone only costs time (seconds for a large network, per grid-search
candidate and fold) and turns a fitted source estimator into an unfitted one.
"""

from __future__ import annotations

import copy

from sklearn.base import clone

__all__ = ["SharedParamsMixin", "clone_sharing"]


def clone_sharing(estimator, shared):
    """``clone(estimator)``, with the parameters named in ``shared`` not copied.

    Every other parameter is cloned as scikit-learn clones it; metadata
    requests (``set_fit_request``) are kept, as ``BaseEstimator``'s own
    clone keeps them.
    """
    params = estimator.get_params(deep=False)
    for name, value in params.items():
        if name not in shared:
            params[name] = clone(value, safe=False)
    cloned = type(estimator)(**params)
    if hasattr(estimator, "_metadata_request"):
        cloned._metadata_request = copy.deepcopy(estimator._metadata_request)
    return cloned


class SharedParamsMixin:
    """Parameters named in ``_shared_params`` are read-only, never nested.

    ``get_params(deep=True)`` would expand a fitted source estimator given
    as ``pretrained`` into ``pretrained__*``, and a grid over those would
    set them on the user's own estimator (clones share it) while the
    transfer, which copies the already fitted network, ignores them.
    """

    #: parameters holding a read-only source network that clones share
    _shared_params: tuple = ()

    def _is_nested_source(self, name):
        """Whether parameter ``name`` holds an estimator (not a routing
        prefix such as PretrainedClassifier's ``model__*``)."""
        value = getattr(self, name, None)
        return (
            hasattr(value, "get_params")
            and not isinstance(value, type)
            and name not in getattr(self, "_routing_prefixes", ())
        )

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        own = set(self._get_param_names())
        for name in filter(self._is_nested_source, self._shared_params):
            for key in [key for key in params if key.startswith(f"{name}__")]:
                if key not in own:
                    del params[key]
        return params

    def set_params(self, **params):
        for key in params:
            name = key.split("__", 1)[0]
            if (
                "__" in key
                and name in self._shared_params
                and self._is_nested_source(name)
            ):
                raise ValueError(
                    f"{key} would set a parameter of the pretrained source "
                    f"({name!r}), which this estimator only reads: every fit "
                    "copies the source's fitted network, so the change would "
                    "have no effect here and would modify your object. Set it "
                    f"on the source and refit it yourself, or search over "
                    f"{name!r} itself with FrozenEstimator(source) values "
                    "(sklearn.frozen), fitted networks or saved files."
                )
        return super().set_params(**params)
