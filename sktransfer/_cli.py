"""The ``sktransfer`` command line (placeholder: demo only)."""

from __future__ import annotations

import argparse


def _demo(args):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from . import PretrainedClassifier

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, stratify=y, random_state=0
    )
    print("pretraining PretrainedClassifier on digits ...", flush=True)
    clf = PretrainedClassifier(random_state=0).fit(X_train, y_train)
    print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sktransfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end story on digits")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)
