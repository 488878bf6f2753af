"""The frozen-feature cache against no cache and against a hand-written loop.

A frozen ``keras.applications.MobileNetV3Small`` base (``weights=None``,
input 32x32x3, ``cut=None, freeze="all", head_solver="adam"``) gets a new
softmax head trained for ``EPOCHS`` epochs on ``N_TRAIN`` random images,
four ways:

* ``TransferClassifier(cache_features=True)``: the base's features are
  computed once, then only the head trains on them;
* ``TransferClassifier(cache_features=False)``: every epoch runs the images
  through the whole network;
* a hand-written Keras loop given the configuration a competent user would
  write (and that ours uses): the frozen base run once, eagerly, in chunks
  (``base(X_chunk, training=False)``, chunks of 2**24 input elements, as
  ours), then a pooling + Dense head trained with ``Model.fit`` on a
  ``tf.data`` pipeline (``from_tensor_slices((features, y)).shuffle(n,
  seed).batch(32).prefetch(2)``), ``steps_per_execution=min(ceil(n / 32),
  32)`` and ``jit_compile=False``, for the same epochs, batch size and
  learning rate;
* the same loop plus building the head's optimizer right after ``compile``
  (``model.optimizer.build(...)``), the one other thing ours does.

Nothing is downloaded. An untrained base in inference mode gives
near-constant features (its BatchNormalization statistics are at their
initial values), so the base's statistics are first calibrated on the data
(one training-mode pass with momentum 0: every BatchNormalization then holds
the exact mean and variance of its inputs over the images), and the labels
are a random linear projection of the calibrated features, which a linear
head can learn. The script checks that predictions are not all one class.

Every side gets one untimed warm-up fit (the uncached side a 1-epoch one:
its full fit is the slow one being measured), then the sides run in rounds
of alternating order (``_common.py``); the uncached side takes part in the
first ``--slow-repeats`` rounds only. Prints median wall times, the load
average, and the ratios (medians of per-round ratios) with their targets:

* uncached / cached fit time       (target >= 5x)
* identical predicted labels       (target >= 99 %)
* cached / hand-written fit time   (target <= 1.5x)

Run: ``python benchmarks/bench_cache.py [--repeats 3] [--slow-repeats 2]``
(about 2 minutes on two shared cores).
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import alternate, load_line, markdown_table  # noqa: E402

from sktransfer import TransferClassifier  # noqa: E402

N_TRAIN = 1000
N_TEST = 500
N_CLASSES = 3
EPOCHS = 20
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
SHAPE = (32, 32, 3)

TARGET_SPEEDUP = 5.0
TARGET_AGREEMENT = 0.99
TARGET_VS_HAND = 1.5
#: input elements per eager chunk of the frozen base, as ours
CHUNK_ELEMENTS = 2**24


def calibrated_base(X, seed=0):
    """MobileNetV3Small (untrained) with BatchNormalization fitted to ``X``.

    One training-mode pass over all of ``X`` with momentum 0 sets every
    BatchNormalization's moving statistics to the batch statistics of its
    input, layer after layer, so that inference mode normalises as training
    mode would on this data; momentum is restored afterwards.
    """
    keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV3Small(
        weights=None, include_top=False, input_shape=SHAPE
    )
    norms = [
        layer
        for layer in base.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    base(X, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return base


def pooled_features(base, X):
    """The base's output for X, spatially averaged (what the head sees)."""
    out = keras.ops.convert_to_numpy(base(X, training=False))
    return out.reshape(len(X), -1, out.shape[-1]).mean(axis=1)


def make_task(seed=0):
    """Random images, a calibrated base and labels its features can predict.

    Returns ``(base, X_train, y_train, X_test, y_test)``.
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 255, size=(N_TRAIN + N_TEST, *SHAPE)).astype(np.float32)
    base = calibrated_base(X[:N_TRAIN], seed)
    features = pooled_features(base, X)
    spread = features[:N_TRAIN].std(axis=0)
    if not np.isfinite(spread).all() or spread.max() < 1e-3:
        raise RuntimeError("calibration failed: the base's features are constant")
    keep = spread > 1e-3 * spread.max()
    standard = (features[:, keep] - features[:N_TRAIN, keep].mean(axis=0)) / spread[
        keep
    ]
    y = np.argmax(standard @ rng.normal(size=(keep.sum(), N_CLASSES)), axis=1)
    return base, X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def fit_transfer(base, X, y, cache, epochs=EPOCHS):
    clf = TransferClassifier(
        base,
        cut=None,
        freeze="all",
        # the Keras training loop through the cache, as the hand-written
        # loop does (the default head solver would solve a probe instead)
        head_solver="adam",
        epochs=epochs,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        early_stopping=False,
        cache_features=cache,
        random_state=0,
    )
    return clf.fit(X, y)


def frozen_features(base, X):
    """The frozen base's inference-mode output, eagerly, in chunks."""
    chunk = max(1, CHUNK_ELEMENTS // int(np.prod(X.shape[1:])))
    parts = [
        keras.ops.convert_to_numpy(base(X[start : start + chunk], training=False))
        for start in range(0, len(X), chunk)
    ]
    return np.concatenate(parts)


def fit_by_hand(base, X, y, build_optimizer=False, seed=0):
    """Features once (eager, chunked), then a head on a tf.data pipeline."""
    features = frozen_features(base, X)
    head = keras.Sequential(
        [
            keras.Input(features.shape[1:]),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(
                N_CLASSES,
                activation="softmax",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            ),
        ]
    )
    head.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=min(math.ceil(len(y) / BATCH_SIZE), 32),
        jit_compile=False,
    )
    if build_optimizer:
        head.optimizer.build(head.trainable_variables)
    data = (
        tf.data.Dataset.from_tensor_slices((features, y))
        .shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
        .prefetch(2)
    )
    head.fit(data, epochs=EPOCHS, verbose=0, shuffle=False)
    return head


