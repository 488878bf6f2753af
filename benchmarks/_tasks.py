"""Few-shot transfer tasks on scikit-learn's bundled digits (nothing downloaded).

Every task has a source network (``PretrainedClassifier``, hidden (128, 64),
``random_state=0``) trained on rows that are not the target's, and a target
pool from which ``shots`` rows per class are labelled (chosen by ``seed``);
every other pool row is the test set.

Panel tasks (reported by ``bench_transfer.py``):

* ``parity``: new labels derived from the source's classes. Source: the first
  1000 digits, 10 classes; target: even/odd of the other digits
  (``sktransfer.datasets.load_parity_transfer``).
* ``unseen``: classes the source never saw. Source: every digit 0-4;
  target: digits 5-9.
* ``shift``: the source's classes under an input-level shift. Source: the
  first 1000 digits; target: the other digits, 10 classes, images translated
  one pixel to the right (the left column becomes blank).

Dev tasks (used to choose the recipe's defaults, never reported as the panel):
``gt4`` (digit > 4), ``prime`` (2, 3, 5, 7 vs the rest) and ``mod3`` (digit
mod 3, 3 classes), all with the first-1000 source; ``unseen-rev`` (source
5-9, target 0-4); ``shift-down`` (translation one pixel down), and other
shifts (``shift-<kind>``, see ``shift_inputs``).
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import Bunch

N_SOURCE = 1000
PANEL = ("parity", "unseen", "shift")
DEV = ("gt4", "prime", "mod3", "unseen-rev", "shift-down")


def _digits():
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target


def _translate(X, dy, dx):
    img = X.reshape(-1, 8, 8)
    out = np.zeros_like(img)
    h0, h1 = max(dy, 0), 8 + min(dy, 0)
    w0, w1 = max(dx, 0), 8 + min(dx, 0)
    out[:, h0:h1, w0:w1] = img[:, h0 - dy : h1 - dy, w0 - dx : w1 - dx]
    return out.reshape(len(X), 64)


def shift_inputs(X, kind):
    """Input-level shifts of flattened 8x8 digits in [0, 1]."""
    if kind == "none":
        return X
    if kind == "right":
        return _translate(X, 0, 1)
    if kind == "down":
        return _translate(X, 1, 0)
    if kind == "right2":
        return _translate(X, 0, 2)
    if kind == "invert":
        return 1.0 - X
    if kind == "permute":  # a fixed random permutation of the top 4 rows
        rng = np.random.RandomState(12345)
        perm = np.arange(64)
        perm[:32] = rng.permutation(32)
        return X[:, perm]
    if kind == "contrast":
        return (0.25 + 0.5 * X).astype(X.dtype)
    raise ValueError(kind)


def source_of(task):
    """``(name, X, y)`` of the source the task transfers from."""
    X, y = _digits()
    if task.startswith("unseen-rev"):
        keep = y >= 5
        return "digits5-9", X[keep], y[keep]
    if task.startswith("unseen"):
        keep = y < 5
        return "digits0-4", X[keep], y[keep]
    return "first1000", X[:N_SOURCE], y[:N_SOURCE]


def _pool(task):
    X, y = _digits()
    if task == "unseen":
        keep = y >= 5
        return X[keep], y[keep]
    if task == "unseen-rev":
        keep = y < 5
        return X[keep], y[keep]
    X, y = X[N_SOURCE:], y[N_SOURCE:]
    if task == "parity":
        return X, np.where(y % 2 == 0, "even", "odd").astype(object)
    if task == "gt4":
        return X, np.where(y > 4, "high", "low").astype(object)
    if task == "prime":
        return X, np.where(np.isin(y, [2, 3, 5, 7]), "prime", "other").astype(object)
    if task == "mod3":
        return X, (y % 3).astype(int)
    if task.startswith("shift-"):
        return shift_inputs(X, task.split("-", 1)[1]), y
    if task == "shift":
        return shift_inputs(X, "right"), y
    raise ValueError(task)


def load_task(task, seed, shots=10):
    """``Bunch(X_target, y_target, X_test, y_test, source)`` for one seed.

    ``parity`` is exactly ``load_parity_transfer(shots=shots,
    random_state=seed)``.
    """
    X, y = _pool(task)
    rng = np.random.RandomState(seed)
    labels = sorted(set(y.tolist()))
    labelled = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in labels]
    )
    test = np.setdiff1d(np.arange(len(y)), labelled)
    return Bunch(
        X_target=X[labelled],
        y_target=y[labelled],
        X_test=X[test],
        y_test=y[test],
        source=source_of(task)[0],
        task=task,
    )


_SOURCES = {}


def source_model(task, random_state=0):
    """The task's fitted source network (keras.Model), trained once."""
    from sktransfer import PretrainedClassifier

    name, X, y = source_of(task)
    key = (name, random_state)
    if key not in _SOURCES:
        est = PretrainedClassifier(random_state=random_state).fit(X, y)
        _SOURCES[key] = est
    return _SOURCES[key]
