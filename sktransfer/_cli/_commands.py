"""The commands: ``demo``, ``pretrain``, ``transfer`` and ``predict``.

Each takes the parsed arguments and returns the exit status; a bad input
raises :class:`~._errors.CommandError` (or the ValueError of the library
call that found it), which ``main`` prints as one line. This module imports
TensorFlow (through the estimators): ``main`` imports it only once the
arguments are parsed, so ``sktransfer --help`` stays fast.
"""

from __future__ import annotations

import csv
import os
import sys
import warnings

import numpy as np

from .._files import load_keras_model
from .._load import load
from .._pretrained import PretrainedClassifier
from . import _demo
from ._csv import read_csv, training_data
from ._errors import CommandError, check_input_file, check_output_path
from ._report import Report
from ._search import freeze_depths, freeze_label, grid_search, spec_list

__all__ = ["COMMANDS"]


def _read(path, report):
    table = read_csv(path)
    for message in table.warnings:
        report.warn(message)
    return table


def _check_tabular(estimator, path):
    if len(estimator.input_shape_) != 1:
        raise CommandError(
            f"model {path!r} takes inputs of shape {tuple(estimator.input_shape_)} "
            "(images); the command line handles tables only. Use the Python API."
        )


# ------------------------------------------------------------------ pretrain
def pretrain(args):
    """Train a ``PretrainedClassifier`` on a CSV table and save it."""
    check_output_path(args.out, ".keras", "model file")
    report = Report()
    table = _read(args.data, report)
    X, y, names = training_data(table, args.target, args.ignore)
    classes = np.unique(y)
    report.log(
        f"read {args.data}: {len(y)} rows, {len(names)} features, "
        f"{len(classes)} classes in {args.target!r}"
    )
    clf = PretrainedClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        epochs=args.epochs,
        random_state=args.random_state,
    )
    report.log(
        f"training PretrainedClassifier(hidden_layer_sizes={tuple(args.hidden)}) ..."
    )
    clf.fit(X, y)
    epochs = len(clf.history_.get("loss", []))
    train_accuracy = clf.score(X, y)
    # fitted on an array: record the columns so that predict reads them by name
    clf.feature_names_in_ = np.asarray(names, dtype=object)
    report.log(
        f"trained for {epochs} epochs; accuracy on its own training rows "
        f"{train_accuracy:.3f}"
    )
    clf.save(args.out)
    report.log(f"saved the fitted PretrainedClassifier to {args.out}")
    report.say(
        f"next: sktransfer transfer {args.out} TARGET.csv --target COLUMN "
        "--out model.keras"
    )
    return 0


# ------------------------------------------------------------------ transfer
def _load_source(path):
    """The source network of ``transfer`` and, if it has them, its columns.

    A saved estimator gives its network and column names; any other Keras
    model file (``.keras`` or legacy ``.h5``) is a source too, without names.
    """
    check_input_file(path, "source model")
    try:
        estimator = load(path)
    except ValueError:
        # a plain Keras model (load says so); this raises the clear error
        # when the file is no model at all
        return load_keras_model(path, what="source model"), None
    return estimator.model_, getattr(estimator, "feature_names_in_", None)


def _match_columns(table, X, names, source_names):
    """Feed columns in the source's order when it has the same names."""
    if source_names is None or list(source_names) == names:
        return X, names, None
    source_names = [str(name) for name in source_names]
    if sorted(source_names) == sorted(names):
        return (
            table.numeric(source_names),
            source_names,
            "columns put in the order the source was trained on",
        )
    return (
        X,
        names,
        "the source was trained on other column names; the feature columns are "
        "matched by position",
    )


