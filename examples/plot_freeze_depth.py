"""
How transferable are the features of a deep network? (Yosinski et al., on digits)
=================================================================================

Yosinski, Clune, Bengio and Lipson (2014, "How transferable are features in
deep neural networks?") split ImageNet's classes into two halves A and B,
trained a network on each (*baseA*, *baseB*), then built new networks for
task B whose first *n* layers were copied from a base network:

* **AnB**: the first n layers copied from baseA and **frozen**, the layers
  above them **re-initialised** and trained on B;
* **AnB+**: the same, but the copied layers are **fine-tuned** too;
* **BnB** / **BnB+**: the self-transfer controls, copying from baseB itself.

They found that frozen transferred layers lose accuracy as n grows (the upper
layers are specific to task A, and splitting co-adapted layers hurts), while
fine-tuned transfer matched or beat training from scratch.

This example repeats the experiment at toy scale with scikit-learn's digits:
A = digits 0-4, B = digits 5-9, an MLP with four hidden layers of 64 units,
and on task B only 20 labelled examples per class (all other B digits are
the test set) so that what is transferred can matter. Every condition is one
:class:`~sktransfer.TransferClassifier`: ``cut=`` keeps the base up to its
n-th hidden layer, ``head_hidden_layer_sizes=`` puts fresh, randomly
initialised layers where the cut-off ones were (so every network has the same
architecture), and ``freeze="all"`` (AnB, BnB) or ``freeze=0`` (AnB+, BnB+)
decides whether the copied layers are fine-tuned.
"""

# %%
# Setup
# -----
# ``SKTRANSFER_EXAMPLE_SMALL=1`` runs a reduced version (one seed, three
# depths, fewer epochs) for continuous integration;
# ``SKTRANSFER_EXAMPLE_OUT`` is where the figure goes.
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sktransfer import PretrainedClassifier, TransferClassifier
from sktransfer.datasets import load_digit_classes

SMALL = os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = Path(os.environ.get("SKTRANSFER_EXAMPLE_OUT", "."))
OUT.mkdir(parents=True, exist_ok=True)

HIDDEN = (64, 64, 64, 64)  # L = 4 transferable layers; the output layer never is
SHOTS = 20  # labelled examples per class of task B
SEEDS = (0,) if SMALL else (0, 1, 2)
DEPTHS = (1, 2, 4) if SMALL else (1, 2, 3, 4)
EPOCHS = 40 if SMALL else 100  # every network trained on B gets the same budget

# %%
# Two tasks from one data set
# ---------------------------
# The halves share nothing but the pen strokes: no digit of A appears in B.
X_A, y_A = load_digit_classes(range(5))
X_B, y_B = load_digit_classes(range(5, 10))
print(f"task A: {len(y_A)} digits of classes {sorted(set(y_A.tolist()))}")
print(f"task B: {len(y_B)} digits of classes {sorted(set(y_B.tolist()))}")


def few_shot_split(y, shots, seed):
    """``shots`` labelled indices per class, and all the others as test set."""
    rng = np.random.RandomState(seed)
    labelled = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)]
    )
    return labelled, np.setdiff1d(np.arange(len(y)), labelled)


# %%
# The conditions
# --------------
# ``base.model_.layers`` is ``[InputLayer, Dense, Dense, Dense, Dense,
# Dense(softmax)]``, so cutting at ``layers[n]`` keeps the first n hidden
# layers, and ``HIDDEN[n:]`` re-creates the ones above them with fresh
# weights. A network trained on B's 100 labelled digits has nothing to spare
# for a validation set, so none of them uses early stopping: all train for
# ``EPOCHS`` epochs.


def transferred(base, n, *, fine_tune, seed):
    """The first ``n`` layers of ``base``, copied; fresh layers above them."""
    return TransferClassifier(
        base,
        cut=base.model_.layers[n].name,
        freeze=0 if fine_tune else "all",
        head_hidden_layer_sizes=HIDDEN[n:],
        # the paper's protocol: the layers above the copied ones start from
        # random weights and train with the optimizer (at n = 4 "auto" would
        # solve the output layer as a logistic regression instead)
        head_solver="adam",
        epochs=EPOCHS,
        early_stopping=False,
        random_state=seed,
    )


