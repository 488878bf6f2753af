"""The ``sktransfer`` command line: a demo, and transfer learning on CSV files.

Commands::

    sktransfer demo [--out DIR] [--seeds N] [--quick]
    sktransfer pretrain DATA.csv --target COLUMN --out source.keras
    sktransfer transfer source.keras DATA.csv --target COLUMN --out model.keras
    sktransfer predict model.keras DATA.csv [--out predictions.csv] [--proba]

``python -m sktransfer ...`` is the same program. CSV files are read with the
standard library (pandas is not needed): the first line names the columns,
fields are separated by commas, and every feature column must be numeric.
Models are written with ``estimator.save`` and read with ``sktransfer.load``.

A bad input (a missing or unreadable file, a file that is not a model, a
missing column, a non-numeric feature) ends the program with one line on
stderr, ``sktransfer: error: ...``, and exit status 2. Set the environment
variable ``SKTRANSFER_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import warnings

import numpy as np

__all__ = ["main", "read_csv"]

_FREEZE_HELP = (
    "freeze depths to compare: integers (layers of the source network frozen, "
    "counted from the input; negative: all but the last k) or 'all'"
)


class CommandError(ValueError):
    """A bad input, reported as one line on stderr with exit status 2."""


# --------------------------------------------------------------------- output
class _Progress:
    """Print one line per step, prefixed with the seconds since the start."""

    def __init__(self, stream=None):
        self.start = time.perf_counter()
        self.stream = stream

    def elapsed(self):
        return time.perf_counter() - self.start

    def __call__(self, message):
        stream = self.stream if self.stream is not None else sys.stdout
        print(f"[{self.elapsed():6.1f}s] {message}", file=stream, flush=True)


def _format_table(header, rows, indent="  "):
    """A plain-text table: left-aligned first column, the rest right-aligned."""
    cells = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        parts = [row[0].ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        return indent + "  ".join(parts).rstrip()

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def _one_line(exc):
    """The first meaningful line of an exception's message."""
    text = str(exc).strip()
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename!r}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # Keras and scikit-learn messages wrap; join them, but never a traceback
    kept = []
    for line in lines:
        if line.startswith("Traceback"):
            break
        kept.append(line)
    message = " ".join(kept) or lines[0]
    return message if len(message) <= 600 else message[:597] + "..."


# ------------------------------------------------------------------ CSV input
def _check_input_file(path, what):
    if not os.path.exists(path):
        raise CommandError(f"{what} {path!r} does not exist.")
    if os.path.isdir(path):
        raise CommandError(f"{what} {path!r} is a directory, not a file.")


def _check_output_path(path, suffix=None, what="output file"):
    if suffix is not None and not path.endswith(suffix):
        raise CommandError(f"{what} {path!r} must end in {suffix!r}.")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CommandError(
            f"cannot write {what} {path!r}: directory {parent!r} does not exist."
        )
    if os.path.isdir(path):
        raise CommandError(f"cannot write {what} {path!r}: it is a directory.")


def _finite(cell):
    try:
        return bool(np.isfinite(float(cell)))
    except ValueError:
        return False


class Table:
    """The text cells of a CSV file, column by column.

    Attributes
    ----------
    path : str
    columns : list of str
        Column names, from the header line.
    cells : dict of str to ndarray of str
    lines : ndarray of int
        File line number of each data row (for error messages).
    """

    def __init__(self, path, columns, rows, lines):
        self.path = path
        self.columns = columns
        data = np.array(rows, dtype=str).reshape(len(rows), len(columns))
        self.cells = {name: data[:, i] for i, name in enumerate(columns)}
        self.lines = np.asarray(lines)

    def __len__(self):
        return len(self.lines)

    def require(self, names, why):
        missing = [name for name in names if name not in self.cells]
        if missing:
            shown = ", ".join(repr(c) for c in self.columns[:8])
            more = (
                f" (and {len(self.columns) - 8} more)" if len(self.columns) > 8 else ""
            )
            others = (
                f" (nor {len(missing) - 1} other column(s) it needs)"
                if len(missing) > 1
                else ""
            )
            raise CommandError(
                f"{self.path!r} has no column {missing[0]!r} ({why}){others}; its "
                f"columns are {shown}{more}."
            )

    def numeric(self, names):
        """The named columns as a float32 matrix; clear errors otherwise."""
        self.require(names, "needed as a feature")
        columns = []
        for name in names:
            text = self.cells[name]
            try:
                values = text.astype(np.float64)
            except ValueError:
                values = None
            if values is None or not np.isfinite(values).all():
                i = next(i for i, cell in enumerate(text) if not _finite(cell))
                cell = str(text[i])
                problem = "an empty cell" if not cell.strip() else f"{cell!r}"
                raise CommandError(
                    f"feature column {name!r} of {self.path!r} must be numeric, but "
                    f"line {self.lines[i]} holds {problem}. Encode or drop "
                    "non-numeric columns (--ignore COLUMN), and fill missing values."
                )
            columns.append(values)
        return np.column_stack(columns).astype(np.float32)

    def labels(self, name):
        """A target column: integers when every label is one, else strings."""
        self.require([name], "given as --target")
        text = np.char.strip(self.cells[name])
        empty = np.flatnonzero(text == "")
        if empty.size:
            raise CommandError(
                f"target column {name!r} of {self.path!r} has an empty cell on line "
                f"{self.lines[empty[0]]}."
            )
        try:
            as_int = np.array([int(v) for v in text])
        except ValueError:
            return text.astype(object)
        return as_int


