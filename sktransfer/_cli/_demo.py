"""``sktransfer demo``: the whole story on scikit-learn's digits, in one command.

1. Pretrain ``PretrainedClassifier(random_state=0)`` on the source task (the
   first 1000 digits, 10 classes) and save it.
2. On the target task (other digits, "even" vs "odd", 10 labelled examples per
   class), grid-search ``TransferClassifier``'s freeze depth by 5-fold
   stratified cross-validation: ``"all"`` solves the new head on the source's
   frozen features (hidden layers and class scores), smaller depths
   fine-tune from that head.
3. Compare test accuracy with the same network trained from scratch on the
   same 20 examples and with ``StandardScaler + LogisticRegression``.
4. Print the tables and save a two-panel figure (matplotlib, if installed).

Nothing is downloaded: the digits ship with scikit-learn.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._pretrained import PretrainedClassifier
from ..datasets import load_parity_transfer
from ._report import Report
from ._search import freeze_depths, freeze_label, grid_search

__all__ = ["run"]

FREEZE_GRID = [0, 1, 2, "all"]
FIGURE_NAME = "sktransfer-demo.png"


def _settings(quick):
    """Estimator keyword arguments and CV folds of a full or quick run."""
    if quick:
        return {"epochs": 10}, {"epochs": 10}, 2
    return {}, {}, 5


def _baselines(X, y, X_test, y_test, scratch_params):
    scratch = PretrainedClassifier(random_state=0, **scratch_params).fit(X, y)
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    return scratch.score(X_test, y_test), linear.score(X_test, y_test)


def run(out="sktransfer-demo", seeds=1, quick=False, report=None):
    """Run the demo, writing its files into ``out``; returns the exit status.

    Parameters
    ----------
    out : str, default="sktransfer-demo"
        Folder for ``source.keras``, ``transfer.keras`` and the figure.
    seeds : int, default=1
        How many draws of the labelled target examples to average over.
    quick : bool, default=False
        Few epochs and 2 folds: checks that everything works, in seconds.
    report : Report, default=None
        Where to print; a new one by default.

    Returns
    -------
    status : int
    """
    report = Report() if report is None else report
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} exists and is not a folder.")
    os.makedirs(out, exist_ok=True)
    source_path = os.path.join(out, "source.keras")
    transfer_path = os.path.join(out, "transfer.keras")
    figure_path = os.path.join(out, FIGURE_NAME)
    pretrain_params, transfer_params, cv = _settings(quick)

    data = load_parity_transfer(random_state=0)
    n_labelled, n_test = len(data.y_target), len(data.y_test)
    report.say(
        "sktransfer demo: transfer learning on scikit-learn's digits "
        "(nothing downloaded)"
    )
    report.say(
        f"  source task: {len(data.y_source)} digits, 10 classes (0-9)\n"
        f"  target task: other digits, 'even' vs 'odd', only {n_labelled // 2} "
        f"labelled per class ({n_labelled} in all); {n_test} more are the test set"
    )
    if quick:
        report.say("  --quick: few epochs and 2 folds; the numbers below mean little")
    report.say()

    report.log(
        f"1. pretraining PretrainedClassifier on the {len(data.y_source)} "
        "source digits ..."
    )
    source = PretrainedClassifier(random_state=0, **pretrain_params)
    source.fit(data.X_source, data.y_source)
    source.save(source_path)
    epochs = len(source.history_["loss"])
    stopped = " (early stopping)" if epochs < source.epochs else ""
    report.log(f"   done in {epochs} epochs{stopped}; saved to {source_path}")
    n_frozen, n_layers = freeze_depths(
        source.model_, data.X_source.shape[1:], FREEZE_GRID
    )

    cv_scores = []  # per seed: array (n_depths, n_folds)
    test = {"transfer": [], "scratch": [], "linear": []}
    best_depths = []
    for seed in range(seeds):
        if seed:
            data = load_parity_transfer(random_state=seed)
        which = f" (labelled draw {seed + 1} of {seeds})" if seeds > 1 else ""
        report.log(
            f"2. grid search over freeze {FREEZE_GRID}, {cv}-fold CV on the "
            f"{n_labelled} labelled examples{which} ..."
        )
        search = grid_search(
            source_path,
            data.X_target,
            data.y_target,
            FREEZE_GRID,
            cv,
            0,
            report,
            **transfer_params,
        )
        results = search.cv_results_
        cv_scores.append(
            np.array([results[f"split{k}_test_score"] for k in range(cv)]).T
        )
        best = search.best_estimator_
        best_depths.append(best.freeze)
        test["transfer"].append(best.score(data.X_test, data.y_test))
        if seed == 0:
            best.save(transfer_path)
        report.log(
            f"   best freeze={best.freeze!r}, refitted on all {n_labelled}; test "
            f"accuracy {test['transfer'][-1]:.3f}"
        )
        report.log(
            "3. baselines on the same examples: the network from scratch, "
            "logistic regression ..."
        )
        scratch, linear = _baselines(
            data.X_target, data.y_target, data.X_test, data.y_test, pretrain_params
        )
        test["scratch"].append(scratch)
        test["linear"].append(linear)
    report.log("done")

    pooled = np.concatenate(cv_scores, axis=1)  # (n_depths, seeds * folds)
    cv_mean, cv_std = pooled.mean(axis=1), pooled.std(axis=1)
    best_index = int(np.argmax(cv_mean))
    depth_labels = [
        freeze_label(spec, n_frozen[i], n_layers) for i, spec in enumerate(FREEZE_GRID)
    ]
    report.say()
    over = f", {seeds} labelled draws" if seeds > 1 else ""
    report.table(
        f"Freeze depth vs {cv}-fold CV accuracy on the {n_labelled} labelled "
        f"examples{over}",
        ["freeze (frozen layers)", "CV accuracy", "best"],
        [
            [
                label,
                f"{cv_mean[i]:.3f} ± {cv_std[i]:.3f}",
                "*" if i == best_index else "",
            ]
            for i, label in enumerate(depth_labels)
        ],
        best=best_index,
    )
    report.say(
        f"  (the base: the source's {n_layers - 1} hidden Dense layers and a copy "
        "of its head, whose class scores the new head reads too; 'all' solves "
        "the new head as a logistic regression, smaller depths fine-tune from "
        "that head)"
    )
    chosen = ", ".join(repr(d) for d in best_depths)
    report.say()
    mean = {name: float(np.mean(values)) for name, values in test.items()}
    std = {name: float(np.std(values)) for name, values in test.items()}

    def cell(name):
        return f"{mean[name]:.3f}" + (f" ± {std[name]:.3f}" if seeds > 1 else "")

    labels = {
        "transfer": (
            f"TransferClassifier from the source (freeze={chosen}, by CV)"
            if seeds == 1
            else f"TransferClassifier from the source (freeze by CV: {chosen})"
        ),
        "scratch": "PretrainedClassifier from scratch (same network)",
        "linear": "StandardScaler + LogisticRegression",
    }
    report.table(
        f"Test accuracy on {n_test} held-out target digits, all trained on "
        f"{n_labelled}",
        ["model", "test accuracy"],
        [[labels[k], cell(k)] for k in test],
    )
    gain_scratch = 100 * (mean["transfer"] - mean["scratch"])
    gain_linear = 100 * (mean["transfer"] - mean["linear"])
    report.say(
        f"  gain of transfer: {gain_scratch:+.1f} points over from scratch, "
        f"{gain_linear:+.1f} over logistic regression"
    )
    report.say()

    figure = save_figure(
        figure_path,
        depth_labels,
        cv_mean,
        cv_std,
        best_index,
        [labels_short[k] for k in test],
        [mean[k] for k in test],
        [std[k] for k in test] if seeds > 1 else None,
        title=f"{n_labelled} labelled examples, {n_test} test digits",
    )
    report.say("Files:")
    report.say(f"  {source_path:<40} the pretrained source (sktransfer.load)")
    report.say(f"  {transfer_path:<40} the best transfer model")
    if figure is not None:
        report.say(f"  {figure_path:<40} the figure")
    else:
        report.say(
            "  figure skipped: matplotlib is not installed "
            "(pip install 'sktransfer[plots]')"
        )
    return 0


labels_short = {
    "transfer": "transfer\n(sktransfer)",
    "scratch": "same network\nfrom scratch",
    "linear": "logistic\nregression",
}


def save_figure(
    path, depth_labels, cv_mean, cv_std, best_index, names, means, stds, title=""
):
    """The demo's two-panel figure; ``None`` when matplotlib is missing.

    Parameters
    ----------
    path : str
        Where to write the PNG.
    depth_labels : list of str
        One label per freeze depth.
    cv_mean, cv_std : array-like
        Cross-validated accuracy per depth.
    best_index : int
        The depth chosen by CV.
    names, means, stds : list
        Test accuracy per model (``stds`` may be None).
    title : str
        Figure title.

    Returns
    -------
    path : str or None
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
    x = np.arange(len(depth_labels))
    left.errorbar(x, cv_mean, yerr=cv_std, marker="o", capsize=4, color="C0")
    left.plot(
        x[best_index],
        cv_mean[best_index],
        marker="*",
        markersize=16,
        color="C1",
        linestyle="none",
        label="chosen by CV",
    )
    left.set_xticks(x, [label.replace(" (", "\n(") for label in depth_labels])
    left.set_xlabel("freeze depth (frozen layers of the source)")
    left.set_ylabel("cross-validated accuracy")
    left.set_title("Choosing the freeze depth (GridSearchCV)")
    left.legend(loc="best")
    left.grid(alpha=0.3)
    bars = right.bar(
        np.arange(len(names)),
        means,
        yerr=stds,
        capsize=4,
        color=["C1", "C7", "C7"][: len(names)],
    )
    right.bar_label(bars, fmt="%.3f", padding=2)
    right.set_xticks(np.arange(len(names)), names)
    # chance is 0.5 on this balanced two-class task
    right.axhline(0.5, color="k", linewidth=0.8, linestyle=":")
    right.set_ylim(min(0.5, min(means) - 0.05), 1.0)
    right.set_ylabel("test accuracy")
    right.set_title("Same labelled examples, three models")
    if title:
        figure.suptitle(f"sktransfer demo: digits parity, {title}")
    figure.savefig(path, dpi=90)
    return path