CONDITIONS = {  # name: (source network, fine-tune the copied layers?)
    "AnB": ("A", False),
    "AnB+": ("A", True),
    "BnB": ("B", False),
    "BnB+": ("B", True),
}

# %%
# Run the experiment
# ------------------
# For each seed: a new draw of B's labelled examples, baseA trained on all of
# task A (early stopping on a validation split), baseB trained from scratch on
# B's labelled examples only (disjoint from B's test set), then every
# condition at every depth, trained on the same labelled examples as baseB.
# At n = 0 nothing is copied and every condition *is* baseB.
start = time.perf_counter()
scores = {name: {n: [] for n in (0, *DEPTHS)} for name in CONDITIONS}
base_b_scores = []
for seed in SEEDS:
    labelled, test = few_shot_split(y_B, SHOTS, seed)
    X_train, y_train = X_B[labelled], y_B[labelled]
    X_test, y_test = X_B[test], y_B[test]
    bases = {
        "A": PretrainedClassifier(
            hidden_layer_sizes=HIDDEN, epochs=EPOCHS, random_state=seed
        ).fit(X_A, y_A),
        "B": PretrainedClassifier(
            hidden_layer_sizes=HIDDEN,
            epochs=EPOCHS,
            early_stopping=False,
            random_state=seed,
        ).fit(X_train, y_train),
    }
    base_b = bases["B"].score(X_test, y_test)
    base_b_scores.append(base_b)
    for name, (source, fine_tune) in CONDITIONS.items():
        scores[name][0].append(base_b)
        for n in DEPTHS:
            clf = transferred(bases[source], n, fine_tune=fine_tune, seed=seed)
            clf.fit(X_train, y_train)
            assert clf.n_frozen_ == (0 if fine_tune else n)
            scores[name][n].append(clf.score(X_test, y_test))
    print(
        f"seed {seed}: baseB {base_b:.3f} on {len(y_test)} test digits "
        f"({time.perf_counter() - start:.0f} s so far)"
    )

mean = {name: {n: np.mean(s) for n, s in by_n.items()} for name, by_n in scores.items()}
base_b_mean = float(np.mean(base_b_scores))

# %%
# The table
# ---------
# Mean test accuracy on task B over the seeds (standard deviation in
# parentheses when there are several seeds). ``baseB`` is the same network
# trained from scratch on B's labelled examples, the yardstick for every row.
print(
    f"\nAccuracy on task B ({SHOTS} labelled examples per class, "
    f"{len(SEEDS)} seed(s)); n = layers copied"
)
columns = [*CONDITIONS, "baseB"]
print("n    " + "".join(f"{c:>16}" for c in columns))
for n in (0, *DEPTHS):
    cells = [scores[name][n] for name in CONDITIONS] + [base_b_scores]
    text = [
        f"{np.mean(c):.3f}" + (f" ({np.std(c):.3f})" if len(c) > 1 else "")
        for c in cells
    ]
    print(f"{n:<5}" + "".join(f"{t:>16}" for t in text))

# %%
# The figure
# ----------
# Like the paper's Figure 2: each dot is one network, the lines join the
# means, and baseB (training from scratch) is the dashed line.
styles = {
    "BnB": dict(color="tab:blue", marker="o", markerfacecolor="white"),
    "BnB+": dict(color="tab:blue", marker="o"),
    "AnB": dict(color="tab:red", marker="D", markerfacecolor="white"),
    "AnB+": dict(color="tab:red", marker="D"),
}
depths = [0, *DEPTHS]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax in axes:
    for i, (name, style) in enumerate(styles.items()):
        offset = (i - 1.5) * 0.06  # spread the dots of one depth apart
        for n in depths:
            ax.plot(
                [n + offset] * len(scores[name][n]),
                scores[name][n],
                linestyle="none",
                alpha=0.35,
                markersize=4,
                **style,
            )
        ax.plot(depths, [mean[name][n] for n in depths], label=name, **style)
    ax.axhline(base_b_mean, color="black", linestyle="--", linewidth=1, label="baseB")
    ax.set_xticks(depths)
    ax.set_xlabel("n: layers copied from the base network")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("test accuracy on task B (digits 5-9)")
