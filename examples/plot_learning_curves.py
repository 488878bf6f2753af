"""
Learning curves from ``history_``: early stopping and two-phase fine-tuning
===========================================================================

Every fitted sktransfer estimator keeps Keras' training history in
``history_``: the training loss per epoch and, when early stopping held out
a validation split, the validation loss. This example draws them for the two
steps of transfer learning on scikit-learn's digits:

1. a :class:`~sktransfer.PretrainedClassifier` trained on the source task
   (digits 0-4) with its default early stopping: training stops ``patience``
   epochs after the best validation loss, and the weights of that best epoch
   are restored;
2. a :class:`~sktransfer.TransferClassifier` that moves the network to the
   target task (digits 5-9) in two phases, the recipe of the Keras
   transfer-learning guide: ``warmup_epochs`` train the new head alone on the
   frozen network at ``learning_rate`` (here a large one, 0.01: only the
   head moves), then everything is fine-tuned at a smaller learning rate
   (``fine_tune_learning_rate``, by default a tenth of ``learning_rate``).
   ``history_`` holds both phases, warm-up first. For comparison, the same
   transfer without warm-up fine-tunes everything from the first epoch at
   the default learning rate (0.001), with the fresh head's random gradients
   flowing into the pretrained layers.
"""

# %%
# Setup
# -----
# ``SKTRANSFER_EXAMPLE_SMALL=1`` runs a reduced version (fewer epochs);
# ``SKTRANSFER_EXAMPLE_OUT`` is where the figure goes.
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sktransfer import PretrainedClassifier, TransferClassifier
from sktransfer.datasets import load_digit_classes

SMALL = os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = Path(os.environ.get("SKTRANSFER_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)

SOURCE_EPOCHS = 40 if SMALL else 200  # upper bounds: early stopping ends sooner
TARGET_EPOCHS = 25 if SMALL else 150
WARMUP = 5 if SMALL else 10
start = time.perf_counter()

# %%
# Source and target tasks
# -----------------------
# The target has 300 labelled digits, so that a 10% validation split (30
# digits) is large enough for early stopping; the other target digits are
# the test set.
X_source, y_source = load_digit_classes(range(5))
X_b, y_b = load_digit_classes(range(5, 10))
X_target, X_test, y_target, y_test = train_test_split(
    X_b, y_b, train_size=300, stratify=y_b, random_state=0
)

# %%
# Step 1: pretraining with early stopping
# ---------------------------------------
source = PretrainedClassifier(
    hidden_layer_sizes=(128, 64), epochs=SOURCE_EPOCHS, random_state=0
).fit(X_source, y_source)
history = source.history_
best_epoch = int(np.argmin(history["val_loss"])) + 1
print(
    f"source: {len(history['loss'])} epochs run (at most {SOURCE_EPOCHS}), best "
    f"validation loss {min(history['val_loss']):.4f} at epoch {best_epoch}, "
    "whose weights were kept"
)

# %%
# Step 2: transfer in two phases, and in one
# ------------------------------------------
# ``warmup_epochs`` is not more than ``patience`` (10 by default), so early
# stopping cannot end the warm-up before it is complete, and the first
# ``WARMUP`` entries of ``history_`` are the warm-up phase.
two_phase = TransferClassifier(
    source,
    freeze=0,
    warmup_epochs=WARMUP,
    learning_rate=0.01,  # warm-up; fine-tuning then uses 0.001
    epochs=TARGET_EPOCHS,
    random_state=0,
).fit(X_target, y_target)
one_phase = TransferClassifier(
    source, freeze=0, epochs=TARGET_EPOCHS, random_state=0
).fit(X_target, y_target)
assert two_phase.warmup_epochs <= two_phase.patience
for name, clf in (("two-phase", two_phase), ("one-phase", one_phase)):
    n = len(clf.history_["loss"])
    print(
        f"{name} transfer: {n} epochs in all, best validation loss "
        f"{min(clf.history_['val_loss']):.4f}, test accuracy "
        f"{clf.score(X_test, y_test):.3f}"
    )

# %%
# The curves
# ----------
fig, (ax_source, ax_target) = plt.subplots(1, 2, figsize=(12, 4.5))
epochs = np.arange(1, len(history["loss"]) + 1)
ax_source.plot(epochs, history["loss"], label="loss (training)")
ax_source.plot(epochs, history["val_loss"], label="val_loss (validation split)")
ax_source.axvline(best_epoch, color="gray", linestyle=":", label="best epoch, kept")
ax_source.set_title("PretrainedClassifier on digits 0-4 (early stopping)")

curves = two_phase.history_
epochs = np.arange(1, len(curves["loss"]) + 1)
ax_target.plot(epochs, curves["loss"], color="tab:blue", label="loss, two-phase")
ax_target.plot(
    epochs, curves["val_loss"], color="tab:orange", label="val_loss, two-phase"
)
baseline = one_phase.history_["val_loss"]
ax_target.plot(
    np.arange(1, len(baseline) + 1),
    baseline,
    color="tab:orange",
    linestyle="--",
    alpha=0.6,
    label="val_loss, one phase (no warm-up)",
)
ax_target.axvline(
    WARMUP + 0.5, color="black", linestyle="--", label="warm-up ends: fine-tuning"
)
ax_target.axvspan(0.5, WARMUP + 0.5, color="gray", alpha=0.12)
ax_target.text(
    (WARMUP + 1) / 2,
    0.97,
    "head only",
    transform=ax_target.get_xaxis_transform(),
    ha="center",
    va="top",
    fontsize="small",
)
ax_target.set_title(
    f"TransferClassifier to digits 5-9 (warmup_epochs={WARMUP}, freeze=0)"
)
for ax in (ax_source, ax_target):
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
fig.tight_layout()
path = OUT / "plot_learning_curves.png"
fig.savefig(path, dpi=100)
print(f"figure written to {path}")

# %%
# Reading the curves
# ------------------
# Computed from this run's histories.
warmup_val = curves["val_loss"][:WARMUP]
tuned_val = curves["val_loss"][WARMUP:]
print(
    f"warm-up (head only): validation loss {warmup_val[0]:.3f} -> "
    f"{warmup_val[-1]:.3f}; fine-tuning everything: best {min(tuned_val):.3f}"
)
print(
    f"without warm-up the first epochs reach validation loss {baseline[0]:.3f} "
    f"-> {min(baseline[:WARMUP]):.3f} (best of the first {WARMUP}); "
    f"best overall {min(baseline):.3f}"
)
two, one = min(curves["val_loss"]), min(baseline)
print(
    f"best validation loss: two-phase {two:.3f}, one phase {one:.3f}; "
    f"test accuracy {two_phase.score(X_test, y_test):.3f} vs "
    f"{one_phase.score(X_test, y_test):.3f}: on this task the warm-up "
    + ("helps." if two < one else "does not help (the heads reach similar losses).")
)
print(f"total time: {time.perf_counter() - start:.0f} s")
