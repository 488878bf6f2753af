"""Freeze-spec parsing and application on real (unfitted) Keras networks.

``tests/test_transfer.py`` checks freezing end to end through fits; these
are the fast unit checks of ``sktransfer._freeze``: how layers group, every
valid and invalid depth for bases of any size, and that freezing can be
undone (the warm-up phase freezes the whole base, then ``freeze`` applies).
"""

from __future__ import annotations

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sktransfer._freeze import (
    FreezeGroup,
    apply_freeze,
    freezable_groups,
    frozen_and_trained,
    n_frozen_from_spec,
)

#: real layers to build groups of any size from (never built or called)
_LAYERS = [keras.layers.Dense(1, name=f"layer_{i}") for i in range(40)]


def _groups(n):
    return [FreezeGroup(layer) for layer in _LAYERS[:n]]


def _network():
    """BN first (no weighted layer before it), Conv+BN, a nested model with
    Dense+LayerNorm, then a Dense; weightless layers in between."""
    inner = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(6, name="inner_dense"),
            keras.layers.LayerNormalization(name="inner_ln"),
            keras.layers.Activation("relu", name="inner_relu"),
        ],
        name="inner",
    )
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.BatchNormalization(name="bn_input")(inputs)
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(x)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, name="dense")(x)
    x = inner(x)
    outputs = keras.layers.Dense(3, name="last")(x)
    return keras.Model(inputs, outputs)


def test_groups_follow_the_documented_rule():
    groups = freezable_groups(_network())
    assert [[layer.name for layer in g.layers] for g in groups] == [
        ["bn_input"],  # nothing weighted before it: stands alone
        ["conv", "conv_bn"],
        ["dense"],
        ["inner_dense", "inner_ln"],  # nested model flattened
        ["last"],
    ]
    assert [g.name for g in groups] == [
        "bn_input",
        "conv",
        "dense",
        "inner_dense",
        "last",
    ]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 40), freeze=st.integers(-60, 60))
def test_integer_depths(n, freeze):
    groups = _groups(n)
    if -n <= freeze <= n:
        expected = freeze if freeze >= 0 else n + freeze
        assert n_frozen_from_spec(freeze, groups) == expected
    else:
        with pytest.raises(ValueError, match=rf"0\.\.{n}\b.*-{n}\.\.-1"):
            n_frozen_from_spec(freeze, groups)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_all_freezes_every_group(n):
    assert n_frozen_from_spec("all", _groups(n)) == n


@pytest.mark.parametrize(
    "freeze", ["none", "All", "1", "", True, False, 1.0, None, [1]]
)
def test_invalid_specs_are_value_errors_naming_the_choices(freeze):
    groups = _groups(3)
    with pytest.raises(ValueError) as info:
        n_frozen_from_spec(freeze, groups)
    message = str(info.value)
    assert "'all'" in message and "0..3" in message and "layer_0" in message


def test_apply_freeze_can_be_undone():
    """Freeze everything (warm-up), then apply a smaller depth: the layers
    past it must be trainable again, nested ones included."""
    model = _network()
    groups = freezable_groups(model)
    apply_freeze(model, groups, len(groups))
    assert not model.trainable_weights
    apply_freeze(model, groups, 2)
    frozen = {layer.name for g in groups[:2] for layer in g.layers}
    for g in groups:
        for layer in g.layers:
            assert layer.trainable == (layer.name not in frozen), layer.name
    trainable = {id(w) for w in model.trainable_weights}
    expected = {
        id(w) for g in groups[2:] for layer in g.layers for w in layer.trainable_weights
    }
    assert trainable == expected and expected
    apply_freeze(model, groups, 0)
    assert len(model.trainable_weights) == sum(
        len(layer.trainable_weights) for g in groups for layer in g.layers
    )


def test_apply_freeze_unfreezes_a_base_frozen_by_its_author():
    model = _network()
    model.get_layer("inner").trainable = False
    model.get_layer("conv").trainable = False
    groups = freezable_groups(model)
    apply_freeze(model, groups, 0)
    # every layer trains again, but BatchNormalization never does
    assert all(
        layer.trainable != isinstance(layer, keras.layers.BatchNormalization)
        for g in groups
        for layer in g.layers
    )


# ---------------------------------------------------- surgical train_layers
@pytest.mark.parametrize(
    "train_layers, expected",
    [
        (None, (3, None)),  # freeze=3 decides
        (0, (0, (0,))),
        (-1, (4, (4,))),
        ("layer_2", (2, (2,))),
        ([3, "layer_1", -4], (1, (1, 3))),  # sorted, duplicates merged
        ((4, 0), (0, (0, 4))),
    ],
)
def test_frozen_and_trained(train_layers, expected):
    freeze = 3 if train_layers is None else "all"
    assert frozen_and_trained(freeze, train_layers, _groups(5)) == expected


@pytest.mark.parametrize(
    "freeze, train_layers, match",
    [
        (0, 1, r"freeze=0 and train_layers=1 both say what trains: set one"),
        ("all", 5, r"index 5 is out of range: use 0\.\.4 .* -5\.\.-1"),
        ("all", -6, r"index -6 is out of range"),
        ("all", "nope", r"'nope', which is not a freezable layer.*'layer_0'"),
        ("all", [], r"trains no layer"),
        ("all", [True], r"indices or names, got bool True"),
    ],
)
def test_bad_train_layers(freeze, train_layers, match):
    with pytest.raises(ValueError, match=match):
        frozen_and_trained(freeze, train_layers, _groups(5))


def test_apply_freeze_trains_only_the_chosen_groups():
    model = _network()
    groups = freezable_groups(model)
    apply_freeze(model, groups, 1, trained=(1, 3))
    for index, group in enumerate(groups):
        for layer in group.layers:
            trains = index in (1, 3)
            if isinstance(layer, keras.layers.BatchNormalization):
                trains = False  # inference mode at every depth
            assert layer.trainable == trains, layer.name
    # the warm-up's whole-base freeze ignores the surgical choice
    apply_freeze(model, groups, len(groups), trained=(1, 3))
    assert not model.trainable_weights
