"""Property-based tests: any input gives a correct fit or a clear error.

Hypothesis draws tiny datasets (2..30 rows) of tables and images, in every
dtype a user may hand over (float16/32/64, ints, bool) with labels of every
type scikit-learn accepts (ints, strings, bools, integral floats). Each
example must either fit and predict correctly (labels from ``classes_``,
probability rows summing to 1, the right shapes) or, where the data is
invalid, raise the ``ValueError`` that names that very problem and its fix
(one class: "needs samples of at least 2 classes ... Check the labels";
a wrong sample shape: both shapes and what to do). Any other exception or
message, or any error raised from inside TensorFlow or Keras, fails.

Examples are few (``max_examples`` 10-25) and derandomized so that the module
runs in about a minute on two cores and the same way on every run.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose

from sktransfer import PretrainedClassifier, TransferClassifier

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.bool_]
#: one label per class index, per label type
LABELS = {
    "int": [3, -1, 10, 0],
    "str": ["cat", "dog", "emu", "yak"],
    "bool": [False, True],
    "float": [1.0, 2.0, -4.0, 0.0],
}


def _elements(dtype):
    kind = np.dtype(dtype).kind
    if kind == "f":
        return st.floats(-100, 100, width=np.dtype(dtype).itemsize * 8)
    if kind == "b":
        return st.booleans()
    return st.integers(-50, 50)


@st.composite
def datasets(draw, sample_shape=None):
    """``(X, y, n_classes)``: a small table or image set and its labels."""
    n = draw(st.integers(2, 30))
    if sample_shape is None:
        sample_shape = draw(
            st.one_of(
                st.tuples(st.integers(1, 6)),  # a table
                st.tuples(st.integers(2, 6), st.integers(2, 6)),  # (h, w)
                st.tuples(st.integers(2, 5), st.integers(2, 5), st.integers(1, 2)),
            )
        )
    dtype = draw(st.sampled_from(DTYPES))
    X = draw(hnp.arrays(dtype, (n, *sample_shape), elements=_elements(dtype)))
    label_type = draw(st.sampled_from(sorted(LABELS)))
    names = LABELS[label_type]
    n_classes = draw(st.integers(1, min(len(names), n)))
    index = draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n))
    index[:n_classes] = range(n_classes)  # every drawn class is present
    y = np.array([names[i] for i in index])
    return X, y, n_classes


def _raised_in_tf_or_keras(exc):
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    parts = Path(last or "").parts
    return "tensorflow" in parts or "keras" in parts


def _check_clear_error(exc):
    assert type(exc).__module__.split(".")[0] in ("builtins", "sklearn"), type(exc)
    assert not _raised_in_tf_or_keras(exc), f"raised inside TF/Keras: {exc!r}"
    assert len(str(exc)) > 20 and "Traceback" not in str(exc)


def _check_fitted(clf, X, y):
    classes = np.unique(y)
    assert list(clf.classes_) == list(classes)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(classes))
    assert np.isfinite(proba).all()
    assert (proba >= 0).all()
    assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    predicted = clf.predict(X)
    assert predicted.shape == (len(X),)
    assert set(predicted.tolist()) <= set(classes.tolist())
    # the label type survives: strings stay strings, bools stay bools
    assert np.asarray(predicted).dtype.kind == np.asarray(y).dtype.kind


def _one_class_message(clf, y):
    """The message for a y of one class: the problem, the label, the fix."""
    label = np.unique(y)[0].item()
    return (
        rf"^{type(clf).__name__} needs samples of at least 2 classes, but y has "
        rf"only 1 class \({re.escape(repr(label))}\)\. Check the labels, or the "
        r"split that produced this training set\.$"
    )


def _fit_or_clear_error(clf, X, y, n_classes, expected_error=None):
    """Fit; a ValueError/TypeError is fine only when the data is invalid, and
    then its message must name that problem and the fix.

    ``expected_error`` is the regular expression of the message for invalid
    data other than a single class (checked first by ``fit``).
    """
    try:
        clf.fit(X, y)
    except (ValueError, TypeError) as exc:
        _check_clear_error(exc)
        if n_classes < 2:
            expected = _one_class_message(clf, y)
        else:
            assert expected_error is not None, f"valid data refused: {exc}"
            expected = expected_error
        assert type(exc) is ValueError, f"{type(exc).__name__}: {exc}"
        assert re.search(expected, str(exc)), (
            f"the message does not name the problem and the fix:\n{exc}\n"
            f"expected: {expected}"
        )
        return None
    assert n_classes >= 2 and expected_error is None, "invalid data accepted"
    _check_fitted(clf, X, y)
    return clf


@SETTINGS
@given(data=datasets())
def test_pretrained_classifier_fits_any_small_dataset(data):
    X, y, n_classes = data
    clf = PretrainedClassifier(
        hidden_layer_sizes=(4,), epochs=2, batch_size=8, random_state=0
    )
    _fit_or_clear_error(clf, X, y, n_classes)


@functools.lru_cache(maxsize=1)
def _source():
    """A tiny source network on 5 features (built once per process)."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)
    return PretrainedClassifier(
        hidden_layer_sizes=(8, 4), epochs=3, early_stopping=False, random_state=0
    ).fit(X, y)


