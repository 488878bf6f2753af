"""TransferFeatures: a frozen pretrained network as a scikit-learn transformer.

The network is cut as ``TransferClassifier`` cuts it and never trained: its
output (globally pooled when spatial) is the features, so any scikit-learn
model can sit on them. Where the source has a stable identity (a file, an
in-memory network, a fitted estimator), the network is run on the process's
read-only frozen source (``_sources.frozen_source``), so no fit copies it;
with ``memory`` the features go through the same disk cache, under the same
key, as the frozen prefix of a ``TransferClassifier`` with ``freeze="all"``.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._cache import kept_signature, prefix_features
from ._cloning import SharedParamsMixin, clone_sharing
from ._docs import fill_doc
from ._keras_compat import stash, stashed, without_tensorflow
from ._network import cut_network
from ._runtime import temporary_seed
from ._sources import frozen_source, resolve_pretrained
from ._validation import check_network_input, check_source_columns, validate_X

__all__ = ["TransferFeatures"]

#: transforms of fewer rows are not written to ``memory`` (one-row calls)
MIN_CACHED_ROWS = 64


def _prefix_of(view):
    """The network up to ``view``'s output, as ``_detached`` builds a prefix.

    One input tensor, and the InputLayer among its layers (a Sequential
    view lists none), so its ``prefix_signature`` is that of the frozen
    prefix of a ``TransferClassifier(freeze="all")`` on the same cut.
    """
    return keras.Model(view.inputs[0], view.outputs[0])


def _shared_prefix(frozen, cut, input_shape):
    """The cut network on a frozen source, built once per cut.

    Kept on the frozen source (as ``plan_detached`` keeps its views), so
    fits and grid-search candidates sharing a source share the prefix and
    hash its weights once (``kept_signature``). Only the package holds the
    frozen source: its layers are never trainable and never trained.
    """
    kept = stashed(frozen.model, "features")
    if kept is None:
        kept = {}
        stash(frozen.model, "features", kept)
    key = repr(cut)
    if key not in kept:
        kept[key] = _prefix_of(cut_network(frozen.model, cut, input_shape))
    prefix = kept[key]
    check_network_input(prefix, input_shape, "the pretrained network")
    return prefix


def _pool(features):
    """Global average pooling of a spatial output, as the new head does.

    ``(n, h, w, c)`` and ``(n, steps, c)`` are averaged over their spatial
    axes (``GlobalAveragePooling2D`` / ``1D``); any other rank above 2 is
    flattened.
    """
    if features.ndim == 4:
        features = features.mean(axis=(1, 2), dtype=np.float32)
    elif features.ndim == 3:
        features = features.mean(axis=1, dtype=np.float32)
    elif features.ndim != 2:
        features = features.reshape(len(features), -1)
    return np.ascontiguousarray(features, dtype=np.float32)


def _n_outputs(shape):
    """Width of the pooled features of an output of ``shape`` (None: unknown)."""
    if len(shape) in (2, 3, 4):
        return shape[-1]
    if any(d is None for d in shape[1:]):
        return None
    return int(np.prod(shape[1:]))


@fill_doc
class TransferFeatures(
    SharedParamsMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """A frozen pretrained Keras network as a scikit-learn transformer.

    The network is cut below its old head as in :class:`TransferClassifier`
    and never trained: ``transform`` returns its output, globally pooled
    when spatial, as a float32 table. Any scikit-learn model can then sit
    on a Keras network's features; the linear probe is
    ``make_pipeline(TransferFeatures(source), StandardScaler(),
    LogisticRegression())``. The user's model and file never change, and
    fitting copies no network where the source has a stable identity (a
    file, a Keras model or a fitted estimator): the package's read-only
    frozen copy of it computes the features.

    Parameters
    ----------
    {pretrained_parameters}
    memory : None, str or joblib.Memory, default=None
        Keep the features on disk (as ``Pipeline(memory=...)`` does), keyed
        by the cut network's weights and architecture and by the input rows,
        so grid-search candidates and folds sharing a cut reuse them, across
        processes too. The entries are the ones a
        ``TransferClassifier(freeze="all", memory=...)`` on the same source,
        cut and rows stores for its frozen base (when it caches the whole
        base: no Dropout or noise layer in it), so either estimator reuses
        the other's. Calls on fewer than 64 rows are not cached.
    {loading_parameters}

    Attributes
    ----------
    n_features_in_ : int
        Number of features (for images: the height) seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame with string column names.
    input_shape_ : tuple of int
        Shape of one sample seen in fit.
    n_features_out_ : int
        Number of features ``transform`` returns.
    feature_cut_ : str
        The layer whose output (pooled when spatial) is the features.

    See Also
    --------
    TransferClassifier : Fine-tune the network with a new head instead.
    PretrainedClassifier : Train the source network.

    Notes
    -----
    ``clone`` shares ``pretrained`` between clones instead of deep-copying
    it (a fitted source estimator would come back unfitted, and copying a
    large network per grid-search candidate costs seconds); no fit changes
    it. A callable ``pretrained`` is called once per fit, under a fixed
    seed, so a network it initialises randomly is the same at every fit.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sktransfer import PretrainedClassifier, TransferFeatures
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> source = PretrainedClassifier(hidden_layer_sizes=(32, 16), epochs=3,
    ...                               random_state=0).fit(X[y < 5], y[y < 5])
    >>> X_new, y_new = X[y >= 5], y[y >= 5]
    >>> features = TransferFeatures(source).fit(X_new)
    >>> features.transform(X_new).shape  # 32 + 16 hidden, 5 scores, 5 probabilities
    (896, 58)
    >>> penultimate = TransferFeatures(source, cut="penultimate").fit(X_new)
    >>> penultimate.feature_cut_ == source.model_.layers[-2].name
    True
    >>> features.get_feature_names_out()[:2].tolist()
    ['transferfeatures0', 'transferfeatures1']
    >>> probe = make_pipeline(TransferFeatures(source), StandardScaler(),
    ...                       LogisticRegression())
    >>> probe.fit(X_new[:600], y_new[:600]).score(X_new[600:], y_new[600:]) > 0.5
    True
    """

    _parameter_constraints: dict = {
        "pretrained": "no_validation",  # resolve_pretrained says what it takes
        "cut": [StrOptions({"auto"}), str, numbers.Integral, None],
        "memory": [None, str, HasMethods(["cache"])],
        "allow_unsafe": ["boolean"],
        "custom_objects": [dict, None],
    }

    def __init__(
        self,
        pretrained=None,
        *,
        cut="auto",
        memory=None,
        allow_unsafe=False,
        custom_objects=None,
    ):
        self.pretrained = pretrained
        self.cut = cut
        self.memory = memory
        self.allow_unsafe = allow_unsafe
        self.custom_objects = custom_objects

    _shared_params = ("pretrained",)

    def __sklearn_clone__(self):
        """Clone as scikit-learn does, but share the read-only source.

        ``clone`` would deep-copy a Keras model (seconds for a large network,
        per candidate and fold) and would return a fitted source estimator
        unfitted. No fit changes ``pretrained``, so clones share it.
        """
        return clone_sharing(self, self._shared_params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    @property
    def _n_features_out(self):
        # what ClassNamePrefixFeaturesOutMixin's get_feature_names_out reads
        return self.n_features_out_

    def fit(self, X, y=None):
        """Cut the pretrained network for samples shaped like X.

        No feature is computed here and nothing is trained: ``fit`` checks
        the parameters and X, resolves ``pretrained`` and cuts it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Samples shaped as the network's input: a table, or image arrays.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._validate_params()
        if self.pretrained is None:
            raise ValueError(
                "TransferFeatures needs pretrained=: a .keras/.h5 file, a "
                "keras.Model, a fitted estimator or a callable returning a model."
            )
        X = validate_X(self, X, reset=True)
        check_source_columns(self)
        input_shape = tuple(int(d) for d in X.shape[1:])
        with without_tensorflow():
            prefix = self._cut(input_shape)
        width = _n_outputs(tuple(prefix.outputs[0].shape))
        if width is None:  # an unknown size to flatten: run one row
            width = _pool(prefix_features(prefix, X[:1])).shape[1]
        self.input_shape_ = input_shape
        self.n_features_out_ = int(width)
        self.feature_cut_ = prefix.layers[-1].name
        self._prefix = prefix
        return self

    def _cut(self, input_shape):
        """The cut network for ``input_shape``.

        On the frozen source where there is one; otherwise (a callable, a
        network without a known input) on a private copy, kept here alone.
        """
        load = dict(allow_unsafe=self.allow_unsafe, custom_objects=self.custom_objects)
        frozen = frozen_source(self.pretrained, **load)
        if frozen is not None:
            return _shared_prefix(frozen, self.cut, input_shape)
        with temporary_seed(0):
            source = resolve_pretrained(self.pretrained, **load)
        view = cut_network(source, self.cut, input_shape)
        check_network_input(view, input_shape, "the pretrained network")
        return _prefix_of(view)

    def transform(self, X):
        """The network's features for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Samples shaped like the ones seen in fit.

        Returns
        -------
        features : ndarray of shape (n_samples, `n_features_out_`), dtype float32
            The cut network's inference-mode output, globally average-pooled
            when spatial.
        """
        check_is_fitted(self, "n_features_out_")
        X = validate_X(self, X, reset=False, input_shape=self.input_shape_)
        if self.memory is None or len(X) < MIN_CACHED_ROWS:
            return _pool(prefix_features(self._prefix, X))
        signature = kept_signature(self._prefix)  # kept on the network, not here
        return _pool(prefix_features(self._prefix, X, self.memory, signature))
