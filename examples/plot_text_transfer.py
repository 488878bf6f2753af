"""
Text transfer: an Embedding network on token ids, reused for a new labelling
============================================================================

Networks that read text take integer token ids, not floats: their first
layer is ``keras.Input(dtype="int32")`` followed by an ``Embedding``. Both
sktransfer estimators follow the network's input dtype, in ``fit`` and in
every prediction, and refuse non-integer values before training.

The story, on a generated corpus (nothing is downloaded):

* a **source task** with many labelled documents: which of 8 topics a
  document is about;
* a **target task** with a handful of labelled documents per class: a new
  labelling of other documents into 3 groups of topics ("news", "hobbies",
  "science"), never seen as such by the source network.

We pretrain an ``Embedding`` + ``GlobalAveragePooling1D`` + ``Dense`` network
on the source, transfer it to the target with ``TransferClassifier``, and
compare with the same network trained from scratch and with a logistic
regression on bag-of-words counts.

Environment variables: ``SKTRANSFER_EXAMPLE_SMALL=1`` runs a reduced version
(fewer documents and epochs; for CI), ``SKTRANSFER_EXAMPLE_OUT=DIR`` says
where the figure goes (default: the current directory).
"""

# %%
# A generated corpus
# ------------------
# 8 topics over a vocabulary of 300 token ids. Each topic has 12 words of its
# own; a document of 40 tokens draws about one token in seven from its
# topic's words and the rest from common words shared by all topics
# (Zipf-distributed, as in real text). Token id 0 is never used.
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from sktransfer import PretrainedClassifier, TransferClassifier  # noqa: E402

SMALL = os.environ.get("SKTRANSFER_EXAMPLE_SMALL", "") not in ("", "0")
OUT = os.environ.get("SKTRANSFER_EXAMPLE_OUT", ".")
os.makedirs(OUT, exist_ok=True)

VOCAB, LENGTH, N_TOPICS, TOPIC_WORDS = 300, 40, 8, 12
N_SOURCE = 1200 if SMALL else 4000
SHOTS = 5  # labelled target documents per class
EPOCHS = 15 if SMALL else 40
GROUPS = {"news": (0, 3, 5), "hobbies": (1, 6), "science": (2, 4, 7)}

rng = np.random.default_rng(0)
topic_words = 1 + rng.permutation(VOCAB - 1)[: N_TOPICS * TOPIC_WORDS].reshape(
    N_TOPICS, TOPIC_WORDS
)
zipf = 1.0 / np.arange(1, VOCAB)
zipf /= zipf.sum()


