"""
Calibrating a Keras network inside a scikit-learn Pipeline
===========================================================

sktransfer's estimators are ordinary scikit-learn classifiers, so they go
wherever a classifier goes: here a :class:`~sktransfer.PretrainedClassifier`
is the last step of a :class:`~sklearn.pipeline.Pipeline` (a network wants
standardised inputs), and the whole pipeline is wrapped in
:class:`~sklearn.calibration.CalibratedClassifierCV`, which needs
``is_classifier`` to be true and ``predict_proba`` to work, and clones and
refits the pipeline once per fold.

A network trained for a long time without early stopping drives its
training loss towards zero and becomes over-confident: its probabilities
pile up at 0 and 1, also where it is wrong. Calibration maps them back to
frequencies. The task is a noisy one, where that matters: scikit-learn's
diabetes data (ten measurements of 442 patients), asking whether the disease
progresses more than the median one year later. The reliability diagram
compares the over-trained network's probabilities with sigmoid (Platt) and
isotonic calibration of the same pipeline, and with the same network trained
with its default early stopping; the Brier score (lower is better) sums up
each.
"""

# %%
# Setup
# -----
# ``SKTRANSFER_EXAMPLE_SMALL=1`` runs a reduced version (fewer epochs and
# calibration folds); ``SKTRANSFER_EXAMPLE_OUT`` is where the figure goes.
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import is_classifier
from sklearn.calibration import CalibratedClassifierCV, CalibrationDisplay
from sklearn.datasets import load_diabetes
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedClassifier

SMALL = os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = Path(os.environ.get("SKTRANSFER_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)

EPOCHS = 100 if SMALL else 300
CV = 3 if SMALL else 5
start = time.perf_counter()

# %%
# Data
# ----
# scikit-learn ships these features centred and divided by a large number
# (values around +-0.05): the pipeline standardises them before the network
# sees them. The label is 1 when the progression measure is above its median.
X, progression = load_diabetes(return_X_y=True)
y = (progression > np.median(progression)).astype(int)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)
print(f"{len(y_train)} training, {len(y_test)} test patients, {X.shape[1]} features")

# %%
# The pipeline
# ------------
# ``early_stopping=False`` with many epochs: the network fits the training
# set as well as it can, the usual source of over-confidence.


def pipeline(**params):
    return make_pipeline(
        StandardScaler(),
        PretrainedClassifier(hidden_layer_sizes=(64, 32), random_state=0, **params),
    )


network = pipeline(epochs=EPOCHS, early_stopping=False)
print("is_classifier(pipeline):", is_classifier(network))

# %%
# Four models
# -----------
# ``CalibratedClassifierCV`` fits a clone of the pipeline on each of ``CV``
# folds of the training data and learns the calibration map on the held-out
# part; the test set is never seen. The last model is the same pipeline with
# PretrainedClassifier's defaults (early stopping on a validation split), for
# reference.
models = {
    "uncalibrated": network,
    "sigmoid": CalibratedClassifierCV(network, method="sigmoid", cv=CV),
    "isotonic": CalibratedClassifierCV(network, method="isotonic", cv=CV),
    "early stopping": pipeline(),
}
probabilities = {}
print(f"\n{'model':<16}{'Brier':>8}{'log loss':>10}{'accuracy':>10}{'fit (s)':>9}")
for name, model in models.items():
    tic = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - tic
    proba = model.predict_proba(X_test)[:, 1]
    probabilities[name] = proba
    print(
        f"{name:<16}{brier_score_loss(y_test, proba):>8.4f}"
        f"{log_loss(y_test, proba):>10.4f}"
        f"{accuracy_score(y_test, proba > 0.5):>10.3f}{seconds:>9.1f}"
    )

# %%
# Reliability diagram
# -------------------
# A calibrated model's curve follows the diagonal: of the patients given a
# 0.8 probability of progressing beyond the median, 80% do. The histograms
# show where the predicted probabilities fall, the bottom panel how sure each
# model was of its mistakes.
colors = {
    "uncalibrated": "tab:red",
    "sigmoid": "tab:blue",
    "isotonic": "tab:green",
    "early stopping": "tab:gray",
}
fig = plt.figure(figsize=(10, 9))
grid = fig.add_gridspec(4, len(models))
ax_curve = fig.add_subplot(grid[:2, :])
for name, proba in probabilities.items():
    CalibrationDisplay.from_predictions(
        y_test,
        proba,
        n_bins=8,
        name=f"{name} (Brier {brier_score_loss(y_test, proba):.3f})",
        ax=ax_curve,
        color=colors[name],
        linestyle=":" if name == "early stopping" else "-",
    )
ax_curve.set_title("Pipeline(StandardScaler, PretrainedClassifier) on diabetes")
ax_curve.set_xlabel("mean predicted probability (progression above median)")
ax_curve.set_ylabel("fraction above median")
ax_curve.legend(loc="upper left")
for i, (name, proba) in enumerate(probabilities.items()):
    ax = fig.add_subplot(grid[2, i])
    ax.hist(proba, bins=10, range=(0, 1), color=colors[name])
    ax.set_title(name)
    ax.set_xlabel("predicted probability")
    if i == 0:
        ax.set_ylabel("test patients")
ax_error = fig.add_subplot(grid[3, :])
for name, proba in probabilities.items():
    wrong = (proba > 0.5) != y_test
    ax_error.scatter(
        np.maximum(proba, 1 - proba)[wrong],
        [name] * int(wrong.sum()),
        color=colors[name],
        alpha=0.5,
    )
ax_error.set_xlim(0.48, 1.02)
ax_error.set_xlabel("confidence of each misclassified test patient")
fig.tight_layout()
path = OUT / "plot_pipeline_calibration.png"
fig.savefig(path, dpi=100)
print(f"\nfigure written to {path}")

# %%
# What calibration did here
# -------------------------
# Computed from this run's numbers.
brier = {name: brier_score_loss(y_test, p) for name, p in probabilities.items()}
for name in ("sigmoid", "isotonic"):
    change = brier[name] - brier["uncalibrated"]
    print(
        f"{name} calibration {'lowers' if change < 0 else 'raises'} the "
        f"over-trained network's Brier score by {abs(change):.4f} "
        f"({change / brier['uncalibrated']:+.0%})."
    )
for name, proba in probabilities.items():
    wrong = (proba > 0.5) != y_test
    sure = np.maximum(proba, 1 - proba)[wrong]
    print(
        f"{name}: {wrong.sum()} test errors, "
        f"{np.sum(sure > 0.9)} of them made with over 90% confidence."
    )
print(f"lowest Brier score: {min(brier, key=brier.get)}")
print(f"total time: {time.perf_counter() - start:.0f} s")
