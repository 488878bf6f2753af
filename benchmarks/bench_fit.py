"""Fit overhead: PretrainedClassifier.fit vs a plain keras.Model.fit.

The same architecture (sktransfer's default MLP, hidden layers (128, 64))
is trained for a fixed number of epochs on the same data, batch size 32,
no early stopping, three ways, interleaved in the same process:

* ``PretrainedClassifier(early_stopping=False).fit`` (validation, target
  encoding, build, compile and training: the whole estimator);
* plain Keras: build the same network, ``compile("adam",
  "sparse_categorical_crossentropy")``, ``Model.fit(X, y, epochs=...,
  batch_size=32, verbose=0)`` (build and compile timed too);
* scikeras' ``KerasClassifier`` wrapping the same network builder.

It prints the median time of each and the ratios (target: ours / Keras
<= 1.10).

Run: ``python benchmarks/bench_fit.py [--epochs 20] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402

from sktransfer import PretrainedClassifier  # noqa: E402
from sktransfer._network import build_default_network  # noqa: E402

HIDDEN = (128, 64)


def build(n_features, n_classes, seed):
    return build_default_network(
        (n_features,),
        n_classes,
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        dropout=0.0,
        seed=seed,
    )


def fit_ours(X, y, epochs, seed):
    PretrainedClassifier(
        hidden_layer_sizes=HIDDEN,
        epochs=epochs,
        batch_size=32,
        early_stopping=False,
        random_state=seed,
    ).fit(X, y)


def fit_keras(X, y, epochs, seed):
    model = build(X.shape[1], len(np.unique(y)), seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)


def fit_scikeras(X, y, epochs, seed):
    from scikeras.wrappers import KerasClassifier

    def model(meta):
        return build(meta["n_features_in_"], meta["n_classes_"], seed)

    KerasClassifier(
        model=model,
        loss="sparse_categorical_crossentropy",
        optimizer="adam",
        epochs=epochs,
        batch_size=32,
        verbose=0,
    ).fit(X, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    datasets = {}
    X, y = load_digits(return_X_y=True)
    datasets["digits"] = ((X / 16.0).astype(np.float32), y)
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    datasets["breast_cancer"] = (X.astype(np.float32), y)

    runners = {"ours": fit_ours, "keras": fit_keras, "scikeras": fit_scikeras}
    print(
        f"fit time, {args.epochs} epochs, batch 32, no early stopping; median "
        f"of {args.repeats} repeats (after one warm-up each)"
    )
    print(
        f"{'dataset':<15}{'n':>6}{'ours s':>9}{'keras s':>9}{'scikeras s':>12}"
        f"{'ours/keras':>12}{'ours/scikeras':>15}  target"
    )
    for name, (X, y) in datasets.items():
        for run in runners.values():  # warm-up: imports, first traces
            run(X, y, 1, 0)
        times = {key: [] for key in runners}
        for repeat in range(args.repeats):
            for key, run in runners.items():  # interleaved: same machine load
                keras.backend.clear_session()
                start = time.perf_counter()
                run(X, y, args.epochs, repeat)
                times[key].append(time.perf_counter() - start)
        med = {key: float(np.median(v)) for key, v in times.items()}
        ratio = med["ours"] / med["keras"]
        print(
            f"{name:<15}{len(y):>6}{med['ours']:>9.2f}{med['keras']:>9.2f}"
            f"{med['scikeras']:>12.2f}{ratio:>12.2f}"
            f"{med['ours'] / med['scikeras']:>15.2f}  "
            f"{'ok' if ratio <= 1.10 else 'MISS'}",
            flush=True,
        )
    print("\ntarget: ours / keras <= 1.10 (fit overhead of the estimator)")


if __name__ == "__main__":
    main()