def transfer(args):
    """Grid-search the freeze depth of a transfer; save the best model."""
    check_output_path(args.out, ".keras", "model file")
    # the saved model names its source by an absolute path, so that refitting
    # it after loading works from any working directory
    source_path = os.path.abspath(args.source)
    if os.path.abspath(args.out) == source_path:
        raise CommandError(
            f"--out {args.out!r} is the source model itself: saving there would "
            "replace the source, and the saved model would name itself as its "
            "source. Choose another --out."
        )
    report = Report()
    source, source_names = _load_source(args.source)
    table = _read(args.data, report)
    X, y, names = training_data(table, args.target, args.ignore)
    X, names, note = _match_columns(table, X, names, source_names)
    n_frozen, n_layers = freeze_depths(source, X.shape[1:], args.freeze)
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < args.cv:
        raise CommandError(
            f"class {str(classes[np.argmin(counts)])!r} has only {counts.min()} rows, "
            f"too few for --cv {args.cv}; use --cv {max(2, counts.min())} or fewer "
            "folds (at least 2), or label more rows."
        )
    report.log(
        f"read {args.data}: {len(y)} rows, {len(names)} features, "
        f"{len(classes)} classes in {args.target!r}"
    )
    if note:
        report.log(f"note: {note}")
    report.log(
        f"grid search over freeze {spec_list(args.freeze)} with {args.cv}-fold "
        f"CV ({len(args.freeze) * args.cv} fits, then one refit) ..."
    )
    search = grid_search(
        source_path, X, y, args.freeze, args.cv, args.random_state, report,
        epochs=args.epochs,
    )  # fmt: skip
    results = search.cv_results_
    best = search.best_index_
    rows = [
        [
            freeze_label(spec, n_frozen[i], n_layers),
            f"{results['mean_test_score'][i]:.3f} ± {results['std_test_score'][i]:.3f}",
            f"{results['mean_fit_time'][i]:.1f}s",
            "*" if i == best else "",
        ]
        for i, spec in enumerate(args.freeze)
    ]
    report.say()
    report.table(
        f"Freeze depth vs {args.cv}-fold CV accuracy on {len(y)} rows of {args.data}",
        ["freeze (frozen layers)", "CV accuracy", "fit time", "best"],
        rows,
        best=best,
    )
    report.say()
    model = search.best_estimator_
    model.feature_names_in_ = np.asarray(names, dtype=object)
    model.save(args.out)
    report.log(
        f"saved the best TransferClassifier (freeze={model.freeze!r}, refitted on "
        f"all {len(y)} rows) to {args.out}"
    )
    report.say(f"next: sktransfer predict {args.out} NEW.csv --out predictions.csv")
    return 0


# ------------------------------------------------------------------- predict
def _load_estimator(path):
    check_input_file(path, "model")
    try:
        estimator = load(path)
    except ValueError as exc:
        if "plain Keras model" not in str(exc):
            raise
        raise CommandError(
            f"model {path!r} is a plain Keras model, not a saved sktransfer "
            "estimator, so it has no classes to predict. Transfer it to your "
            f"labels first: sktransfer transfer {path} DATA.csv --target COLUMN "
            "--out model.keras"
        ) from None
    _check_tabular(estimator, path)
    return estimator


def _feature_columns(estimator, table, args):
    trained_names = getattr(estimator, "feature_names_in_", None)
    if trained_names is not None:
        names = [str(name) for name in trained_names]
        needed = [name for name in args.ignore if name in names]
        if needed:
            raise CommandError(
                f"--ignore {' '.join(needed)}: the model {args.model!r} was "
                "trained on these columns and reads them by name; leave them "
                "out of --ignore (columns the model does not know are skipped "
                "anyway)."
            )
        table.require(names, f"the model {args.model!r} was trained on it")
        return names
    names = [c for c in table.columns if c not in set(args.ignore)]
    if len(names) != estimator.n_features_in_:
        raise CommandError(
            f"model {args.model!r} expects {estimator.n_features_in_} features "
            f"and was saved without column names, so every column of "
            f"{args.data!r} counts as one, but it has {len(names)}. Leave out "
            "the others with --ignore COLUMN."
        )
    return names


def predict(args):
    """Write the predictions (and probabilities) of a saved model as CSV."""
    to_stdout = args.out == "-"
    if not to_stdout:
        check_output_path(args.out, None, "predictions file")
    report = Report()
    estimator = _load_estimator(args.model)
    table = _read(args.data, report)
    if args.ignore:
        table.require(args.ignore, "given to --ignore")
    X = table.numeric(_feature_columns(estimator, table, args))
    with warnings.catch_warnings():
        # columns were matched by name above; the array itself has none
        warnings.filterwarnings("ignore", message=".*feature names.*")
        proba = estimator.predict_proba(X)
    predictions = estimator.classes_[np.argmax(proba, axis=1)]
    header = ["prediction"]
    if args.proba:
        header += [f"proba_{label}" for label in estimator.classes_]
    handle = sys.stdout if to_stdout else open(args.out, "w", newline="")
    try:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, label in enumerate(predictions):
            row = [label]
            if args.proba:
                # 9 significant digits: a float32 probability read back is
                # the same float32
                row += [f"{p:.9g}" for p in proba[i]]
            writer.writerow(row)
    finally:
        if not to_stdout:
            handle.close()
    where = "stdout" if to_stdout else args.out
    message = f"wrote {len(predictions)} predictions to {where}"
    # with the predictions on stdout, the status goes to stderr
    (report.errors if to_stdout else report.console).print(message, soft_wrap=True)
    return 0


# ---------------------------------------------------------------------- demo
def demo(args):
    """The end-to-end story on scikit-learn's digits."""
    return _demo.run(out=args.out, seeds=args.seeds, quick=args.quick)


COMMANDS = {
    "demo": demo,
    "pretrain": pretrain,
    "transfer": transfer,
    "predict": predict,
}
