"""Fit time: PretrainedClassifier.fit vs plain Keras and scikeras, like for like.

Every side trains the same network (Input -> Dense(128, relu) -> Dense(64,
relu) -> Dense(n_classes, softmax), Glorot-uniform initialisation seeded per
layer, built by hand here) with Adam(1e-3) and sparse categorical
cross-entropy, for the same fixed number of epochs (no early stopping, no
validation split), batch size 32, on the same data. Each timed run includes
building and compiling the network. The sides:

* ``ours``: ``PretrainedClassifier(hidden_layer_sizes=(128, 64),
  epochs=E, batch_size=32, early_stopping=False).fit(X, y)``; internally a
  seeded ``tf.data`` pipeline and ``steps_per_execution = min(ceil(n / 32),
  32)``, ``jit_compile=False``;
* ``keras default``: what a user gets from Keras' defaults,
  ``compile("adam", loss)`` then ``Model.fit(X, y, epochs=E, batch_size=32)``
  on NumPy arrays (Keras' array adapter, one step per execution;
  ``jit_compile="auto"``, which is off on a CPU);
* ``keras same``: plain Keras given the same input pipeline and execution
  settings as ours: ``tf.data.Dataset.from_tensor_slices((X, y))
  .shuffle(n, seed).batch(32).prefetch(2)``, ``compile(...,
  steps_per_execution=min(ceil(n / 32), 32), jit_compile=False)``. The gap
  between ``ours`` and this side is what a user who copies our input
  pipeline and execution settings into plain Keras would see;
* ``keras same+build``: ``keras same`` plus the one other thing ours does,
  building the optimizer's variables right after ``compile``
  (``model.optimizer.build(model.trainable_variables)``) instead of inside
  the first traced train step, which saves a few tenths of a second of
  tracing per fit. The gap between ``ours`` and this side is the estimator's
  own overhead (validation, label encoding, seeding, the sample-weight
  column);
* ``scikeras default``: ``scikeras.wrappers.KerasClassifier(model=<builder>,
  loss=..., optimizer="adam", epochs=E, batch_size=32)``, the builder
  returning the uncompiled network (scikeras compiles it);
* ``scikeras tuned``: the same, but the builder compiles the network itself
  with scikeras' ``compile_kwargs`` plus ``steps_per_execution`` as above and
  ``jit_compile=False`` (the competent configuration; scikeras feeds Keras
  NumPy arrays, it has no ``tf.data`` input).

Each side gets one untimed 1-epoch warm-up run (imports, first traces),
``keras.backend.clear_session()``
runs (untimed) before every run, and the sides run in rounds whose order
alternates (see ``_common.py``). Printed: the median time of each side,
the median per-round ratios ``ours / peer``, the median final training loss
of each side (the same work was done), and the load average.

On JAX and PyTorch (``KERAS_BACKEND=jax|torch``, or ``--backend``) there is
no ``tf.data`` and scikeras would load TensorFlow, so the sides are ``ours``
(seeded ``PyDataset`` batches; on JAX ``jit_compile=True``, one step per
execution), ``keras default`` (as above: NumPy arrays, ``jit_compile="auto"``,
which is on for JAX) and ``keras same+build`` (``keras default`` with our
compile settings for the backend and the optimizer built after ``compile``).

Run: ``python benchmarks/bench_fit.py [--epochs 20] [--repeats 4]
[--backend jax]`` (3.5-5.5 minutes measured on two cores shared with other
jobs, load average 2-6).
"""

from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import backend_from_argv  # noqa: E402

BACKEND = backend_from_argv()  # before Keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import alternate, load_line, markdown_table  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402

from sktransfer import PretrainedClassifier  # noqa: E402

HIDDEN = (128, 64)
BATCH = 32
LEARNING_RATE = 1e-3
LOSS = "sparse_categorical_crossentropy"
SIDES = (
    (
        "ours",
        "keras default",
        "keras same",
        "keras same+build",
        "scikeras default",
        "scikeras tuned",
    )
    if BACKEND == "tensorflow"
    else ("ours", "keras default", "keras same+build")
)


def build(n_features, n_classes, seed):
    """Input -> Dense(128, relu) -> Dense(64, relu) -> Dense(n, softmax)."""
    inputs = keras.Input(shape=(n_features,))
    x = inputs
    for i, units in enumerate(HIDDEN):
        x = keras.layers.Dense(
            units,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + i),
        )(x)
    outputs = keras.layers.Dense(
        n_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed + len(HIDDEN)),
    )(x)
    return keras.Model(inputs, outputs)


def steps_per_execution(n):
    """What ours uses: every step of an epoch in one call, at most 32."""
    return min(math.ceil(n / BATCH), 32)


def fit_ours(X, y, epochs, seed):
    clf = PretrainedClassifier(
        hidden_layer_sizes=HIDDEN,
        learning_rate=LEARNING_RATE,
        epochs=epochs,
        batch_size=BATCH,
        early_stopping=False,
        random_state=seed,
    ).fit(X, y)
    return clf.history_["loss"][-1]