@SETTINGS
@given(
    n_features=st.sampled_from([5, 5, 5, 3, 6]),
    data=st.data(),
    freeze=st.sampled_from([0, 1, 2, -1, "all"]),
)
def test_transfer_classifier_fits_any_small_dataset(n_features, data, freeze):
    X, y, n_classes = data.draw(datasets(sample_shape=(n_features,)))
    clf = TransferClassifier(
        _source(), freeze=freeze, epochs=2, batch_size=8, random_state=0
    )
    expected = None
    if n_features != 5:
        expected = (
            rf"^X has sample shape \({n_features},\), but the pretrained network "
            r"expects \(5,\)\. Reshape or resize X to the network's input "
            r"\(e\.g\. X\.reshape\(len\(X\), \*shape\)\), or change the model's "
            r"Input\.$"
        )
    _fit_or_clear_error(clf, X, y, n_classes, expected_error=expected)


@functools.lru_cache(maxsize=1)
def _fitted_pair():
    rng = np.random.RandomState(1)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = np.array(["a", "b", "c", "d"])[rng.randint(0, 4, 40)]
    transfer = TransferClassifier(
        _source(), epochs=2, early_stopping=False, random_state=0
    ).fit(X, y)
    pretrained = PretrainedClassifier(
        hidden_layer_sizes=(4,), epochs=2, early_stopping=False, random_state=0
    ).fit(X, y)
    return pretrained, transfer


@settings(SETTINGS, max_examples=25)
@given(
    which=st.integers(0, 1),
    n=st.integers(1, 30),
    sample_shape=st.sampled_from([(5,), (5,), (4,), (6,), (5, 1), (1, 5)]),
    dtype=st.sampled_from(DTYPES),
    data=st.data(),
)
def test_predict_any_batch(which, n, sample_shape, dtype, data):
    """Predicting: any batch size and dtype works, any other shape is refused."""
    clf = _fitted_pair()[which]
    X = data.draw(hnp.arrays(dtype, (n, *sample_shape), elements=_elements(dtype)))
    try:
        proba = clf.predict_proba(X)
    except (ValueError, TypeError) as exc:
        _check_clear_error(exc)
        assert sample_shape != (5,), f"valid batch refused: {exc}"
        name = type(clf).__name__
        shape = re.escape(str(sample_shape))
        if len(sample_shape) == 1:  # a table with another number of columns
            k = sample_shape[0]
            fix = (
                rf"X has {k} features, but {name} is expecting 5 features as "
                r"input\. "
            )
        else:
            fix = ""
        expected = (
            rf"^X has sample shape {shape}, but {name} was fitted on sample shape "
            rf"\(5,\)\. {fix}Pass data shaped like the training data\.$"
        )
        assert type(exc) is ValueError, f"{type(exc).__name__}: {exc}"
        assert re.search(expected, str(exc)), f"{exc}\nexpected: {expected}"
        return
    assert sample_shape == (5,), "a batch of the wrong shape was accepted"
    assert proba.shape == (n, 4)
    assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert set(clf.predict(X).tolist()) <= set(clf.classes_.tolist())


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_fits(dtype):
    """Each dtype at least once, whatever Hypothesis drew above."""
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(24, 3)) * 3).astype(dtype)
    y = np.array([0, 1, 2] * 8)
    clf = PretrainedClassifier(
        hidden_layer_sizes=(4,), epochs=1, batch_size=8, random_state=0
    )
    _check_fitted(clf.fit(X, y), X, y)
