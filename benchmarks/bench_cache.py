"""The frozen-feature cache against no cache and against a hand-written loop.

A frozen ``keras.applications.MobileNetV3Small`` base (``weights=None``, input
32x32x3, ``cut=None, freeze="all"``) gets a new softmax head trained for
``EPOCHS`` epochs on ``N_TRAIN`` random images, three ways:

* ``TransferClassifier(cache_features=True)``: the base's features are
  computed once, then only the head trains on them;
* ``TransferClassifier(cache_features=False)``: every epoch runs the images
  through the whole network;
* a hand-written Keras loop, the practical limit: ``base.predict`` once, then
  a pooling + Dense head trained with ``Model.fit`` for the same epochs.

Nothing is downloaded. An untrained base in inference mode gives
near-constant features (its BatchNormalization statistics are at their
initial values), so the base's statistics are first calibrated on the data
(one training-mode pass with momentum 0: every BatchNormalization then holds
the exact mean and variance of its inputs over the images), and the labels
are a random linear projection of the calibrated features, which a linear
head can learn. The script checks that predictions are not all one class.

Prints median wall times and the three ratios with their targets:

* uncached / cached fit time       (target >= 5x)
* identical predicted labels       (target >= 99 %)
* cached / hand-written fit time   (target <= 1.5x)

Run: ``python benchmarks/bench_cache.py [--repeats 3] [--slow-repeats 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

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


def fit_transfer(base, X, y, cache):
    clf = TransferClassifier(
        base,
        cut=None,
        freeze="all",
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        early_stopping=False,
        cache_features=cache,
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start, clf


def fit_by_hand(base, X, y):
    """The practical limit: features once with ``predict``, then a head."""
    start = time.perf_counter()
    features = base.predict(X, batch_size=256, verbose=0)
    head = keras.Sequential(
        [
            keras.Input(features.shape[1:]),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(N_CLASSES, activation="softmax"),
        ]
    )
    head.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss="sparse_categorical_crossentropy",
    )
    head.fit(features, y, epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=0)
    seconds = time.perf_counter() - start
    return seconds, head


def shown(times):
    return "[" + ", ".join(f"{t:.2f}" for t in times) + "]"


def median_run(function, repeats):
    times, last = [], None
    for _ in range(repeats):
        seconds, last = function()
        times.append(seconds)
    return statistics.median(times), times, last


def main(repeats=3, slow_repeats=2):
    t0 = time.perf_counter()
    base, X, y, X_test, y_test = make_task()
    print(
        f"task: {len(X)} train / {len(X_test)} test images {SHAPE}, "
        f"{N_CLASSES} classes {np.bincount(y).tolist()}, base "
        f"{base.name} ({len(base.layers)} layers), {EPOCHS} epochs "
        f"(set up in {time.perf_counter() - t0:.1f} s)"
    )
    X_all = np.concatenate([X, X_test])

    cached, cached_times, clf_cached = median_run(
        lambda: fit_transfer(base, X, y, True), repeats
    )
    print(
        f"cache on : median {cached:6.2f} s  {shown(cached_times)}"
        f"  (cut at {clf_cached.feature_cut_!r})"
    )
    uncached, uncached_times, clf_plain = median_run(
        lambda: fit_transfer(base, X, y, False), slow_repeats
    )
    print(f"cache off: median {uncached:6.2f} s  {shown(uncached_times)}")
    hand, hand_times, head = median_run(lambda: fit_by_hand(base, X, y), repeats)
    print(f"by hand  : median {hand:6.2f} s  {shown(hand_times)}")

    labels_cached = clf_cached.predict(X_all)
    labels_plain = clf_plain.predict(X_all)
    agreement = float(np.mean(labels_cached == labels_plain))
    for name, labels in (("cache on", labels_cached), ("cache off", labels_plain)):
        counts = np.bincount(labels, minlength=N_CLASSES)
        if np.count_nonzero(counts) < 2:
            raise RuntimeError(f"{name}: predictions are all one class {counts}")
        print(
            f"{name:9s}: predicted classes {counts.tolist()}, test accuracy "
            f"{np.mean(labels[len(X) :] == y_test):.3f}"
        )
    hand_labels = np.argmax(head.predict(base.predict(X_test, verbose=0), verbose=0), 1)
    print(f"by hand  : test accuracy {np.mean(hand_labels == y_test):.3f}")

    speedup = uncached / cached
    vs_hand = cached / hand
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
    return {"speedup": speedup, "agreement": agreement, "vs_hand": vs_hand}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cheap runs")
    parser.add_argument(
        "--slow-repeats", type=int, default=2, help="uncached runs (slow)"
    )
    args = parser.parse_args()
    main(args.repeats, args.slow_repeats)