def main(repeats=3, slow_repeats=2):
    t0 = time.perf_counter()
    base, X, y, X_test, y_test = make_task()
    print(
        f"task: {len(X)} train / {len(X_test)} test images {SHAPE}, "
        f"{N_CLASSES} classes {np.bincount(y).tolist()}, base "
        f"{base.name} ({len(base.layers)} layers), {EPOCHS} epochs "
        f"(set up in {time.perf_counter() - t0:.1f} s)"
    )
    print(load_line("at start"))
    X_all = np.concatenate([X, X_test])

    runs = alternate(
        {
            "cache on": lambda: fit_transfer(base, X, y, True),
            "by hand": lambda: fit_by_hand(base, X, y),
            "by hand+build": lambda: fit_by_hand(base, X, y, True),
            "cache off": lambda: fit_transfer(base, X, y, False),
        },
        {
            "cache on": repeats,
            "by hand": repeats,
            "by hand+build": repeats,
            "cache off": slow_repeats,
        },
        warmups={"cache off": lambda: fit_transfer(base, X, y, False, epochs=1)},
        progress=True,
    )
    print(runs.load_text())
    clf_cached = runs.results["cache on"][-1]
    clf_plain = runs.results["cache off"][-1]
    head = runs.results["by hand"][-1]
    print(f"cache on: cut at {clf_cached.feature_cut_!r}")

    labels_cached = clf_cached.predict(X_all)
    labels_plain = clf_plain.predict(X_all)
    agreement = float(np.mean(labels_cached == labels_plain))
    accuracy = {}
    for name, labels in (("cache on", labels_cached), ("cache off", labels_plain)):
        counts = np.bincount(labels, minlength=N_CLASSES)
        if np.count_nonzero(counts) < 2:
            raise RuntimeError(f"{name}: predictions are all one class {counts}")
        accuracy[name] = np.mean(labels[len(X) :] == y_test)
    hand_labels = np.argmax(
        head.predict(frozen_features(base, X_test), verbose=0), axis=1
    )
    accuracy["by hand"] = np.mean(hand_labels == y_test)
    accuracy["by hand+build"] = np.mean(
        np.argmax(
            runs.results["by hand+build"][-1].predict(
                frozen_features(base, X_test), verbose=0
            ),
            axis=1,
        )
        == y_test
    )

    rows = [
        [
            name,
            len(runs.values[name]),
            f"{runs.median(name):.2f}",
            ", ".join(f"{t:.2f}" for t in runs.values[name]),
            f"{accuracy[name]:.3f}",
        ]
        for name in ("cache on", "cache off", "by hand", "by hand+build")
    ]
    print()
    print(markdown_table(["side", "runs", "median s", "all runs s", "test acc"], rows))

    speedup = runs.ratio("cache off", "cache on")
    vs_hand = runs.ratio("cache on", "by hand")
    vs_built = runs.ratio("cache on", "by hand+build")
    print()
    print(
        f"cache on vs off fit time : {speedup:5.2f}x faster   (target >= "
        f"{TARGET_SPEEDUP:g}x) {'OK' if speedup >= TARGET_SPEEDUP else 'MISSED'}"
    )
    print(
        f"identical predicted labels: {agreement:6.1%}        (target >= "
        f"{TARGET_AGREEMENT:.0%}) "
        f"{'OK' if agreement >= TARGET_AGREEMENT else 'MISSED'}"
    )
    print(
        f"cache on vs hand-written : {vs_hand:5.2f}x the time (target <= "
        f"{TARGET_VS_HAND:g}x) {'OK' if vs_hand <= TARGET_VS_HAND else 'MISSED'}"
    )
    print(f"cache on vs hand+build   : {vs_built:5.2f}x the time")
    print("(ratios: medians of per-round ratios; " + load_line() + ")")
    return {
        "speedup": speedup,
        "agreement": agreement,
        "vs_hand": vs_hand,
        "vs_hand_built": vs_built,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cheap runs")
    parser.add_argument(
        "--slow-repeats", type=int, default=2, help="uncached runs (slow)"
    )
    args = parser.parse_args()
    main(args.repeats, args.slow_repeats)
