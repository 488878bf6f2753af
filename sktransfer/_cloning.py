"""Cloning that shares read-only parameters.

``sklearn.base.clone`` deep-copies every parameter. A pretrained Keras
network is read-only to every fit (each fit copies it first), so copying it
per clone only costs time (seconds for a large network, per grid-search
candidate and fold) and turns a fitted source estimator into an unfitted one.
"""

from __future__ import annotations

import copy

from sklearn.base import clone

__all__ = ["clone_sharing"]


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
