"""sktransfer: transfer learning with Keras as ordinary scikit-learn classifiers."""

from ._io import load
from ._pretrained import PretrainedClassifier
from ._transfer import TransferClassifier

__all__ = ["PretrainedClassifier", "TransferClassifier", "load"]
__version__ = "0.1.0"
