"""
Quickstart: pretrain, save, transfer, and choose the freeze depth
=================================================================

The README's quickstart as a story, on scikit-learn's embedded digits
(nothing is downloaded):

* a team has a **large labelled source task**: 1000 digits with their 10
  digit labels;
* the **target task** is different and small: tell "even" from "odd" digits
  on other scans, with only 10 labelled examples per class.

We pretrain a network on the source, save it, transfer it to the target, and
let cross-validation decide how much of it to freeze. Every step is an
ordinary scikit-learn estimator.

Environment variables: ``SKTRANSFER_EXAMPLE_SMALL=1`` runs a reduced version
(few epochs, 2 folds; for CI), ``SKTRANSFER_EXAMPLE_OUT=DIR`` says where the
models and the figure go (default: the current directory).
"""

# %%
# Settings and data
# -----------------
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from sktransfer import PretrainedClassifier, TransferClassifier, load  # noqa: E402
from sktransfer.datasets import load_parity_transfer  # noqa: E402

SMALL = os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = os.environ.get("SKTRANSFER_EXAMPLE_OUT", ".")
os.makedirs(OUT, exist_ok=True)
EPOCHS = {"epochs": 10} if SMALL else {}  # the default is up to 200 epochs
N_FOLDS = 2 if SMALL else 5

data = load_parity_transfer(shots=10, random_state=0)
print(
    f"source: {len(data.y_source)} digits, labels {sorted(set(data.y_source.tolist()))}"
)
print(f"target: {len(data.y_target)} labelled examples, {len(data.y_test)} to test")

# %%
# 1. Pretrain on the source task and save the network
# ----------------------------------------------------
# ``PretrainedClassifier`` is a Keras MLP (128 and 64 units by default) with
# early stopping: a drop-in for scikit-learn's ``MLPClassifier``. ``save``
# writes one Keras-native ``.keras`` file; nothing is pickled.
source = PretrainedClassifier(random_state=0, **EPOCHS)
source.fit(data.X_source, data.y_source)
source_path = os.path.join(OUT, "source.keras")
source.save(source_path)
print(f"pretrained for {len(source.history_['loss'])} epochs, saved {source_path}")

# %%
# 2. Transfer: a new head on the frozen source network
# ----------------------------------------------------
# ``TransferClassifier`` loads the file and keeps what the source knows: the
# outputs of its hidden layers and its own scores for the ten digits (the
# default ``cut="auto"``, "multi"). With the whole base frozen
# (``freeze="all"``) the new "even"/"odd" head is a logistic regression on
# those features, solved to convergence with its regularisation chosen by an
# internal cross-validation: no Keras training loop at all. Every fit starts
# from a fresh copy of the file's weights.
frozen = TransferClassifier(
    pretrained=source_path, freeze="all", random_state=0, **EPOCHS
)
frozen.fit(data.X_target, data.y_target)
print(
    f"freezable layers of the base: {frozen.base_layers_}, frozen: {frozen.n_frozen_}"
)
print(f"test accuracy, whole base frozen: {frozen.score(data.X_test, data.y_test):.3f}")

# %%
# 3. Choose the freeze depth by cross-validation
# ----------------------------------------------
# The freeze depth counts the base's weighted layers from the input (its two
# hidden layers, then the copy of the old head that gives the class scores):
# ``0`` fine-tunes everything, ``1`` keeps the first Dense layer fixed,
# ``"all"`` keeps the whole base. Below ``"all"``, the solved head is the
# starting point of fine-tuning (LP-FT). The depth is a hyperparameter like
# any other, so ``GridSearchCV`` picks it; stratified folds, since
# ``TransferClassifier`` is a true scikit-learn classifier.
search = GridSearchCV(
    TransferClassifier(pretrained=source_path, random_state=0, **EPOCHS),
    {"freeze": [0, 1, 2, "all"]},
    cv=StratifiedKFold(N_FOLDS, shuffle=True, random_state=0),
)
search.fit(data.X_target, data.y_target)
depths = [str(d) for d in search.cv_results_["param_freeze"]]
means = search.cv_results_["mean_test_score"]
stds = search.cv_results_["std_test_score"]
for depth, mean, std in zip(depths, means, stds):
    print(f"freeze={depth:<4} CV accuracy {mean:.3f} ± {std:.3f}")
best = search.best_estimator_
transfer_score = best.score(data.X_test, data.y_test)
print(f"chosen freeze={best.freeze!r}: test accuracy {transfer_score:.3f}")

# %%
# 4. Compare with the same network trained from scratch
# -----------------------------------------------------
# Same architecture, same 20 examples, no source task.
scratch = PretrainedClassifier(random_state=0, **EPOCHS)
scratch.fit(data.X_target, data.y_target)
scratch_score = scratch.score(data.X_test, data.y_test)
print(f"from scratch: test accuracy {scratch_score:.3f}")

# %%
# 5. Save the chosen model and load it back
# -----------------------------------------
# ``sktransfer.load`` returns a fitted estimator (Keras ``safe_mode`` on: no
# code from the file runs).
model_path = os.path.join(OUT, "model.keras")
best.save(model_path)
restored = load(model_path)
assert (restored.predict(data.X_test) == best.predict(data.X_test)).all()
print(f"saved and reloaded {model_path}: {type(restored).__name__}")

# %%
# 6. The figure
# -------------
# Left: the validation curve over freeze depth. Right: test accuracy of the
# models trained on the 20 examples.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
x = np.arange(len(depths))
left.errorbar(x, means, yerr=stds, marker="o", capsize=4)
left.plot(x[search.best_index_], means[search.best_index_], "*", ms=16, label="chosen")
left.set_xticks(x, depths)
left.set_xlabel("freeze depth (frozen layers of the source, from the input)")
left.set_ylabel(f"{N_FOLDS}-fold CV accuracy")
left.set_title("GridSearchCV over freeze depth")
left.legend(loc="best")
left.grid(alpha=0.3)
scores = {
    f"transfer\nfreeze={best.freeze!r}": transfer_score,
    "transfer\nfreeze='all'": frozen.score(data.X_test, data.y_test),
    "from\nscratch": scratch_score,
}
right.bar(list(scores), list(scores.values()), color=["C0", "C0", "C7"])
for i, value in enumerate(scores.values()):
    right.text(i, value + 0.01, f"{value:.3f}", ha="center")
right.set_ylim(0, 1.05)
right.set_ylabel("test accuracy")
right.set_title(f"Trained on {len(data.y_target)} labelled examples")
figure_path = os.path.join(OUT, "quickstart.png")
fig.savefig(figure_path, dpi=90)
print(f"figure saved to {figure_path}")
