"""Prototype of a few-shot transfer recipe (issue 11), for integration.

Plain functions on Keras models and NumPy arrays, no estimator classes.
The recipe, as an estimator's ``fit`` would run it (defaults chosen on the
dev tasks of ``_tasks.py`` with ``explore_recipe.py``; evidence in the
hand-back report):

1. ``net = features_model(source, cut="multi")``: the source's input ->
   features at ``cut``. "multi" concatenates every hidden weighted layer's
   output (pooled if spatial), the old head's logits (a linear copy of the
   head Dense) and its class probabilities (Head2Toe without the feature
   selection); "penultimate" is today's ``cut="auto"``. ``copy=True`` builds
   on a private copy of the source (needed to fine-tune).
2. ``F = extract(net, X)``: one inference-mode forward pass (cacheable).
3. ``probe = fit_probe(F, y, C="cv", blocks=net.sktransfer_blocks)``: an L2
   multinomial logistic regression (scikit-learn, lbfgs, tol 1e-6) on
   standardized features (weighted mean/std, scale floored at 0.1 x its
   block's RMS), C in 1e-3..1e3 and the block weighting (per feature, or
   each block divided by sqrt(width)) chosen together by 5-fold stratified
   CV log-loss with the standardization refitted inside each fold.
   ``probe.kernel``/``probe.bias`` are one ``Dense(n_classes, softmax)``
   layer acting on raw F: softmax(W (x - m) / s + b) = softmax((W / s) x +
   (b - W m / s)); binary: the one coefficient row becomes the two columns
   ``[-w/2, +w/2]``.
4. ``model = attach_head(net, probe)``: input -> features -> that Dense
   layer; reproduces ``LogisticRegression.predict_proba`` (run this file:
   max difference < 1e-6).
5. optionally ``model, steps = fine_tune(model, X, y, tune="all",
   steps="cv", features=F)`` (LP-FT): the ``tune`` base layers and the head
   train together with full-batch Adam (lr 1e-3) on the probe's own
   objective (cross-entropy + the same L2 penalty on the head, in the
   probe's standardized units); the number of steps (0, 25, ..., 400) is
   chosen by the same 5-fold CV with the 1-SE rule (0: the probe alone).

Recommended default: 1-4, the probe alone (``recipe_fit(tune=None)``).
LP-FT (5) is opt-in: on the dev tasks its CV gate never made a seed worse,
but on the panel it fine-tuned parity seed 0 for 100 steps and lost 11
points (the gate's 4-row folds are noisy); it gains 1-3 points where the
source's features are off (unseen classes, shifted inputs).

``recipe_fit`` runs 1-5. ``train_scratch`` is the matching from-scratch MLP
trainer (same step-counted loop), used as a fair baseline. Training loops
are traced once per architecture and reused across fits (``_Trainer``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

__all__ = [
    "CUTS",
    "Probe",
    "attach_head",
    "extract",
    "features_model",
    "fine_tune",
    "fit_probe",
    "fold_standardization",
    "probe_logits",
    "recipe_fit",
    "train_scratch",
]

#: named cuts; any "+"-joined list of parts is accepted too
CUTS = {
    "penultimate": ("penultimate",),  # today's cut="auto"
    "logits": ("logits",),
    "probs": ("probs",),
    "scores": ("logits", "probs"),
    "multi": ("hidden", "logits", "probs"),  # Head2Toe-style, no selection
    "multi+input": ("input", "hidden", "logits", "probs"),
}
PARTS = ("input", "hidden", "penultimate", "logits", "probs")
#: each feature's scale is at least this fraction of its block's RMS scale
SCALE_FLOOR = 0.1
#: C grid of the internal CV (inverse L2 strength on standardized features)
DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3)


# ---------------------------------------------------------------- features
def _head_index(model):
    """Index in ``model.layers`` of the last layer with weights (old head)."""
    weighted = [i for i, layer in enumerate(model.layers) if layer.weights]
    if not weighted:
        raise ValueError("the source network has no layer with weights")
    return weighted[-1]


def _copy(model):
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _flat(tensor, name):
    """Global-average-pool spatial maps, flatten anything else to 2-D."""
    if len(tensor.shape) == 4:
        return keras.layers.GlobalAveragePooling2D(name=name)(tensor)
    if len(tensor.shape) == 3:
        return keras.layers.GlobalAveragePooling1D(name=name)(tensor)
    if len(tensor.shape) != 2:
        return keras.layers.Flatten(name=name)(tensor)
    return tensor


def parse_cut(cut):
    parts = CUTS[cut] if cut in CUTS else tuple(cut.split("+"))
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise ValueError(f"cut {cut!r}: use one of {list(CUTS)} or '+'-joined {PARTS}")
    return parts


def features_model(source, cut="multi", *, copy=True, freeze_scores=False):
    """A network from ``source``'s input to its features at ``cut``.

    Parameters
    ----------
    source : keras.Model
        Functional or Sequential classifier ending in a Dense head.
    cut : str
        A name in ``CUTS`` or "+"-joined parts: ``input`` (flattened input),
        ``hidden`` (every weighted layer below the old head, pooled if
        spatial, one block each), ``penultimate`` (the old head's input:
        today's ``cut="auto"``), ``logits`` (the old head's pre-activation
        scores, from a linear copy of the head Dense) and ``probs`` (the
        source's class probabilities, the copy's scores through the head's
        activation).
    copy : bool
        Build on a private copy of the source (needed to fine-tune).
    freeze_scores : bool
        With ``copy``: compute ``logits``/``probs`` with a second, frozen
        copy of the source (a nested model that no fine-tuning touches), so
        fine-tuning the hidden layers cannot distort the class scores the
        probe relies on; only the hidden layers count as ``groups``.

    Returns
    -------
    net : keras.Model
        With attributes ``sktransfer_groups`` (the base's weighted layers from
        the input: what ``tune`` counts) and ``sktransfer_blocks`` (the width
        of each concatenated part, for per-block normalization).
    """
    parts = parse_cut(cut)
    net = _copy(source) if copy else source
    layers = net.layers
    h = _head_index(net)
    head = layers[h]
    if not isinstance(head, keras.layers.Dense):
        raise ValueError("the source network must end in a Dense head")
    hidden = [layer for layer in layers[:h] if layer.weights]
    groups = list(hidden)
    scores = {}
    if freeze_scores and copy and ("logits" in parts or "probs" in parts):
        frozen = _copy(source)
        fhead = frozen.layers[h]
        fdense = keras.layers.Dense(
            head.units, activation=None, name="proto_frozen_logits"
        )
        flogits = fdense(fhead.input)
        fdense.set_weights(head.get_weights())
        fprobs = keras.layers.Activation(head.activation)(flogits)
        branch = keras.Model(
            frozen.inputs[0], [flogits, fprobs], name="proto_frozen_scores"
        )
        branch.trainable = False
        scores["logits"], scores["probs"] = branch(net.inputs[0])
    elif "logits" in parts or "probs" in parts:
        copy_head = keras.layers.Dense(
            head.units, activation=None, name="proto_source_logits"
        )
        scores["logits"] = copy_head(head.input)
        copy_head.set_weights(head.get_weights())
        scores["probs"] = keras.layers.Activation(
            head.activation, name="proto_source_probs"
        )(scores["logits"])
        groups.append(copy_head)
    outs = []
    for part in parts:
        if part == "input":
            outs.append(_flat(net.inputs[0], "proto_flat_input"))
        elif part == "hidden":
            outs += [_flat(t.output, f"proto_pool_{k}") for k, t in enumerate(hidden)]
        elif part == "penultimate":
            outs.append(_flat(head.input, "proto_pool"))
        else:
            outs.append(scores[part])
    blocks = [int(t.shape[-1]) for t in outs]
    if len(outs) == 1:
        out = outs[0]
    else:
        out = keras.layers.Concatenate(name="proto_concat")(outs)
    model = keras.Model(net.inputs[0], out, name="proto_features")
    for attr, value in (
        ("groups", groups),
        ("blocks", blocks),
        ("cut", cut),
        ("source", source),
        ("freeze_scores", bool(freeze_scores and copy)),
    ):
        object.__setattr__(model, f"sktransfer_{attr}", value)
    return model


def extract(net, X, batch=4096):
    """Inference-mode output of ``net`` for X, eagerly in chunks (float64)."""
    parts = [
        keras.ops.convert_to_numpy(net(X[i : i + batch], training=False))
        for i in range(0, len(X), batch)
    ]
    return np.concatenate(parts).astype(np.float64)


# ------------------------------------------------------------------- probe
@dataclass
class Probe:
    """A solved linear probe as one Dense(n_classes, softmax) layer."""

    kernel: np.ndarray  # (d, n_classes), acts on raw (unstandardized) features
    bias: np.ndarray  # (n_classes,)
    C: float  # chosen inverse regularization strength
    mean: np.ndarray  # standardization folded into kernel/bias:
    scale: np.ndarray  # the LR saw (F - mean) / scale
    n_samples: float  # sum of sample weights (for the FT penalty)
    blocks: list | None = None  # widths of the feature blocks
    block_norm: bool = False  # whether each block was divided by sqrt(width)
    floor: float = SCALE_FLOOR
    cv_scores: dict = field(default_factory=dict)  # (block_norm, C) -> CV loss
    seconds: float = 0.0

    @property
    def penalty_strength(self):
        """The LR's |W_std|^2 / (2 C n) in terms of ``|kernel * scale|^2``.

        A binary probe's kernel holds [-w/2, w/2]: |kernel|^2 = |w|^2 / 2.
        """
        factor = 2.0 if self.kernel.shape[1] == 2 else 1.0
        return factor / (2.0 * self.C * self.n_samples)


def standardizer(
    F, sample_weight=None, blocks=None, block_norm=False, floor=SCALE_FLOOR
):
    """``(mean, scale)`` the probe standardizes F with: ``(F - mean) / scale``.

    Weighted mean and standard deviation per feature, with two changes:

    * ``scale = sqrt(std^2 + (floor * rms_block)^2)``: a feature (nearly)
      constant on the few training rows (a class probability that is ~0 for
      every labelled row) would otherwise be blown up on test rows where it
      is not, by 1/std: held-out log-loss of 4-9 nats in 4-row CV folds;
    * with ``block_norm``, every feature of a block of width ``w`` is further
      divided by sqrt(w), so each block gets the same prior variance.
    """
    w = np.ones(len(F)) if sample_weight is None else np.asarray(sample_weight, float)
    mean = np.average(F, axis=0, weights=w)
    var = np.average((F - mean) ** 2, axis=0, weights=w)
    widths = [F.shape[1]] if not blocks else list(blocks)
    scale = np.empty(F.shape[1])
    start = 0
    for width in widths:
        part = slice(start, start + width)
        rms = np.sqrt(var[part].mean())
        if rms <= 1e-12:  # a constant block (dead units): leave it unscaled
            scale[part] = 1.0
        else:
            scale[part] = np.sqrt(var[part] + (floor * rms) ** 2)
            # floor=0: a constant feature gets zero weight anyway; avoid 0/0
            scale[part][scale[part] <= 1e-9 * rms] = rms
        if block_norm:
            scale[part] *= np.sqrt(width)
        start += width
    return mean, scale


def _lr(C, max_iter, tol):
    return LogisticRegression(C=C, max_iter=max_iter, tol=tol, solver="lbfgs")


def fold_standardization(coef, intercept, mean, scale, n_classes):
    """``(kernel, bias)`` of a softmax Dense layer on raw features.

    ``coef`` is ``LogisticRegression.coef_`` fitted on ``(x - mean)/scale``:
    shape ``(n_classes, d)``, or ``(1, d)`` for two classes, which becomes
    the two softmax columns ``[-w/2, +w/2]`` (same probabilities).
    softmax(W (x - m)/s + b) = softmax((W/s) x + (b - W m / s)).
    """
    coef = np.asarray(coef, float)
    intercept = np.asarray(intercept, float)
    if n_classes == 2 and coef.shape[0] == 1:
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    kernel = (coef / scale).T  # (d, k)
    bias = intercept - (coef * (mean / scale)).sum(axis=1)
    return kernel, bias


def _cv_select_C(F, y, sample_weight, prep, Cs, cv, seed, max_iter, tol):
    """Mean held-out (weighted) log-loss per C; warm-started path per fold.

    ``prep(F_train, sw_train) -> (mean, scale)`` standardizes inside each
    fold, as the final fit will (standardizing on all rows first hides the
    blow-up of features that are constant on a fold's training rows).
    """
    counts = np.bincount(y)
    n_splits = int(min(cv, counts[counts > 0].min()))
    if n_splits < 2:
        return None, {}
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(F, y)
    losses = np.zeros(len(Cs))
    k = int(y.max()) + 1
    for train, test in folds:
        lr = _lr(Cs[0], max_iter, tol)
        lr.set_params(warm_start=True)
        sw_tr = None if sample_weight is None else sample_weight[train]
        sw_te = np.ones(len(test)) if sample_weight is None else sample_weight[test]
        mean, scale = prep(F[train], sw_tr)
        Z_tr, Z_te = (F[train] - mean) / scale, (F[test] - mean) / scale
        for j, C in enumerate(Cs):  # increasing C: warm start along the path
            lr.set_params(C=C)
            lr.fit(Z_tr, y[train], sample_weight=sw_tr)
            p = np.full((len(test), k), 1e-15)
            p[:, lr.classes_] = np.clip(lr.predict_proba(Z_te), 1e-15, 1)
            nll = -np.log(p[np.arange(len(test)), y[test]])
            losses[j] += np.average(nll, weights=sw_te)
    losses /= n_splits
    # smallest loss; on (near-)ties prefer the stronger regularization
    best = int(np.flatnonzero(losses <= losses.min() + 1e-6)[0])
    return float(Cs[best]), dict(zip(map(float, Cs), losses))


def fit_probe(
    F,
    y,
    *,
    C="cv",
    Cs=DEFAULT_CS,
    cv=5,
    blocks=None,
    block_norm="auto",
    floor=SCALE_FLOOR,
    sample_weight=None,
    random_state=0,
    max_iter=1000,
    tol=1e-6,
    cv_tol=1e-3,
):
    """Linear probe solved to convergence, as a Dense layer's weights.

    Parameters
    ----------
    F : ndarray (n, d)
        Frozen features.
    y : ndarray (n,) of int in 0..n_classes-1
        Every class must appear (the estimator's label encoding).
    C : float or "cv"
        Inverse L2 strength on standardized features (sklearn's C: the
        objective is C * sum_i w_i CE_i + |W|^2 / 2); "cv" picks it from
        ``Cs`` by stratified ``cv``-fold held-out log-loss on (F, y).
    blocks : list of int, optional
        Widths of concatenated feature blocks (``net.sktransfer_blocks``).
    block_norm : bool or "auto"
        With ``blocks``: divide each standardized feature by sqrt(its block's
        width), so every block gets the same prior variance of its
        contribution to the scores (a 20-unit class-score block is not
        drowned by a 128-unit hidden layer). "auto": try both weightings in
        the same CV as C and keep the better (needs C="cv"; else True).
    floor : float
        See :func:`standardizer`.
    sample_weight : ndarray (n,), optional

    Returns
    -------
    Probe
        ``scale`` includes the block factor: the LR saw (F - mean) / scale.
    """
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    F = np.asarray(F, np.float64)
    y = np.asarray(y)
    n_classes = int(y.max()) + 1
    sw = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    options = [False]
    if blocks is not None and len(blocks) > 1:
        if sum(blocks) != F.shape[1]:
            raise ValueError(f"blocks {blocks} do not add up to {F.shape[1]} features")
        if block_norm == "auto":
            options = [False, True] if isinstance(C, str) else [True]
        else:
            options = [bool(block_norm)]
    scores = {}
    chosen = options[0]
    # tiny problems: BLAS threads only add synchronisation (5-10x slower on
    # a loaded 2-core machine)
    with threadpool_limits(1):
        if isinstance(C, str):
            if C != "cv":
                raise ValueError("C must be a float or 'cv'")
            Cs = np.sort(np.asarray(Cs, float))
            best = (np.inf, None, None)
            for option in options:

                def prep(F_train, sw_train, option=option):
                    return standardizer(F_train, sw_train, blocks, option, floor)

                c, losses = _cv_select_C(
                    F, y, sw, prep, Cs, cv, random_state, max_iter, cv_tol
                )
                scores.update({(option, k): v for k, v in losses.items()})
                loss = min(losses.values()) if losses else np.inf
                if best[1] is None or loss < best[0] - 1e-9:
                    best = (loss, option, c)
            _, chosen, C = best
            if C is None:
                C = 1.0
        mean, scale = standardizer(F, sw, blocks, chosen, floor)
        Z = (F - mean) / scale
        lr = _lr(float(C), max_iter, tol).fit(Z, y, sample_weight=sw)
    kernel, bias = fold_standardization(lr.coef_, lr.intercept_, mean, scale, n_classes)
    return Probe(
        kernel=kernel.astype(np.float32),
        bias=bias.astype(np.float32),
        C=float(C),
        mean=mean,
        scale=scale,
        n_samples=float(len(y) if sw is None else sw.sum()),
        blocks=None if blocks is None else list(blocks),
        block_norm=bool(chosen),
        floor=floor,
        cv_scores=scores,
        seconds=time.perf_counter() - t0,
    )


def probe_logits(probe, F):
    """The probe's scores on raw features (NumPy)."""
    return F @ probe.kernel.astype(np.float64) + probe.bias


def attach_head(features_net, probe, name="proto_head"):
    """``features_net`` followed by Dense(n_classes, softmax) set to ``probe``."""
    dense = keras.layers.Dense(probe.kernel.shape[1], activation="softmax", name=name)
    out = dense(features_net.outputs[0])
    dense.set_weights([probe.kernel, probe.bias])
    model = keras.Model(features_net.inputs[0], out, name="proto_transfer")
    for attr in ("groups", "blocks", "cut", "source", "freeze_scores"):
        value = getattr(features_net, f"sktransfer_{attr}")
        object.__setattr__(model, f"sktransfer_{attr}", value)
    object.__setattr__(model, "sktransfer_head", dense)
    object.__setattr__(model, "sktransfer_probe", probe)
    return model


# -------------------------------------------------------------- training
def _tuned_layers(groups, tune):
    """Base layers to train: None/"none", "first", "last", "all", k, -k."""
    if tune is None or tune == "none" or tune == 0:
        return []
    if tune == "all":
        return list(groups)
    if tune == "first":
        return list(groups[:1])
    if tune == "last":
        return list(groups[-1:])
    k = int(tune)
    return list(groups[:k]) if k > 0 else list(groups[k:])


class _Trainer:
    """A traced Adam loop on a template network, reused across fits.

    Tracing a ``tf.function`` costs 1-2 s per new Keras model, several times
    the training itself on few-shot data. Fits of the same architecture
    with the same trainable layers (grid-search folds, seeds) share one
    template: its weights are overwritten, the optimizer state zeroed, the
    traced loop run, and the weights copied back to the fit's own network.
    Learning rate, penalty strengths, step count and seed are runtime
    inputs, so nothing retraces.
    """

    def __init__(self, template, head=None, kernels=()):
        import tensorflow as tf

        self.model = template
        self.variables = template.trainable_variables
        self.optimizer = keras.optimizers.Adam(1e-3)
        self.optimizer.build(self.variables)
        self.head = head
        self.head_scale = None
        if head is not None:
            self.head_scale = tf.Variable(tf.ones((head.kernel.shape[0], 1)))
        self.head_strength = tf.Variable(0.0)
        self.kernels = list(kernels)
        self.l2 = tf.Variable(0.0)
        ce = keras.losses.SparseCategoricalCrossentropy(reduction=None)

        def loss_fn(xb, yb, wb):
            p = self.model(xb, training=True)
            loss = tf.reduce_sum(wb * ce(yb, p)) / tf.reduce_sum(wb)
            if self.head is not None:
                loss += self.head_strength * tf.reduce_sum(
                    tf.square(self.head.kernel * self.head_scale)
                )
            if self.kernels:
                loss += self.l2 * tf.add_n(
                    [tf.reduce_sum(tf.square(k)) for k in self.kernels]
                )
            return loss

        def run(X, y, sw, steps, batch_size, seed):
            n = tf.shape(X)[0]
            bs = tf.minimum(batch_size, n)
            per_epoch = (n + bs - 1) // bs
            loss = tf.constant(0.0)
            order = tf.range(n)
            for i in tf.range(steps):
                pos = (i % per_epoch) * bs
                if pos == 0 and bs < n:
                    order = tf.random.experimental.stateless_shuffle(
                        tf.range(n), seed=tf.stack([seed, i // per_epoch])
                    )
                idx = order[pos : pos + bs]
                xb, yb, wb = tf.gather(X, idx), tf.gather(y, idx), tf.gather(sw, idx)
                with tf.GradientTape() as tape:
                    loss = loss_fn(xb, yb, wb)
                grads = tape.gradient(loss, self.variables)
                self.optimizer.apply_gradients(zip(grads, self.variables))
            return loss

        x_spec = tf.TensorSpec((None, *template.inputs[0].shape[1:]), tf.float32)
        self.run = tf.function(
            run,
            input_signature=[
                x_spec,
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((None,), tf.float32),
                tf.TensorSpec((), tf.int32),
                tf.TensorSpec((), tf.int32),
                tf.TensorSpec((), tf.int32),
            ],
            jit_compile=False,
        )

    def start(
        self,
        weights,
        *,
        learning_rate,
        head_scale=None,
        head_strength=0.0,
        l2=0.0,
    ):
        """Load ``weights`` into the template and zero the optimizer."""
        self.model.set_weights(weights)
        for v in self.optimizer.variables:
            v.assign(np.zeros(v.shape, v.dtype))
        self.optimizer.learning_rate = learning_rate
        if self.head_scale is not None and head_scale is not None:
            self.head_scale.assign(np.asarray(head_scale, np.float32).reshape(-1, 1))
        self.head_strength.assign(head_strength)
        self.l2.assign(l2)

    def steps(self, X, y, sample_weight, steps, *, batch_size=256, seed=0):
        """Run ``steps`` more optimizer steps; returns the last loss."""
        if steps <= 0:
            return float("nan")
        n = len(X)
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        loss = self.run(
            np.asarray(X, np.float32),
            np.asarray(y, np.int32),
            (sw / sw.mean()).astype(np.float32),
            np.int32(steps),
            np.int32(batch_size),
            np.int32(seed % 2**31),
        )
        return float(loss)

    def fit(
        self,
        model,
        X,
        y,
        sample_weight,
        *,
        steps,
        learning_rate,
        batch_size,
        seed,
        head_scale=None,
        head_strength=0.0,
        l2=0.0,
    ):
        """Train a copy of ``model``'s weights; write them back to ``model``."""
        self.start(
            model.get_weights(),
            learning_rate=learning_rate,
            head_scale=head_scale,
            head_strength=head_strength,
            l2=l2,
        )
        loss = self.steps(X, y, sample_weight, steps, batch_size=batch_size, seed=seed)
        model.set_weights(self.model.get_weights())
        return loss


_TRAINERS = {}


def _trainer(key, build):
    """The cached ``_Trainer`` for ``key``; ``build()`` makes its template."""
    if key not in _TRAINERS:
        _TRAINERS[key] = build()
    return _TRAINERS[key]


#: checkpoints (optimizer steps) among which ``steps="cv"`` chooses
DEFAULT_CHECKPOINTS = (0, 25, 50, 100, 200, 400)


def _ft_trainer(model, tune, cache_key):
    """Set ``model``'s trainable flags; the (cached) trainer for it."""
    probe = model.sktransfer_probe

    def set_flags(m):
        for layer in m.layers:
            layer.trainable = False
        for layer in _tuned_layers(m.sktransfer_groups, tune):
            layer.trainable = True
        m.sktransfer_head.trainable = True
        return m

    set_flags(model)
    if cache_key is None:
        return _Trainer(model, head=model.sktransfer_head)

    def build():
        template = features_model(
            model.sktransfer_source,
            model.sktransfer_cut,
            freeze_scores=model.sktransfer_freeze_scores,
        )
        template = set_flags(attach_head(template, probe))
        return _Trainer(template, head=template.sktransfer_head)

    key = (
        "ft",
        cache_key,
        model.sktransfer_cut,
        model.sktransfer_freeze_scores,
        str(tune),
        probe.kernel.shape,
    )
    return _trainer(key, build)


def _nll(proba, y, sample_weight):
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(np.average(-np.log(p), weights=sample_weight))


def select_ft_steps(
    model,
    X,
    y,
    F,
    *,
    tune="all",
    checkpoints=DEFAULT_CHECKPOINTS,
    learning_rate=1e-3,
    cv=5,
    sample_weight=None,
    batch_size=256,
    head_penalty=True,
    seed=0,
    cache_key=None,
    rule="1se",
):
    """How many fine-tuning steps the training rows support (0: none).

    Cross-validated early stopping for data too small to hold out a
    validation set: in each of ``cv`` stratified folds (the probe's own) the
    probe is re-solved on the fold's training rows (same C and block
    weighting), fine-tuned, and its held-out log-loss read at every
    checkpoint. ``rule="min"``: the lowest mean held-out loss wins (ties to
    fewer steps); ``"1se"``: the fewest steps whose mean loss exceeds the
    best by at most one (paired, across folds) standard error. Returns
    ``(steps, mean_losses)``.
    """
    probe = model.sktransfer_probe
    counts = np.bincount(y)
    n_splits = int(min(cv, counts[counts > 0].min()))
    if n_splits < 2 or not _tuned_layers(model.sktransfer_groups, tune):
        return 0, None
    trainer = _ft_trainer(model, tune, cache_key)
    base_weights = model.get_weights()[:-2]  # the head's kernel, bias last
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    fold_losses = np.zeros((n_splits, len(checkpoints)))
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(F, y)
    for fold, (train, test) in enumerate(folds):
        pr = fit_probe(
            F[train],
            y[train],
            C=probe.C,
            blocks=probe.blocks,
            block_norm=probe.block_norm,
            floor=probe.floor,
            sample_weight=sw[train],
        )
        trainer.start(
            base_weights + [pr.kernel, pr.bias],
            learning_rate=learning_rate,
            head_scale=pr.scale,
            head_strength=pr.penalty_strength if head_penalty else 0.0,
        )
        done = 0
        for j, step in enumerate(checkpoints):
            trainer.steps(
                X[train],
                y[train],
                sw[train],
                step - done,
                batch_size=batch_size,
                seed=seed + j,
            )
            done = step
            proba = keras.ops.convert_to_numpy(trainer.model(X[test], training=False))
            fold_losses[fold, j] = _nll(proba, y[test], sw[test])
    mean = fold_losses.mean(axis=0)
    best = int(np.argmin(mean))
    if rule == "1se":
        # the fewest steps within one standard error of the best: fine-tune
        # only when held-out loss clearly improves (4-row folds are noisy)
        # (paired over folds: SE of each checkpoint's excess over the best)
        diff = fold_losses - fold_losses[:, [best]]
        se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
        best = int(np.flatnonzero(mean - mean[best] <= se + 1e-12)[0])
    else:
        best = int(np.flatnonzero(mean <= mean.min() + 1e-4)[0])
    return int(checkpoints[best]), mean


def fine_tune(
    model,
    X,
    y,
    *,
    tune="all",
    sample_weight=None,
    steps="cv",
    learning_rate=1e-3,
    batch_size=256,
    head_penalty=True,
    features=None,
    checkpoints=DEFAULT_CHECKPOINTS,
    cv=5,
    rule="1se",
    seed=0,
    cache_key=None,
):
    """LP-FT: train the head and the ``tune`` base layers together.

    ``model`` comes from :func:`attach_head` (head initialised by the probe).
    With ``head_penalty`` the loss is the probe's own objective: weighted
    mean cross-entropy + |W|^2 / (2 C n) with W the head kernel in the
    probe's standardized units (kernel * scale), so with the base frozen the
    probe's solution is already optimal and fine-tuning only moves what
    helps. ``steps``: an int, or "cv" to choose among ``checkpoints`` with
    :func:`select_ft_steps` (needs ``features``, the frozen features of X
    the probe was solved on). Trains in place; returns ``(model, steps)``.
    ``cache_key`` (anything hashable that identifies the source, e.g. its
    weights' hash) lets fits share one traced training loop.
    """
    if not _tuned_layers(model.sktransfer_groups, tune):
        return model, 0
    if steps == "cv":
        if features is None:
            raise ValueError('steps="cv" needs the frozen features of X')
        steps, _ = select_ft_steps(
            model,
            X,
            y,
            features,
            tune=tune,
            checkpoints=checkpoints,
            learning_rate=learning_rate,
            cv=cv,
            sample_weight=sample_weight,
            batch_size=batch_size,
            head_penalty=head_penalty,
            seed=seed,
            cache_key=cache_key,
            rule=rule,
        )
    if steps <= 0:
        return model, 0
    probe = model.sktransfer_probe
    trainer = _ft_trainer(model, tune, cache_key)
    trainer.fit(
        model,
        X,
        y,
        sample_weight,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        head_scale=probe.scale,
        head_strength=probe.penalty_strength if head_penalty else 0.0,
    )
    return model, steps


def build_mlp(input_dim, n_classes, hidden=(128, 64), seed=0):
    """The PretrainedClassifier default MLP, seeded."""
    inputs = keras.Input((input_dim,))
    x = inputs
    for k, units in enumerate(hidden):
        x = keras.layers.Dense(
            units,
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed + k),
        )(x)
    out = keras.layers.Dense(
        n_classes,
        activation="softmax",
        kernel_initializer=keras.initializers.GlorotUniform(seed + 99),
    )(x)
    return keras.Model(inputs, out)


def train_scratch(
    X,
    y,
    *,
    hidden=(128, 64),
    steps=500,
    learning_rate=1e-3,
    l2=0.0,
    batch_size=256,
    sample_weight=None,
    seed=0,
    n_classes=None,
):
    """From-scratch MLP, ``steps`` Adam steps (full batch when n <= batch).

    ``l2`` adds ``l2 * sum |kernel|^2`` over all Dense kernels. The traced
    loop is shared by every fit of the same architecture.
    """
    n_classes = int(np.max(y)) + 1 if n_classes is None else n_classes
    model = build_mlp(X.shape[1], n_classes, hidden, seed)

    def build():
        template = build_mlp(X.shape[1], n_classes, hidden, 0)
        kernels = [layer.kernel for layer in template.layers if layer.weights]
        return _Trainer(template, kernels=kernels)

    trainer = _trainer(("scratch", X.shape[1], n_classes, tuple(hidden)), build)
    trainer.fit(
        model,
        X,
        y,
        sample_weight,
        steps=steps,
        learning_rate=learning_rate,
        batch_size=batch_size,
        seed=seed,
        l2=l2,
    )
    return model


# ------------------------------------------------------------ the recipe
def recipe_fit(
    source,
    X,
    y,
    *,
    cut="multi",
    block_norm="auto",
    tune=None,
    C="cv",
    steps="cv",
    learning_rate=1e-3,
    batch_size=256,
    head_penalty=True,
    sample_weight=None,
    seed=0,
    features=None,
    cache_key=None,
    rule="1se",
    freeze_scores=False,
):
    """The whole recipe; returns ``(model, info)``.

    ``features``: precomputed ``extract(features_model(source, cut), X)``
    (e.g. from a cache); computed here otherwise. ``cache_key``: see
    :func:`fine_tune`. ``info``: the probe, the fine-tuning steps run and
    the seconds spent in each phase.
    """
    t0 = time.perf_counter()
    finetune = bool(_tuned_layers([None] * 99, tune))
    net = features_model(source, cut, copy=finetune, freeze_scores=freeze_scores)
    F = extract(net, X) if features is None else features
    t1 = time.perf_counter()
    probe = fit_probe(
        F,
        y,
        C=C,
        blocks=net.sktransfer_blocks,
        block_norm=block_norm,
        sample_weight=sample_weight,
        random_state=seed,
    )
    model = attach_head(net, probe)
    t2 = time.perf_counter()
    n_steps = 0
    if finetune:
        model, n_steps = fine_tune(
            model,
            X,
            y,
            tune=tune,
            sample_weight=sample_weight,
            steps=steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            head_penalty=head_penalty,
            features=F,
            seed=seed,
            cache_key=cache_key,
            rule=rule,
        )
    t3 = time.perf_counter()
    info = {
        "probe": probe,
        "steps": n_steps,
        "t_features": t1 - t0,
        "t_probe": t2 - t1,
        "t_finetune": t3 - t2,
    }
    return model, info


# ------------------------------------------- numerical check of the folding
if __name__ == "__main__":  # python benchmarks/_recipe_proto.py
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _tasks

    src = _tasks.source_model("parity").model_
    for task, n_classes in (("parity", 2), ("shift", 10)):
        d = _tasks.load_task(task, 0)
        y = np.unique(d.y_target, return_inverse=True)[1]
        X = np.concatenate([d.X_target, d.X_test[:200]])
        for weighted in (False, True):
            sw = np.linspace(0.5, 2.0, len(y)) if weighted else None
            net = features_model(src, "multi", copy=False)
            F = extract(net, d.X_target)
            probe = fit_probe(F, y, blocks=net.sktransfer_blocks, sample_weight=sw)
            Z = (extract(net, X) - probe.mean) / probe.scale
            lr = _lr(probe.C, 1000, 1e-6).fit(
                (F - probe.mean) / probe.scale, y, sample_weight=sw
            )
            diff = np.abs(extract(attach_head(net, probe), X) - lr.predict_proba(Z))
            print(
                f"{task} ({n_classes} classes), sample_weight={weighted}: C={probe.C:g}"
                f" block_norm={probe.block_norm}: max |keras - sklearn| = "
                f"{diff.max():.1e} over {len(X)} rows"
            )
