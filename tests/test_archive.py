"""The saved-estimator format (``_archive``), function by function.

Unit tests with exact values: which parameters survive as JSON (tuples
marked, objects dropped), label arrays with their dtype, the archive's
metadata entry, and the message of every refusal of ``read_meta``. The
end-to-end save/load tests train estimators; these build one tiny
untrained Keras network at most.
"""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from sktransfer._archive import (
    META_ENTRY,
    _jsonable,
    decode_array,
    decode_params,
    encode_array,
    encode_params,
    read_meta,
    write_archive,
)

KNOWN = {"PretrainedClassifier": object, "TransferClassifier": object}


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, True),
        ("adam", True),
        (3, True),
        (1e-3, True),
        (True, True),
        ([1, "a", None], True),
        ({"beta_1": 0.9}, True),
        ((16, 8), True),  # a tuple comes back as a list: marked, then restored
        ((), True),
        ([(1, 2)], False),  # a tuple inside a list would come back as a list
        (float("nan"), False),  # NaN != NaN: it would not come back equal
        (np.int64(3), False),
        (object(), False),
        (keras.optimizers.Adam, False),
        ({1: "a"}, False),  # JSON keys are strings
    ],
    ids=repr,
)
def test_jsonable(value, expected):
    assert _jsonable(value) is expected


def test_encode_params_keeps_plain_values_and_marks_tuples():
    params = {
        "hidden_layer_sizes": (16, 8),
        "learning_rate": 0.01,
        "optimizer": "adam",
        "callbacks": None,
        "model": keras.Sequential,
        "head_hidden_layer_sizes": (),
        "random_state": np.random.RandomState(0),
    }
    encoded, dropped = encode_params(params)
    assert encoded == {
        "hidden_layer_sizes": [16, 8],
        "learning_rate": 0.01,
        "optimizer": "adam",
        "callbacks": None,
        "head_hidden_layer_sizes": [],
        "__tuples__": ["hidden_layer_sizes", "head_hidden_layer_sizes"],
    }
    assert dropped == ["model", "random_state"]
    json.dumps(encoded)  # plain JSON
    meta = {"params": json.loads(json.dumps(encoded)), "dropped_params": dropped}
    assert decode_params(meta) == {
        "hidden_layer_sizes": (16, 8),
        "learning_rate": 0.01,
        "optimizer": "adam",
        "callbacks": None,
        "head_hidden_layer_sizes": (),
        "model": None,
        "random_state": None,
    }
    assert meta["params"]["__tuples__"] == [
        "hidden_layer_sizes",
        "head_hidden_layer_sizes",
    ]


def test_decode_params_without_markers():
    assert decode_params({"params": {"epochs": 3}}) == {"epochs": 3}


@pytest.mark.parametrize(
    "values",
    [
        np.array([3, -1, 10]),
        np.array([0, 1], dtype=np.int8),
        np.array(["cat", "dog"]),
        np.array([False, True]),
        np.array([1.0, 2.5]),
    ],
    ids=lambda v: v.dtype.str,
)
def test_label_arrays_keep_their_dtype(values):
    spec = json.loads(json.dumps(encode_array(values)))
    assert spec == {"dtype": values.dtype.str, "values": values.tolist()}
    decoded = decode_array(spec)
    assert decoded.dtype == values.dtype
    assert_array_equal(decoded, values)


def test_object_label_arrays_stay_object_arrays():
    values = np.array(["a", 1, None], dtype=object)
    spec = json.loads(json.dumps(encode_array(values)))
    assert spec == {"dtype": "object", "values": ["a", 1, None]}
    decoded = decode_array(spec)
    assert decoded.dtype == object and decoded.shape == (3,)
    assert decoded.tolist() == ["a", 1, None]
    # a list of lists stays a 1-D array of lists, as the labels were
    nested = decode_array({"dtype": "object", "values": [[1, 2], [3, 4]]})
    assert nested.shape == (2,) and nested[0] == [1, 2]


@pytest.fixture
def network():
    inputs = keras.Input((3,), name="x")
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs), name="net")


def test_write_archive_adds_one_plain_json_entry(network, tmp_path):
    path = str(tmp_path / "estimator.keras")
    fitted = {"classes_": encode_array(np.array([0, 1])), "n_features_in_": 3}
    returned = write_archive(
        network,
        path,
        class_name="PretrainedClassifier",
        params={"epochs": 3},
        dropped=["model"],
        fitted=fitted,
    )
    assert returned == path
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist().count(META_ENTRY) == 1
        meta = json.loads(archive.read(META_ENTRY))
    expected = {
        "format": "sktransfer",
        "version": 1,
        "class": "PretrainedClassifier",
        "params": {"epochs": 3},
        "dropped_params": ["model"],
        "fitted": fitted,
    }
    assert meta == expected
    assert read_meta(path, KNOWN) == expected
    # still a Keras archive
    restored = keras.saving.load_model(path)
    assert [w.shape for w in restored.get_weights()] == [(3, 2), (2,)]


def _archive_with(tmp_path, network, entry):
    path = str(tmp_path / "with_entry.keras")
    network.save(path)
    if entry is not None:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(META_ENTRY, entry)
    return path


def test_read_meta_refuses_a_plain_keras_model(network, tmp_path):
    path = _archive_with(tmp_path, network, None)
    with pytest.raises(ValueError) as info:
        read_meta(path, KNOWN)
    assert str(info.value) == (
        f"{path!r} is a plain Keras model, not a saved sktransfer estimator. Load "
        "it with keras.saving.load_model, or use it as "
        "TransferClassifier(pretrained=path)."
    )


def test_read_meta_refuses_a_file_that_is_no_zip(tmp_path):
    path = tmp_path / "legacy.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=r"^'.*legacy\.h5' is a plain Keras model"):
        read_meta(str(path), KNOWN)


@pytest.mark.parametrize("entry", [b"{not json", b"\xff\xfe{}"], ids=["json", "utf8"])
def test_read_meta_refuses_a_corrupt_entry(network, tmp_path, entry):
    path = _archive_with(tmp_path, network, entry)
    with pytest.raises(ValueError) as info:
        read_meta(path, KNOWN)
    assert str(info.value) == (
        f"{path!r} has a corrupt sktransfer.json entry (not valid JSON); the file "
        "was damaged or not written by sktransfer. Re-save the estimator with "
        "estimator.save(path)."
    )


@pytest.mark.parametrize(
    "meta, shown",
    [
        ({"format": "sktransfer", "class": "Os"}, "'Os'"),
        (
            {"format": "other", "class": "PretrainedClassifier"},
            "'PretrainedClassifier'",
        ),
        ({"class": "TransferClassifier"}, "'TransferClassifier'"),
        (["format", "sktransfer"], "None"),  # JSON, but no object
        ("sktransfer", "None"),
    ],
    ids=["unknown_class", "other_format", "no_format", "a_list", "a_string"],
)
def test_read_meta_refuses_unknown_metadata(network, tmp_path, meta, shown):
    path = _archive_with(tmp_path, network, json.dumps(meta))
    with pytest.raises(ValueError) as info:
        read_meta(path, KNOWN)
    assert str(info.value) == (
        f"{path!r} holds unknown estimator metadata (class={shown}); expected one "
        "of ['PretrainedClassifier', 'TransferClassifier']."
    )