def documents(n, seed):
    """``n`` documents (token ids, int64) and their topics."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, N_TOPICS, size=n)
    own = topic_words[topics[:, None], rng.integers(0, TOPIC_WORDS, (n, LENGTH))]
    common = 1 + rng.choice(VOCAB - 1, size=(n, LENGTH), p=zipf)
    return np.where(rng.random((n, LENGTH)) < 0.15, own, common), topics


X_source, y_source = documents(N_SOURCE, seed=1)
X_other, topics_other = documents(2000, seed=2)
group_of = {t: g for g, members in GROUPS.items() for t in members}
y_other = np.array([group_of[t] for t in topics_other], dtype=object)
X_target, X_test, y_target, y_test = train_test_split(
    X_other,
    y_other,
    train_size=SHOTS * len(GROUPS),
    stratify=y_other,
    random_state=0,
)
print(
    f"source: {len(y_source)} documents, {N_TOPICS} topics, vocabulary {VOCAB}, "
    f"{LENGTH} tokens each"
)
print(
    f"target: {len(y_target)} labelled documents ({SHOTS} per class), "
    f"{len(y_test)} to test, classes {sorted(GROUPS)}"
)


# %%
# 1. Pretrain an Embedding network on the topics
# ----------------------------------------------
# The network is an ordinary Keras model; ``PretrainedClassifier`` trains a
# private copy of it (the callable is called with the data's ``meta``).
def text_network(meta):
    tokens = keras.Input(shape=meta["input_shape_"], dtype="int32", name="tokens")
    h = keras.layers.Embedding(VOCAB, 16, name="embedding")(tokens)
    h = keras.layers.GlobalAveragePooling1D(name="average")(h)
    h = keras.layers.Dense(32, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(meta["n_classes_"], activation="softmax")(h)
    return keras.Model(tokens, outputs)


source = PretrainedClassifier(
    text_network, learning_rate=0.01, epochs=EPOCHS, random_state=0
)
source.fit(X_source, y_source)
print(f"source network input dtype: {source.model_.inputs[0].dtype}")
print(f"source: {len(source.history_['loss'])} epochs run")

# %%
# 2. Transfer to the new labelling
# --------------------------------
# The old 8-topic head is cut, a new 3-class head is added. Frozen: only the
# head trains, on the cached output of the frozen embedding and hidden layer.
# Fine-tuned: after a warm-up of the head alone, everything trains at a
# tenth of the learning rate.
frozen = TransferClassifier(
    source, freeze="all", learning_rate=0.01, epochs=EPOCHS * 3, random_state=0
).fit(X_target, y_target)
tuned = TransferClassifier(
    source,
    freeze=0,
    warmup_epochs=EPOCHS,
    learning_rate=0.01,
    epochs=EPOCHS,
    random_state=0,
).fit(X_target, y_target)

# %%
# 3. Baselines on the same few labelled documents
# -----------------------------------------------
# The same architecture trained from scratch, and a logistic regression on
# bag-of-words counts (a document's count of each token id).
scratch = PretrainedClassifier(
    text_network, learning_rate=0.01, epochs=EPOCHS * 3, random_state=0
).fit(X_target, y_target)


def bag_of_words(X):
    return np.stack([np.bincount(row, minlength=VOCAB) for row in X])


bow = LogisticRegression(max_iter=2000).fit(bag_of_words(X_target), y_target)

scores = {
    "transfer, frozen": frozen.score(X_test, y_test),
    "transfer, fine-tuned": tuned.score(X_test, y_test),
    "from scratch": scratch.score(X_test, y_test),
    "bag-of-words logistic": bow.score(bag_of_words(X_test), y_test),
}
print("model                     test accuracy")
for name, score in scores.items():
    print(f"{name:<25} {score:.3f}")
best = max(scores, key=scores.get)
transfer_best = max(scores["transfer, frozen"], scores["transfer, fine-tuned"])
baseline_best = max(scores["from scratch"], scores["bag-of-words logistic"])
print(f"best: {best}")
print(f"transfer vs best baseline: {100 * (transfer_best - baseline_best):+.1f} points")

# %%
# 4. The figure
# -------------
# Left: test accuracy. Right: the source network's word embeddings of the
# topic words (first two principal components), coloured by target group:
# the source task put words of one topic together, which the new labelling
# reuses.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
names = list(scores)
left.barh(names, [scores[n] for n in names], color="tab:blue")
left.axvline(1 / len(GROUPS), color="grey", linestyle="--", label="chance")
left.set_xlim(0, 1)
left.set_xlabel(f"test accuracy ({len(y_test)} documents)")
left.set_title(f"{SHOTS} labelled documents per class")
left.legend(loc="lower right")
embedding = source.model_.get_layer("embedding").get_weights()[0]
points = PCA(2, random_state=0).fit_transform(embedding[topic_words.ravel()])
colours = dict(zip(GROUPS, ("tab:red", "tab:green", "tab:purple")))
for group, members in GROUPS.items():
    rows = np.isin(np.repeat(np.arange(N_TOPICS), TOPIC_WORDS), members)
    right.scatter(*points[rows].T, s=14, color=colours[group], label=group)
right.set_title("source embeddings of the topic words")
right.set_xlabel("PC 1")
right.set_ylabel("PC 2")
right.legend(title="target group")
figure_path = os.path.join(OUT, "plot_text_transfer.png")
fig.savefig(figure_path, dpi=90)
print(f"figure written to {figure_path}")