def read_csv(path):
    """Read a comma-separated file with a header line into a :class:`Table`.

    Parameters
    ----------
    path : str
        The file; its first line names the columns.

    Returns
    -------
    table : Table
    """
    _check_input_file(path, "data file")
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise CommandError(f"data file {path!r} is empty.")
            header = [name.strip() for name in header]
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise CommandError(
                        f"data file {path!r} is not a CSV table like its header: "
                        f"line {reader.line_num} has {len(row)} fields, the header "
                        f"has {len(header)}."
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise CommandError(
            f"data file {path!r} is not a text CSV file (it is not UTF-8 text)."
        ) from None
    except csv.Error as exc:
        raise CommandError(
            f"data file {path!r} is not a valid CSV file: {exc}."
        ) from None
    if not any(header):
        raise CommandError(f"data file {path!r} has an empty header line.")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise CommandError(
            f"data file {path!r} names column {duplicated[0]!r} more than once."
        )
    if not rows:
        raise CommandError(f"data file {path!r} has a header but no data rows.")
    return Table(path, header, rows, lines)


def _training_data(table, target, ignore):
    """Feature matrix, labels and feature names of a training CSV."""
    table.labels(target)  # the target exists and is complete, checked first
    if ignore:
        table.require(ignore, "given to --ignore")
    names = [c for c in table.columns if c != target and c not in set(ignore)]
    if not names:
        raise CommandError(
            f"{table.path!r} has no feature columns besides the target {target!r}."
        )
    y = table.labels(target)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise CommandError(
            f"target column {target!r} of {table.path!r} holds only one class "
            f"({str(classes[0])!r}); a classifier needs at least two."
        )
    return table.numeric(names), y, names


def _check_tabular(estimator, path):
    if len(estimator.input_shape_) != 1:
        raise CommandError(
            f"model {path!r} takes inputs of shape {tuple(estimator.input_shape_)} "
            "(images); the command line handles tables only. Use the Python API."
        )


# ------------------------------------------------------------------ commands
def _pretrain(args):
    from . import PretrainedClassifier

    _check_output_path(args.out, ".keras", "model file")
    progress = _Progress()
    table = read_csv(args.data)
    X, y, names = _training_data(table, args.target, args.ignore)
    classes = np.unique(y)
    progress(
        f"read {args.data}: {len(y)} rows, {len(names)} features, "
        f"{len(classes)} classes in {args.target!r}"
    )
    clf = PretrainedClassifier(
        hidden_layer_sizes=tuple(args.hidden),
        epochs=args.epochs,
        random_state=args.random_state,
    )
    progress(
        f"training PretrainedClassifier(hidden_layer_sizes={tuple(args.hidden)}) ..."
    )
    clf.fit(X, y)
    epochs = len(clf.history_.get("loss", []))
    train_accuracy = clf.score(X, y)
    # fitted on an array: record the columns so that predict reads them by name
    clf.feature_names_in_ = np.asarray(names, dtype=object)
    progress(
        f"trained for {epochs} epochs; accuracy on its own training rows "
        f"{train_accuracy:.3f}"
    )
    clf.save(args.out)
    progress(f"saved the fitted PretrainedClassifier to {args.out}")
    print(
        f"next: sktransfer transfer {args.out} TARGET.csv --target COLUMN "
        "--out model.keras"
    )
    return 0


def _load_source(path):
    """The source network of ``transfer`` and, if it has them, its columns."""
    from ._files import load_keras_model
    from ._load import load

    _check_input_file(path, "source model")
    try:
        estimator = load(path)
    except ValueError:
        # a plain Keras model file is a valid source too; this raises the
        # clear error when the file is no model at all
        return load_keras_model(path, what="source model"), None
    return estimator.model_, getattr(estimator, "feature_names_in_", None)


def _freeze_depths(model, input_shape, freezes):
    """Layers frozen by each freeze spec: (n_frozen per spec, n_layers)."""
    from ._freeze import freezable_groups, n_frozen_from_spec
    from ._network import cut_network

    expected = tuple(model.inputs[0].shape[1:]) if model.inputs else None
    if expected is not None and expected != tuple(input_shape):
        raise CommandError(
            f"the source network takes inputs of shape {expected}, but the data "
            f"has {input_shape[0]} feature columns."
        )
    groups = freezable_groups(cut_network(model, "auto", tuple(input_shape)))
    return [n_frozen_from_spec(spec, groups) for spec in freezes], len(groups)


def _freeze_label(spec, n_frozen, n_layers):
    if spec == "all":
        return f"all ({n_layers} of {n_layers})"
    return f"{spec} ({n_frozen} of {n_layers})"


class _ProgressScorer:
    """Accuracy scorer that reports each candidate once its folds are scored.

    GridSearchCV (sequential) scores candidate by candidate, fold by fold, so
    every ``n_splits``-th call ends a candidate.
    """

    def __init__(self, n_splits, progress, prefix="  "):
        self.n_splits = n_splits
        self.progress = progress
        self.prefix = prefix
        self.scores = []

    def __call__(self, estimator, X, y):
        score = estimator.score(X, y)
        self.scores.append(score)
        if len(self.scores) % self.n_splits == 0 and self.progress is not None:
            last = np.array(self.scores[-self.n_splits :])
            self.progress(
                f"{self.prefix}freeze={estimator.freeze!s:<4} CV accuracy "
                f"{last.mean():.3f} ± {last.std():.3f}"
            )
        return score


def _grid_search(source, X, y, freezes, cv, random_state, progress, **params):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from . import TransferClassifier

    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    search = GridSearchCV(
        TransferClassifier(pretrained=source, random_state=random_state, **params),
        {"freeze": list(freezes)},
        cv=folds,
        scoring=_ProgressScorer(cv, progress),
        error_score="raise",
    )
    return search.fit(X, y)


def _transfer(args):
    _check_output_path(args.out, ".keras", "model file")
    progress = _Progress()
    source, source_names = _load_source(args.source)
    table = read_csv(args.data)
    X, y, names = _training_data(table, args.target, args.ignore)
    note = None
    if source_names is not None and list(source_names) != names:
        source_names = [str(name) for name in source_names]
        if sorted(source_names) == sorted(names):
            # same columns in another order: feed them as the source saw them
            names = source_names
            X = table.numeric(names)
            note = "columns put in the order the source was trained on"
        else:
            note = (
                "the source was trained on other column names; the feature "
                "columns are matched by position"
            )
    n_frozen, n_layers = _freeze_depths(source, X.shape[1:], args.freeze)
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < args.cv:
        raise CommandError(
            f"class {str(classes[np.argmin(counts)])!r} has only {counts.min()} rows, "
            f"too few for --cv {args.cv}; use --cv {max(2, counts.min())} or fewer "
            "folds (at least 2), or label more rows."
        )
    progress(
        f"read {args.data}: {len(y)} rows, {len(names)} features, "
        f"{len(classes)} classes in {args.target!r}"
    )
    if note:
        progress(f"note: {note}")
    progress(
        f"grid search over freeze {_spec_list(args.freeze)} with {args.cv}-fold "
        f"CV ({len(args.freeze) * args.cv} fits, then one refit) ..."
    )
    search = _grid_search(
        args.source,
        X,
        y,
        args.freeze,
        args.cv,
        args.random_state,
        progress,
        epochs=args.epochs,
    )
    results = search.cv_results_
    best = search.best_index_
    rows = []
    for i, spec in enumerate(args.freeze):
        rows.append(
            [
                _freeze_label(spec, n_frozen[i], n_layers),
                f"{results['mean_test_score'][i]:.3f} ± "
                f"{results['std_test_score'][i]:.3f}",
                f"{results['mean_fit_time'][i]:.1f}s",
                "*" if i == best else "",
            ]
        )
    print()
    print(f"Freeze depth vs {args.cv}-fold CV accuracy on {len(y)} rows of {args.data}")
    print(
        _format_table(
            ["freeze (frozen layers)", "CV accuracy", "fit time", "best"], rows
        )
    )
    print()
    model = search.best_estimator_
    model.feature_names_in_ = np.asarray(names, dtype=object)
    model.save(args.out)
    progress(
        f"saved the best TransferClassifier (freeze={model.freeze!r}, refitted on "
        f"all {len(y)} rows) to {args.out}"
    )
    print(f"next: sktransfer predict {args.out} NEW.csv --out predictions.csv")
    return 0


def _spec_list(freezes):
    return (
        "["
        + ", ".join(repr(f) if isinstance(f, str) else str(f) for f in freezes)
        + "]"
    )


def _predict(args):
    from ._load import load

    to_stdout = args.out == "-"
    if not to_stdout:
        _check_output_path(args.out, None, "predictions file")
    _check_input_file(args.model, "model")
    estimator = load(args.model)
    _check_tabular(estimator, args.model)
    table = read_csv(args.data)
    if args.ignore:
        table.require(args.ignore, "given to --ignore")
    trained_names = getattr(estimator, "feature_names_in_", None)
    if trained_names is not None:
        names = [str(name) for name in trained_names]
        table.require(names, f"the model {args.model!r} was trained on it")
    else:
        names = [c for c in table.columns if c not in set(args.ignore)]
        if len(names) != estimator.n_features_in_:
            raise CommandError(
                f"model {args.model!r} expects {estimator.n_features_in_} features "
                f"and was saved without column names, so every column of "
                f"{args.data!r} counts as one, but it has {len(names)}. Leave out "
                "the others with --ignore COLUMN."
            )
    X = table.numeric(names)
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
                row += [f"{p:.6g}" for p in proba[i]]
            writer.writerow(row)
    finally:
        if not to_stdout:
            handle.close()
    status = sys.stderr if to_stdout else sys.stdout
    where = "stdout" if to_stdout else args.out
    print(f"wrote {len(predictions)} predictions to {where}", file=status)
    return 0


# ---------------------------------------------------------------------- demo
def _demo(args):
    from . import _demo

    return _demo.run(out=args.out, seeds=args.seeds, quick=args.quick)


# -------------------------------------------------------------------- parser
def _freeze_spec(text):
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid freeze depth {text!r}: use an integer or 'all'"
        ) from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _folds(text):
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"need at least 2 folds, got {text!r}")
    return value


