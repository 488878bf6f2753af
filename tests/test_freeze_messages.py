"""The whole text of every ``freeze`` refusal (``_freeze.n_frozen_from_spec``).

``tests/test_freeze.py`` checks which depths are valid and that a refusal
names the choices; these pin each message word for word, including how a
long list of layers is shortened (the first six, "...", the last five), so
that a regression in the hint a user reads fails a test. Only layer
objects are built; no network runs.
"""

from __future__ import annotations

import keras
import pytest

from sktransfer._freeze import FreezeGroup, n_frozen_from_spec

_LAYERS = [keras.layers.Dense(1, name=f"layer_{i}") for i in range(20)]


def _groups(n):
    return [FreezeGroup(layer) for layer in _LAYERS[:n]]


def _where(names):
    return f"The base has {len(names)} freezable layers: {names}."


def _refusal(freeze, n):
    with pytest.raises(ValueError) as info:
        n_frozen_from_spec(freeze, _groups(n))
    return str(info.value)


@pytest.mark.parametrize("n", [1, 11, 12])
def test_up_to_twelve_layers_are_all_named(n):
    names = [f"layer_{i}" for i in range(n)]
    assert _refusal(n + 1, n).endswith(_where(names))


@pytest.mark.parametrize("n", [13, 20])
def test_a_longer_base_shows_the_first_six_and_the_last_five(n):
    names = [f"layer_{i}" for i in range(n)]
    shown = names[:6] + ["..."] + names[-5:]
    message = _refusal(n + 1, n)
    assert message.endswith(f"The base has {n} freezable layers: {shown}.")
    assert "layer_6'" not in message and f"layer_{n - 6}'" not in message


def test_unknown_string():
    assert _refusal("none", 3) == (
        "freeze='none' is not understood: use 'all', 0 (fine-tune everything), "
        "k in 0..3 to freeze the first k layers, or -k in -3..-1 to train only "
        "the last k. " + _where(["layer_0", "layer_1", "layer_2"])
    )


@pytest.mark.parametrize("freeze", [4, -4, 100])
def test_out_of_range(freeze):
    assert _refusal(freeze, 3) == (
        f"freeze={freeze} is out of range: valid depths are 0..3 (freeze the first "
        "k) and -3..-1 (train only the last k), or 'all'. "
        + _where(["layer_0", "layer_1", "layer_2"])
    )


@pytest.mark.parametrize(
    "freeze, shown", [(1.5, "float 1.5"), (True, "bool True"), (None, "NoneType None")]
)
def test_not_an_int_names_the_type_given(freeze, shown):
    assert _refusal(freeze, 2) == (
        f"freeze must be an int or 'all', got {shown}: use 'all', k in 0..2 or -k "
        "in -2..-1. " + _where(["layer_0", "layer_1"])
    )
