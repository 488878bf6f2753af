"""
Transfer from a ``keras.applications`` network to small images
===============================================================

The everyday use of transfer learning: take a network pretrained on ImageNet
from ``keras.applications``, drop its classifier (``include_top=False``),
freeze it, and train a new head on your own few images.
:class:`~sktransfer.TransferClassifier` does that as one scikit-learn
estimator: ``cut=None`` keeps the headless network whole, global average
pooling and a new softmax layer are added, and ``freeze`` says how much of the
network stays fixed.

This example runs without downloading anything, so the network is
MobileNetV3Small with **random** weights (``weights=None``); for real use,
change that one argument to ``weights="imagenet"`` (marked below). The images
are scikit-learn's 8x8 digits, upscaled to 32x32 pixels with three channels.

A random network brings a trap with it: its BatchNormalization layers still
hold their initial statistics (mean 0, variance 1). In inference mode, which
is how a frozen network runs, the features it computes are then nearly the
same for every image, and the new head can only learn to predict one class.
We show the trap, then fix it by calibrating those statistics on the
training images.
"""

# %%
# Setup
# -----
# ``SKTRANSFER_EXAMPLE_SMALL=1`` runs a reduced version (fewer images and
# epochs, fewer freeze settings); ``SKTRANSFER_EXAMPLE_OUT`` is where the
# figure goes.
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sktransfer import TransferClassifier