def fit_keras_default(X, y, epochs, seed):
    model = build(X.shape[1], len(np.unique(y)), seed)
    model.compile(optimizer="adam", loss=LOSS)
    history = model.fit(X, y, epochs=epochs, batch_size=BATCH, verbose=0)
    return history.history["loss"][-1]


def fit_keras_same(X, y, epochs, seed, build_optimizer=False):
    if BACKEND != "tensorflow":
        return fit_keras_same_numpy(X, y, epochs, seed)
    import tensorflow as tf

    model = build(X.shape[1], len(np.unique(y)), seed)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=LOSS,
        steps_per_execution=steps_per_execution(len(y)),
        jit_compile=False,
    )
    if build_optimizer:
        model.optimizer.build(model.trainable_variables)
    data = (
        tf.data.Dataset.from_tensor_slices((X, y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .batch(BATCH)
        .prefetch(2)
    )
    history = model.fit(data, epochs=epochs, verbose=0, shuffle=False)
    return history.history["loss"][-1]


def fit_keras_same_numpy(X, y, epochs, seed):
    """JAX/PyTorch: NumPy arrays, our compile settings, optimizer built."""
    from sktransfer._backend import compile_defaults

    model = build(X.shape[1], len(np.unique(y)), seed)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=LOSS,
        **compile_defaults(steps_per_execution(len(y))),
    )
    model.optimizer.build(model.trainable_variables)
    history = model.fit(X, y, epochs=epochs, batch_size=BATCH, verbose=0)
    return history.history["loss"][-1]


def fit_scikeras(X, y, epochs, seed, tuned):
    from scikeras.wrappers import KerasClassifier

    def model(meta, compile_kwargs):
        network = build(meta["n_features_in_"], meta["n_classes_"], seed)
        if tuned:
            network.compile(
                **compile_kwargs,
                steps_per_execution=steps_per_execution(meta["X_shape_"][0]),
                jit_compile=False,
            )
        return network

    clf = KerasClassifier(
        model=model,
        loss=LOSS,
        optimizer="adam",
        optimizer__learning_rate=LEARNING_RATE,
        epochs=epochs,
        batch_size=BATCH,
        verbose=0,
    ).fit(X, y)
    return clf.history_["loss"][-1]


def runners(X, y, epochs, seed):
    if BACKEND != "tensorflow":
        return {
            "ours": lambda: fit_ours(X, y, epochs, seed),
            "keras default": lambda: fit_keras_default(X, y, epochs, seed),
            "keras same+build": lambda: fit_keras_same(X, y, epochs, seed, True),
        }
    return {
        "ours": lambda: fit_ours(X, y, epochs, seed),
        "keras default": lambda: fit_keras_default(X, y, epochs, seed),
        "keras same": lambda: fit_keras_same(X, y, epochs, seed),
        "keras same+build": lambda: fit_keras_same(X, y, epochs, seed, True),
        "scikeras default": lambda: fit_scikeras(X, y, epochs, seed, False),
        "scikeras tuned": lambda: fit_scikeras(X, y, epochs, seed, True),
    }


def datasets():
    out = {}
    X, y = load_digits(return_X_y=True)
    out["digits"] = ((X / 16.0).astype(np.float32), y)
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    out["breast_cancer"] = (X.astype(np.float32), y)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--backend", default=None, help="Keras backend")
    args = parser.parse_args(argv)

    print(
        f"backend {BACKEND}; fit time, {args.epochs} epochs, batch {BATCH}, "
        "no early stopping; "
        f"median of {args.repeats} alternating rounds after a 1-epoch warm-up each"
    )
    print(load_line("at start"))
    times, ratios, losses = [], [], []
    summary = {}
    for name, (X, y) in datasets().items():
        runs = alternate(
            runners(X, y, args.epochs, seed=0),
            args.repeats,
            warmups=runners(X, y, 1, seed=0),
            before=lambda _: keras.backend.clear_session(),
        )
        med = {side: runs.median(side) for side in SIDES}
        vs = {side: runs.ratio("ours", side) for side in SIDES[1:]}
        summary[name] = vs
        from sktransfer._backend import compile_defaults

        spe = compile_defaults(steps_per_execution(len(y)))["steps_per_execution"]
        times.append(
            [f"{name} (n={len(y)}, spe={spe})"] + [f"{med[s]:.2f}" for s in SIDES]
        )
        ratios.append([name] + [f"{vs[s]:.2f}x" for s in SIDES[1:]])
        losses.append(
            [name]
            + [
                f"{float(np.median([float(v) for v in runs.results[s]])):.3f}"
                for s in SIDES
            ]
        )
        print(f"{name}: {runs.load_text()}", flush=True)

    print("\nmedian fit time, seconds\n")
    print(markdown_table(["dataset"] + list(SIDES), times))
    print("\nours / peer, median of per-round ratios (< 1: ours is faster)\n")
    print(markdown_table(["dataset"] + [f"ours / {s}" for s in SIDES[1:]], ratios))
    print("\nmedian final training loss (same work: similar values expected)\n")
    print(markdown_table(["dataset"] + list(SIDES), losses))
    print(f"\n{load_line('at end')}")
    return summary


if __name__ == "__main__":
    main()