axes[0].set_title("all conditions")
axes[0].legend(ncol=3, loc="lower left", fontsize="small")
# the right panel zooms in on everything but the frozen AnB networks
zoomed = [
    score
    for name in ("AnB+", "BnB", "BnB+")
    for n in depths
    for score in scores[name][n]
]
axes[1].set_ylim(min(zoomed) - 0.01, max(zoomed) + 0.01)
axes[1].set_title("zoomed in on AnB+, BnB and BnB+")
fig.suptitle(
    f"Transferability of MLP layers on digits ({SHOTS} labelled per class, "
    f"{len(SEEDS)} seed{'s' if len(SEEDS) > 1 else ''})"
)
fig.tight_layout()
path = OUT / "plot_freeze_depth.png"
fig.savefig(path, dpi=100)
print(f"\nfigure written to {path}")

# %%
# What this reproduction shows
# ----------------------------
# The sentences below are computed from the numbers above (a difference under
# one percentage point counts as "matches"), so they describe this run,
# whatever it found, next to what the paper reported.
#
# At full size (3 seeds, measured 2026-11-30) AnB+ matched baseB at n = 1
# and 2 but trailed it at n = 3 and 4, by 2.0 and 2.7 points, where the
# paper's AnB+ never trails. Why, measured: A's upper layers are specific to
# digits 0-4 (frozen, they cost AnB 32 points at n = 4), and 100 labelled
# digits do not retrain them all the way. Three times the epochs (300)
# narrowed the gap at n = 4 to 1.8 points and a three times higher learning
# rate did not change it; the paper's task B had about 600,000 labelled
# images to fine-tune on.
TOLERANCE = 0.01


def compare(value, reference):
    diff = value - reference
    word = "matches" if abs(diff) < TOLERANCE else ("beats" if diff > 0 else "trails")
    return f"{word} baseB ({diff * 100:+.1f} points)"


deepest = DEPTHS[-1]
print(f"\nbaseB (from scratch on task B): {base_b_mean:.3f}")
anb = [mean["AnB"][n] for n in DEPTHS]
print(
    f"AnB (frozen layers from A, fresh layers above): {anb[0]:.3f} at n={DEPTHS[0]}, "
    f"{anb[-1]:.3f} at n={deepest}: "
    + (
        f"it loses {(anb[0] - anb[-1]) * 100:.1f} points as more of A's layers "
        "are frozen in, as the paper found."
        if anb[0] - anb[-1] >= TOLERANCE
        else "it does not lose accuracy with depth here, unlike the paper."
    )
)
for name in ("AnB+", "BnB", "BnB+"):
    worst = min(DEPTHS, key=lambda n, name=name: mean[name][n])
    best = max(DEPTHS, key=lambda n, name=name: mean[name][n])
    print(
        f"{name}: at worst (n={worst}) {compare(mean[name][worst], base_b_mean)}, "
        f"at best (n={best}) {compare(mean[name][best], base_b_mean)}."
    )
fine_tuned_ok = all(mean["AnB+"][n] > base_b_mean - TOLERANCE for n in DEPTHS)
print(
    "Paper: fine-tuned transfer (AnB+) matches or beats training from scratch. "
    + (
        "This run agrees: AnB+ is never more than a point below baseB."
        if fine_tuned_ok
        else "This run does not fully agree: AnB+ falls more than a point "
        "below baseB at n = "
        + ", ".join(
            str(n) for n in DEPTHS if mean["AnB+"][n] <= base_b_mean - TOLERANCE
        )
        + "."
    )
)
frozen_gap = {n: mean["BnB"][n] - mean["AnB"][n] for n in DEPTHS}
print(
    "Frozen features from B itself versus from A (BnB - AnB), by n: "
    + ", ".join(f"n={n}: {gap * 100:+.1f}" for n, gap in frozen_gap.items())
    + " points: "
    + (
        "the gap widens with depth, so the upper layers are the task-specific ones."
        if frozen_gap[deepest] > frozen_gap[DEPTHS[0]] + TOLERANCE
        else "the gap does not widen with depth here."
    )
)
print(f"total time: {time.perf_counter() - start:.0f} s")
