"""The freeze-depth grid search of ``transfer`` and the demo, with progress.

``GridSearchCV`` fits candidate by candidate, fold by fold (sequentially), so
a scorer that counts its calls knows when a fit ends and when a candidate's
folds are all scored: it moves the progress bar one fit on and logs each
candidate's CV accuracy. The bar counts the refit of the best candidate on
all rows as the last fit.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from .._freeze import freezable_groups, n_frozen_from_spec
from .._network import cut_network
from .._transfer import TransferClassifier
from ._errors import CommandError

__all__ = ["freeze_depths", "freeze_label", "grid_search", "spec_list"]


def freeze_depths(model, input_shape, freezes):
    """Layers frozen by each freeze spec: (n_frozen per spec, n_layers).

    Parameters
    ----------
    model : keras.Model
        The source network.
    input_shape : tuple of int
        Shape of one row of the target data.
    freezes : list of int or "all"

    Returns
    -------
    n_frozen : list of int
    n_layers : int
        Freezable layers of the source's base (below the head).
    """
    expected = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    if expected is not None and expected != tuple(input_shape):
        raise CommandError(
            f"the source network takes inputs of shape {expected}, but the data "
            f"has {input_shape[0]} feature columns."
        )
    groups = freezable_groups(cut_network(model, "auto", tuple(input_shape)))
    return [n_frozen_from_spec(spec, groups) for spec in freezes], len(groups)


def freeze_label(spec, n_frozen, n_layers):
    """``"1 (1 of 3)"``: a freeze spec and how many layers it freezes.

    Examples
    --------
    >>> freeze_label(-1, 2, 3), freeze_label("all", 3, 3)
    ('-1 (2 of 3)', 'all (3 of 3)')
    """
    if spec == "all":
        return f"all ({n_layers} of {n_layers})"
    return f"{spec} ({n_frozen} of {n_layers})"


def spec_list(freezes):
    """``"[0, 1, 'all']"``.

    Examples
    --------
    >>> spec_list([0, 1, "all"])
    "[0, 1, 'all']"
    """
    return "[" + ", ".join(repr(f) for f in freezes) + "]"


class _ScorerWithProgress:
    """Accuracy that moves the bar one fit on, and logs each candidate's mean.

    GridSearchCV (sequential) scores candidate by candidate, fold by fold, so
    every ``n_splits``-th call ends a candidate.
    """

    def __init__(self, n_splits, n_fits, step):
        self.n_splits = n_splits
        self.n_fits = n_fits
        self.step = step
        self.scores = []

    def __call__(self, estimator, X, y):
        score = estimator.score(X, y)
        self.scores.append(score)
        message = None
        if len(self.scores) % self.n_splits == 0:
            last = np.array(self.scores[-self.n_splits :])
            message = (
                f"  freeze={estimator.freeze!s:<4} CV accuracy "
                f"{last.mean():.3f} ± {last.std():.3f}"
            )
            if len(self.scores) == self.n_fits:
                message += "; refitting the best on all rows ..."
        self.step(message)
        return score


def grid_search(source, X, y, freezes, cv, random_state, report, **params):
    """``GridSearchCV`` of ``TransferClassifier`` over ``freeze``, with a bar.

    Parameters
    ----------
    source : str or keras.Model
        The ``pretrained`` network.
    X, y : ndarray
    freezes : list of int or "all"
    cv : int
        Stratified folds (shuffled with ``random_state``).
    random_state : int
    report : Report
        Draws the progress bar and logs each candidate.
    **params
        More ``TransferClassifier`` parameters (``epochs``).

    Returns
    -------
    search : GridSearchCV
        Fitted, with ``best_estimator_`` refitted on all rows.
    """
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    n_fits = len(freezes) * cv
    with report.fits(n_fits + 1, "grid search") as step:
        search = GridSearchCV(
            TransferClassifier(pretrained=source, random_state=random_state, **params),
            {"freeze": list(freezes)},
            cv=folds,
            scoring=_ScorerWithProgress(cv, n_fits, step),
            error_score="raise",
        )
        search.fit(X, y)
        step()  # the refit
    return search