def _add_ignore_option(parser):
    parser.add_argument(
        "--ignore", nargs="+", default=[], metavar="COLUMN", help="columns to leave out"
    )


def _add_training_options(parser):
    """Options shared by the commands that train: epochs, seed, --ignore."""
    parser.add_argument(
        "--epochs",
        type=_positive_int,
        default=200,
        help="maximum epochs (default: 200)",
    )
    parser.add_argument(
        "--random-state", type=int, default=0, metavar="SEED", help="seed (default: 0)"
    )
    _add_ignore_option(parser)


def build_parser():
    """The argument parser of the ``sktransfer`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sktransfer",
        description=(
            "Transfer learning with Keras as scikit-learn classifiers: pretrain "
            "a network on a large labelled table, transfer it to a small one "
            "(choosing the freeze depth by cross-validation), and predict."
        ),
        epilog="Run 'sktransfer COMMAND --help' for a command's options.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="the end-to-end story on scikit-learn's digits (nothing downloaded)",
        description=(
            "Pretrain on 1000 digits (10 classes), transfer to 'even' vs 'odd' "
            "on other digits with 10 labelled examples per class, choose the "
            "freeze depth by 5-fold CV, compare with training from scratch and "
            "with logistic regression on the same 20 examples, print a table "
            "and save a figure."
        ),
    )
    demo.add_argument(
        "--out",
        default="sktransfer-demo",
        metavar="DIR",
        help="folder for the models and the figure (default: ./sktransfer-demo)",
    )
    demo.add_argument(
        "--seeds",
        type=_positive_int,
        default=1,
        metavar="N",
        help="average over N random draws of the labelled target examples "
        "(default: 1; each repeats the grid search and the baselines)",
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="a reduced run (few epochs, 2 folds) that checks everything works; "
        "its numbers mean little",
    )
    demo.set_defaults(func=_demo)

    csv_note = (
        "DATA.csv: comma-separated, first line names the columns; every column "
        "except the target (and --ignore) is a numeric feature."
    )
    pretrain = sub.add_parser(
        "pretrain",
        help="train a PretrainedClassifier on a CSV table and save it",
        description="Train a PretrainedClassifier (an MLP) on the source table "
        "and save it as a .keras file for 'sktransfer transfer'.",
        epilog=csv_note,
    )
    pretrain.add_argument("data", metavar="DATA.csv", help="the source table")
    pretrain.add_argument(
        "--target", required=True, metavar="COLUMN", help="label column"
    )
    pretrain.add_argument(
        "--out", required=True, metavar="SOURCE.keras", help="where to save the model"
    )
    pretrain.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="+",
        default=[128, 64],
        metavar="UNITS",
        help="hidden layer sizes (default: 128 64)",
    )
    _add_training_options(pretrain)
    pretrain.set_defaults(func=_pretrain)

    transfer = sub.add_parser(
        "transfer",
        help="transfer a saved model to a CSV table, grid-searching the freeze depth",
        description="Cut the source network's head, add a new one for the "
        "target's classes, and fine-tune; the freeze depth is chosen by "
        "stratified k-fold cross-validation, and the best model, refitted on "
        "all rows, is saved.",
        epilog=csv_note,
    )
    transfer.add_argument(
        "source",
        metavar="SOURCE.keras",
        help="a model saved by 'sktransfer pretrain' or estimator.save, or any "
        "Keras .keras/.h5 model",
    )
    transfer.add_argument("data", metavar="DATA.csv", help="the (small) target table")
    transfer.add_argument(
        "--target", required=True, metavar="COLUMN", help="label column"
    )
    transfer.add_argument(
        "--out",
        required=True,
        metavar="MODEL.keras",
        help="where to save the best model",
    )
    transfer.add_argument(
        "--freeze",
        type=_freeze_spec,
        nargs="+",
        default=[0, 1, 2, "all"],
        metavar="DEPTH",
        help=_FREEZE_HELP + " (default: 0 1 2 all)",
    )
    transfer.add_argument(
        "--cv", type=_folds, default=5, metavar="K", help="CV folds (default: 5)"
    )
    _add_training_options(transfer)
    transfer.set_defaults(func=_transfer)

    predict = sub.add_parser(
        "predict",
        help="predict the rows of a CSV table with a saved model",
        description="Write one prediction per row of DATA.csv (and class "
        "probabilities, columns proba_<class>, with --proba). A model saved "
        "by this command line reads its feature columns by name, so other "
        "columns (the target, ids) are ignored; a model saved without column "
        "names reads every column that --ignore does not name.",
    )
    predict.add_argument(
        "model", metavar="MODEL.keras", help="a model saved with .save"
    )
    predict.add_argument("data", metavar="DATA.csv", help="the rows to predict")
    predict.add_argument(
        "--out",
        default="-",
        metavar="PREDICTIONS.csv",
        help="where to write the predictions (default: stdout)",
    )
    predict.add_argument(
        "--proba", action="store_true", help="add class probabilities, proba_<class>"
    )
    _add_ignore_option(predict)
    predict.set_defaults(func=_predict)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on a bad input (one line on stderr); argparse exits
        with status 2 on a usage error.
    """
    from sklearn.exceptions import NotFittedError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            # Keras warns when a functional sub-model gets a bare tensor where
            # it named its input: harmless, and noise on a command line
            warnings.filterwarnings(
                "ignore", message="The structure of `inputs` doesn't match"
            )
            return args.func(args)
    except KeyboardInterrupt:
        print("sktransfer: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, NotFittedError) as exc:
        if os.environ.get("SKTRANSFER_DEBUG"):
            raise
        print(f"sktransfer: error: {_one_line(exc)}", file=sys.stderr)
        return 2
