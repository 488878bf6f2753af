"""sktransfer: transfer learning with Keras as ordinary scikit-learn classifiers."""

from ._io import load
from ._pretrained import PretrainedClassifier

__all__ = ["PretrainedClassifier", "load"]
__version__ = "0.1.0"