SMALL = os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = Path(os.environ.get("SKTRANSFER_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)

N_TRAIN = 150 if SMALL else 500  # labelled training images
N_TEST = 200 if SMALL else None  # None: all the other digits
EPOCHS = 15 if SMALL else 100
start = time.perf_counter()

# %%
# Digits as 32x32 colour images
# -----------------------------
# ``np.kron`` repeats every pixel in a 4x4 block, ``np.repeat`` makes three
# identical channels. MobileNetV3 rescales its input itself and expects
# pixel values in 0-255, as ImageNet images have.
digits = load_digits()
images = digits.images.astype("float32") * (255.0 / 16.0)
X = np.kron(images, np.ones((1, 4, 4), dtype="float32"))[..., np.newaxis]
X = np.repeat(X, 3, axis=-1)
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=N_TRAIN, test_size=N_TEST, stratify=y, random_state=0
)
print(f"images {X.shape[1:]}, {len(y_train)} to train on, {len(y_test)} to test on")

# %%
# The pretrained network
# ----------------------
# ``keras.applications`` initialises random weights from Keras' global seed;
# seeding it makes this run repeatable (TransferClassifier seeds its own
# new head, shuffling and splits from ``random_state``).
keras.utils.set_random_seed(0)
base = keras.applications.MobileNetV3Small(
    input_shape=(32, 32, 3),
    include_top=False,
    weights=None,  # real use: weights="imagenet" (downloads the ImageNet weights)
)
print(f"{base.name}: {base.count_params():,} weights, {len(base.layers)} layers")


def feature_spread(network, X):
    """How much the pooled features vary between images (inference mode)."""
    features = keras.ops.convert_to_numpy(network(X, training=False))
    return float(features.mean(axis=(1, 2)).std(axis=0).mean())


def fit_and_score(pretrained, freeze):
    # a head trained by the optimizer from a random start, where the trap
    # shows. (The default head, a logistic regression on standardized
    # features, rescales even a tiny feature spread, but its features are
    # still the collapsed ones: calibrate first either way.)
    clf = TransferClassifier(
        pretrained,
        cut=None,
        freeze=freeze,
        head_solver="adam",
        epochs=EPOCHS,
        random_state=0,
    )
    clf.fit(X_train, y_train)
    predictions = clf.predict(X_test)
    return clf, predictions, float(np.mean(predictions == y_test))


results = {}  # label: (predictions, accuracy)

# %%
# The trap: a frozen network with uncalibrated BatchNormalization
# ----------------------------------------------------------------
# The features barely differ between images, and the new head, the only part
# that trains, has nothing to tell the digits apart by.
print(f"feature spread, untrained statistics: {feature_spread(base, X_train):.2e}")
clf, predictions, accuracy = fit_and_score(base, "all")
results["uncalibrated\nfreeze='all'"] = (predictions, accuracy)
print(
    f"freeze='all', uncalibrated: accuracy {accuracy:.3f}, "
    f"{len(np.unique(predictions))} distinct class(es) predicted"
)

# %%
# The fix: calibrate the statistics on the training images
# ----------------------------------------------------------
# Run the network once in training mode over the (unlabelled) training
# images with every BatchNormalization's momentum set to 0, so that each
# layer's moving mean and variance become the statistics of these images;
# then put the momentum back. Test images are not used. With
# ``weights="imagenet"`` skip this step: the ImageNet statistics are part of
# what was pretrained.


def calibrate_batch_norm(network, X):
    layers = [
        layer
        for layer in network.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    network(X, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return len(layers)


n_bn = calibrate_batch_norm(base, X_train)
print(f"calibrated {n_bn} BatchNormalization layers")
print(f"feature spread, calibrated statistics: {feature_spread(base, X_train):.2e}")

# %%
# Freeze settings
# ---------------
# ``freeze="all"`` trains the new head only; ``freeze=-k`` also fine-tunes
# the network's last k weighted layers (a convolution and its
# BatchNormalization count as one; BatchNormalization itself keeps running in
# inference mode with the calibrated statistics, as the Keras fine-tuning
# guide recommends). TransferClassifier copies ``base`` for every fit: the
# calibrated network itself is never changed.
freezes = ["all", -1] if SMALL else ["all", -1, -2, -4]
for freeze in freezes:
    clf, predictions, accuracy = fit_and_score(base, freeze)
    n_classes = len(np.unique(predictions))
    results[f"calibrated\nfreeze={freeze!r}"] = (predictions, accuracy)
    print(
        f"freeze={freeze!r}: {clf.n_frozen_} of {len(clf.base_layers_)} layers "
        f"frozen, accuracy {accuracy:.3f}, {n_classes} distinct classes predicted"
    )
    assert n_classes > 1, "calibrated features must not collapse to one class"

# %%
# Results
# -------
# Accuracy per setting (chance is 0.1), and the confusion matrix of the best
# calibrated one. These are random convolutional features: with
# ``weights="imagenet"`` the numbers are those of real transfer.
labels = list(results)
accuracies = [results[label][1] for label in labels]
best = max(labels[1:], key=lambda label: results[label][1])
print("\naccuracy on the test digits:")
for label in labels:
    print(f"  {label.replace(chr(10), ' '):<28} {results[label][1]:.3f}")
print(f"best: {best.replace(chr(10), ' ')}")

fig, (ax_bar, ax_cm) = plt.subplots(
    1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1.2, 1]}
)
colors = ["tab:gray"] + ["tab:blue"] * (len(labels) - 1)
bars = ax_bar.bar(labels, accuracies, color=colors)
ax_bar.bar_label(bars, fmt="%.2f")
ax_bar.axhline(0.1, color="black", linestyle="--", linewidth=1, label="chance")
ax_bar.set_ylim(0, 1)
ax_bar.set_ylabel("test accuracy")
ax_bar.set_title("MobileNetV3Small (random weights) on 32x32 digits")
ax_bar.legend(loc="upper left")
ConfusionMatrixDisplay.from_predictions(
    y_test, results[best][0], ax=ax_cm, colorbar=False
)
ax_cm.set_title(f"confusion matrix, {best.replace(chr(10), ' ')}")
fig.tight_layout()
path = OUT / "plot_image_transfer.png"
fig.savefig(path, dpi=100)
print(f"figure written to {path}")
print(f"total time: {time.perf_counter() - start:.0f} s")
