"""Source/target splits of scikit-learn's embedded digits (nothing downloaded).

The few-shot task used by the demo, the examples and the benchmarks:

* **source**: the first ``n_source`` digits with their 10 digit labels — the
  large labelled task a team pretrains on;
* **target**: the remaining digits (other scans, a different task): tell
  ``"even"`` from ``"odd"`` digits, with only ``shots`` labelled examples per
  class; every other target digit is the test set.

Parity is a related but different task: a network that has learnt the digits
has features in which parity is easy, while 20 labelled pixels-to-parity
examples are hard to learn from scratch.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

__all__ = ["load_digit_classes", "load_parity_transfer"]


def _digits(images):
    data = load_digits()
    X = data.images if images else data.data
    return (X / 16.0).astype(np.float32), data.target


def load_parity_transfer(*, n_source=1000, shots=10, images=False, random_state=0):
    """The few-shot parity task on digits.

    Parameters
    ----------
    n_source : int, default=1000
        Digits (from the start of the data set) in the source task.
    shots : int, default=10
        Labelled target examples per class ("even", "odd").
    images : bool, default=False
        Return ``(n, 8, 8)`` images instead of 64 features.
    random_state : int, default=0
        Which target examples are labelled.

    Returns
    -------
    data : Bunch
        ``X_source``, ``y_source`` (digit labels 0-9), ``X_target``,
        ``y_target`` (``shots`` per class of "even"/"odd"), ``X_test``,
        ``y_test`` (the other target digits).

    Examples
    --------
    >>> from sktransfer.datasets import load_parity_transfer
    >>> data = load_parity_transfer(shots=10)
    >>> data.X_source.shape, data.X_target.shape
    ((1000, 64), (20, 64))
    >>> sorted(set(data.y_target))
    ['even', 'odd']
    """
    X, digits = _digits(images)
    parity = np.where(digits % 2 == 0, "even", "odd").astype(object)
    X_t, y_t = X[n_source:], parity[n_source:]
    rng = np.random.RandomState(random_state)
    labelled = np.concatenate(
        [
            rng.choice(np.flatnonzero(y_t == label), shots, replace=False)
            for label in ("even", "odd")
        ]
    )
    test = np.setdiff1d(np.arange(len(y_t)), labelled)
    return Bunch(
        X_source=X[:n_source],
        y_source=digits[:n_source],
        X_target=X_t[labelled],
        y_target=y_t[labelled],
        X_test=X_t[test],
        y_test=y_t[test],
    )


def load_digit_classes(classes, *, images=False):
    """Digits of the given classes only (for class-split experiments).

    Parameters
    ----------
    classes : iterable of int
        Digit classes to keep, e.g. ``range(5)``.
    images : bool, default=False
        Return ``(n, 8, 8)`` images instead of 64 features.

    Returns
    -------
    X : ndarray
    y : ndarray of int

    Examples
    --------
    >>> from sktransfer.datasets import load_digit_classes
    >>> X, y = load_digit_classes(range(5))
    >>> sorted(set(y.tolist()))
    [0, 1, 2, 3, 4]
    """
    X, y = _digits(images)
    keep = np.isin(y, list(classes))
    return X[keep], y[keep]
