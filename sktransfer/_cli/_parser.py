"""The ``sktransfer`` argument parser (argparse); it imports nothing heavy.

Each sub-command's parser sets ``command``, the name ``main`` dispatches on
once the arguments are parsed, so ``--help`` and usage errors never import
TensorFlow.
"""

from __future__ import annotations

import argparse

from .._version import __version__

__all__ = ["build_parser"]

_FREEZE_HELP = (
    "freeze depths to compare: integers (layers of the source network frozen, "
    "counted from the input; negative: all but the last k) or 'all'"
)

_CSV_NOTE = (
    "DATA.csv: comma-separated (quoted fields, CRLF line ends and a UTF-8 BOM "
    "are fine), first line names the columns; every column except the target "
    "(and --ignore) is a numeric feature. A first column with no name in the "
    "header is taken for the index pandas writes (DataFrame.to_csv without "
    "index=False): it is dropped, with a warning."
)


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

    pretrain = sub.add_parser(
        "pretrain",
        help="train a PretrainedClassifier on a CSV table and save it",
        description="Train a PretrainedClassifier (an MLP) on the source table "
        "and save it as a .keras file for 'sktransfer transfer'.",
        epilog=_CSV_NOTE,
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

    transfer = sub.add_parser(
        "transfer",
        help="transfer a saved model to a CSV table, grid-searching the freeze depth",
        description="Cut the source network's head, add a new one for the "
        "target's classes, and fine-tune; the freeze depth is chosen by "
        "stratified k-fold cross-validation, and the best model, refitted on "
        "all rows, is saved.",
        epilog=_CSV_NOTE,
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

    predict = sub.add_parser(
        "predict",
        help="predict the rows of a CSV table with a saved model",
        description="Write one prediction per row of DATA.csv (and class "
        "probabilities, columns proba_<class>, with --proba). A model saved "
        "by this command line reads its feature columns by name, so other "
        "columns (the target, ids) are ignored; a model saved without column "
        "names reads every column that --ignore does not name.",
        epilog=_CSV_NOTE,
    )
    predict.add_argument(
        "model",
        metavar="MODEL.keras",
        help="a model saved by 'sktransfer pretrain', 'sktransfer transfer' or "
        "estimator.save (a plain Keras model has no classes to predict: "
        "transfer it first)",
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
    return parser
