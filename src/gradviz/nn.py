"""A tiny neural-network library on :class:`gradviz.Value`, as in micrograd.

``Neuron``, ``Layer`` and ``MLP`` hold their weights and biases as labelled
leaf Values, so a picture or a checker report names them (``L0.N1.w2``).
Weights are drawn from ``random.Random(seed)``, so the same seed gives the
same network, and the same picture, on every run.
"""

from __future__ import annotations

import random
from typing import Sequence

from .engine.value import Value

__all__ = ["Module", "Neuron", "Layer", "MLP"]

_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


class Module:
    """Base class: anything with parameters."""

    def parameters(self) -> list[Value]:
        """Return the trainable leaf Values, in a fixed order."""
        return []

    def zero_grad(self) -> None:
        """Set the grad of every parameter to 0.0."""
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """One neuron: ``act(sum(w_i * x_i) + b)``.

    Args:
        nin: number of inputs.
        activation: 'tanh' (the lecture's), 'relu' (micrograd's), 'sigmoid'
            or 'linear'.
        rng: source of the initial weights, uniform in [-1, 1].
        name: label prefix for the parameters, e.g. 'L0.N1'.

    Raises:
        ValueError: if ``activation`` is unknown or ``nin`` < 1.
    """

    def __init__(self, nin: int, activation: str = "tanh", *, rng: random.Random | None = None, name: str = "N") -> None:
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(_ACTIVATIONS)}, not {activation!r}")
        if nin < 1:
            raise ValueError(f"a neuron needs at least one input, not {nin}")
        rng = rng or random.Random(0)
        self.w = [Value(rng.uniform(-1, 1), label=f"{name}.w{i}") for i in range(nin)]
        self.b = Value(rng.uniform(-1, 1), label=f"{name}.b")
        self.activation = activation

    def __call__(self, x: Sequence[Value | float]) -> Value:
        """Return ``act(w . x + b)`` as a Value.

        Raises:
            ValueError: if ``x`` does not have one entry per weight.
        """
        if len(x) != len(self.w):
            raise ValueError(f"this neuron takes {len(self.w)} inputs, got {len(x)}")
        act = self.b
        for wi, xi in zip(self.w, x):
            act = act + wi * xi
        if self.activation == "linear":
            return act
        return getattr(act, self.activation)()

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"Neuron({len(self.w)}, {self.activation!r})"


class Layer(Module):
    """``nout`` neurons that each see the same ``nin`` inputs."""

    def __init__(self, nin: int, nout: int, activation: str = "tanh", *, rng: random.Random | None = None, name: str = "L") -> None:
        rng = rng or random.Random(0)
        self.neurons = [Neuron(nin, activation, rng=rng, name=f"{name}.N{j}") for j in range(nout)]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer([{', '.join(map(repr, self.neurons))}])"


class MLP(Module):
    """A multi-layer perceptron: ``MLP(3, [4, 4, 1])`` has 3 inputs and 1 output.

    Args:
        nin: number of inputs.
        nouts: the width of each layer.
        activation: the hidden layers' activation; the last layer is linear
            when ``linear_output`` is true (micrograd's choice), else the same.
        seed: seed of the weights' random initialisation.
    """

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "tanh", *, linear_output: bool = False, seed: int = 0) -> None:
        rng = random.Random(seed)
        sizes = [nin, *nouts]
        self.layers = [
            Layer(
                sizes[i],
                sizes[i + 1],
                "linear" if linear_output and i == len(nouts) - 1 else activation,
                rng=rng,
                name=f"L{i}",
            )
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        for layer in self.layers:
            out = layer(x)
            x = [out] if isinstance(out, Value) else out  # a layer of width 1 feeds the next one a list
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP([{', '.join(map(repr, self.layers))}])"
