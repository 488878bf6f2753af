"""The linear probe: a new output layer solved to convergence.

On a few dozen labelled rows, a softmax head trained by Adam from a random
start for a couple of hundred steps is under-trained (with 20 rows and
``batch_size=32`` an epoch is one optimizer step). When everything below the
head is frozen, the head is a multinomial logistic regression on fixed
features: a convex problem. It is solved here with scikit-learn's
``LogisticRegression`` (full-batch L-BFGS, tight tolerance) on standardized
features, the L2 strength ``C`` chosen by a stratified internal
cross-validation on the training rows, and the standardization folded back
into one ``Dense(n_classes, softmax)`` layer acting on the raw features, so
the fitted network stays one Keras model:

    softmax(W (x - m) / s + b) = softmax((W / s) x + (b - W m / s))

Measured on the transfer panel (``benchmarks/bench_transfer.py``), this
head alone lifts 20-row transfer from the level of training from scratch to
about the accuracy of the source's own predictions where the target's
labels derive from the source's classes.

Nothing here touches Keras: arrays in, arrays out.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

__all__ = ["DEFAULT_CS", "Probe", "fit_probe", "fold_standardization", "standardizer"]

#: C grid of the internal CV (inverse L2 strength on standardized features)
DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)
#: each feature's scale is at least this fraction of its block's RMS scale
SCALE_FLOOR = 0.1
#: folds of the internal CV (fewer when a class has fewer rows)
CV_FOLDS = 5


@dataclasses.dataclass
class Probe:
    """A solved probe as the weights of one ``Dense(n_classes, softmax)``.

    Attributes
    ----------
    kernel : ndarray of shape (n_features, n_classes)
        Acts on raw (unstandardized) features.
    bias : ndarray of shape (n_classes,)
    C : float
        The chosen inverse L2 strength (on standardized features).
    block_norm : bool
        Whether each feature block was weighted by 1 / sqrt(its width).
    """

    kernel: np.ndarray
    bias: np.ndarray
    C: float
    block_norm: bool = False


def standardizer(F, sample_weight=None, blocks=None, block_norm=False):
    """``(mean, scale)``: the probe sees ``(F - mean) / scale``.

    Weighted mean and standard deviation per feature, with two changes:

    * ``scale = sqrt(std**2 + (0.1 * rms_block)**2)``: a feature that is
      (nearly) constant on the few training rows -- a source class
      probability that is about 0 for every labelled row -- would otherwise
      be blown up by ``1 / std`` on test rows where it is not (held-out
      log-loss of 4-9 nats in 4-row CV folds, measured);
    * with ``block_norm``, every feature of a block of width ``w`` is also
      divided by ``sqrt(w)``, so each block (a hidden layer, the class
      scores) gets the same prior weight: a 10-unit score block is not
      drowned by a 128-unit hidden layer.
    """
    w = np.ones(len(F)) if sample_weight is None else sample_weight
    mean = np.average(F, axis=0, weights=w)
    var = np.average((F - mean) ** 2, axis=0, weights=w)
    scale = np.empty(F.shape[1])
    start = 0
    for width in blocks or [F.shape[1]]:
        part = slice(start, start + width)
        rms = np.sqrt(var[part].mean())
        if rms <= 1e-12:  # a constant block (dead units): leave it unscaled
            scale[part] = 1.0
        else:
            scale[part] = np.sqrt(var[part] + (SCALE_FLOOR * rms) ** 2)
        if block_norm:
            scale[part] *= np.sqrt(width)
        start += width
    return mean, scale


def fold_standardization(coef, intercept, mean, scale, n_classes):
    """``(kernel, bias)`` of a softmax Dense layer on raw features.

    ``coef`` is ``LogisticRegression.coef_`` fitted on ``(x - mean) /
    scale``; for two classes its one row becomes the two softmax columns
    ``[-w/2, +w/2]``, which give the same probabilities.
    """
    coef = np.asarray(coef, np.float64)
    intercept = np.asarray(intercept, np.float64)
    if n_classes == 2 and coef.shape[0] == 1:
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    kernel = (coef / scale).T
    bias = intercept - (coef * (mean / scale)).sum(axis=1)
    return kernel, bias


def _logistic(C, tol):
    return LogisticRegression(C=C, tol=tol, max_iter=1000)


def _cv_losses(F, y, sample_weight, prep, Cs, seed):
    """Mean held-out weighted log-loss per C, or None if a class is single.

    The standardization is refitted inside each fold, as the final fit
    does: standardizing on all rows first hides exactly the blow-up the
    scale floor guards against. Each fold walks C upwards warm-started.
    """
    counts = np.bincount(y)
    n_splits = int(min(CV_FOLDS, counts[counts > 0].min()))
    if n_splits < 2:
        return None
    k = counts.size
    losses = np.zeros(len(Cs))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(F, y):
        w_train = None if sample_weight is None else sample_weight[train]
        w_test = np.ones(len(test)) if sample_weight is None else sample_weight[test]
        if w_test.sum() <= 0:
            w_test = np.ones(len(test))
        mean, scale = prep(F[train], w_train)
        Z_train, Z_test = (F[train] - mean) / scale, (F[test] - mean) / scale
        model = _logistic(Cs[0], 1e-3).set_params(warm_start=True)
        for j, C in enumerate(Cs):
            model.set_params(C=C).fit(Z_train, y[train], sample_weight=w_train)
            proba = np.full((len(test), k), 1e-15)
            proba[:, model.classes_] = np.clip(model.predict_proba(Z_test), 1e-15, 1)
            nll = -np.log(proba[np.arange(len(test)), y[test]])
            losses[j] += np.average(nll, weights=w_test)
    return losses / n_splits


def fit_probe(F, y, *, sample_weight=None, blocks=None, seed=0, Cs=DEFAULT_CS):
    """Solve the head on frozen features ``F``; returns a :class:`Probe`.

    Parameters
    ----------
    F : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Encoded labels ``0..n_classes-1``; every class present.
    sample_weight : ndarray of shape (n_samples,), default=None
    blocks : list of int, default=None
        Widths of concatenated feature blocks; with more than one, whether
        to weight each block by ``1 / sqrt(width)`` is chosen by the same
        internal CV as ``C``.
    seed : int, default=0
        Seeds the CV folds.
    Cs : sequence of float, default=DEFAULT_CS
        Candidate inverse L2 strengths, tried in increasing order. With a
        class of a single row no CV is possible and ``C=1`` is used.
    """
    F = np.asarray(F, np.float64)
    if not np.isfinite(F).all():
        raise ValueError(
            "The features the new head reads hold NaN or infinite values: the "
            "pretrained network's output overflows on these inputs. Scale X "
            "as the network was trained on (e.g. StandardScaler in a Pipeline)."
        )
    y = np.asarray(y)
    n_classes = int(y.max()) + 1
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    if w is not None and not (w > 0).all():
        # a zero weight removes the row, as in scikit-learn: the internal
        # CV's folds and class counts must not count it (they chose another
        # C, and probabilities differed by up to 0.5 from removing the rows)
        # (a class weighted zero throughout keeps its rows: every class
        # needs a column, and its zero weights still teach it nothing)
        weighted = np.bincount(y, weights=w, minlength=n_classes) > 0
        keep = (w > 0) | ~weighted[y]
        F, y, w = F[keep], y[keep], w[keep]
    options = [False, True] if blocks is not None and len(blocks) > 1 else [False]
    Cs = np.sort(np.asarray(Cs, np.float64))
    best = (np.inf, False, 1.0)
    # tiny problems: BLAS threads only add synchronisation (5-10x slower on
    # a loaded 2-core machine, measured); the caller's limits are restored.
    # The arrays are checked above and the parameters are ours: skipping
    # scikit-learn's re-validation in each of the ~70 fits of the internal
    # CV saved about a fifth of the probe's time (measured, 16 rows)
    with (
        threadpool_limits(1),
        config_context(skip_parameter_validation=True, assume_finite=True),
    ):
        for option in options:

            def prep(F_train, w_train, option=option):
                return standardizer(F_train, w_train, blocks, option)

            losses = _cv_losses(F, y, w, prep, Cs, seed)
            if losses is None:
                break
            # smallest loss; on (near-)ties the stronger regularization
            j = int(np.flatnonzero(losses <= losses.min() + 1e-6)[0])
            if losses[j] < best[0] - 1e-9:
                best = (losses[j], option, float(Cs[j]))
        _, block_norm, C = best
        mean, scale = standardizer(F, w, blocks, block_norm)
        model = _logistic(C, 1e-6).fit((F - mean) / scale, y, sample_weight=w)
    kernel, bias = fold_standardization(
        model.coef_, model.intercept_, mean, scale, n_classes
    )
    return Probe(kernel.astype(np.float32), bias.astype(np.float32), C, block_norm)
