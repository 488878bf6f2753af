"""sktransfer: transfer learning with Keras as ordinary scikit-learn estimators.

Public names are imported on first use (PEP 562), so ``import sktransfer``
and ``sktransfer --help`` do not pay for importing TensorFlow.
"""

import importlib

from ._version import __version__ as __version__

__all__ = ["PretrainedClassifier", "TransferClassifier", "TransferFeatures", "load"]

_WHERE = {
    "PretrainedClassifier": "._pretrained",
    "TransferClassifier": "._transfer",
    "TransferFeatures": "._features",
    "load": "._load",
}


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sktransfer' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
