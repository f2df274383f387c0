"""The search space of :func:`realax.train.sweep`: checks, grid and random configurations.

A space maps a setting's name to a list of values (grid search; random search picks among
them) or, for random search, a distribution: ``("uniform", low, high)``,
``("log_uniform", low, high)`` or ``("choice", [values])``. Traced names (a trainer's
``sweepable()``) take numbers; shape-changing names (``shape_settings()``) take a list of
values, one compiled program per value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._suggest import did_you_mean

__all__ = ["DISTRIBUTIONS", "Space", "check_space", "configurations", "group_by_shape"]

#: the distribution specs of random search
DISTRIBUTIONS = ("uniform", "log_uniform", "choice")

_OWNER = "sweep"


class Space:
    """A checked space: ``traced`` and ``shape`` names, each with a list or a distribution."""

    def __init__(self, specs: dict[str, Any], traced: list[str], shape: list[str]):
        self.specs, self.traced, self.shape = specs, traced, shape


def _is_number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int | float | np.integer | np.floating)


def _check_distribution(name: str, spec: tuple, method: str, is_shape: bool) -> tuple:
    kind = spec[0] if spec else None
    if kind not in DISTRIBUTIONS:
        raise ValueError(
            f"{_OWNER}: space[{name!r}] = {spec!r} is not a distribution; use a list of values "
            f"or one of ('uniform', low, high), ('log_uniform', low, high), ('choice', [...])"
        )
    if kind == "choice":
        if len(spec) != 2 or not isinstance(spec[1], Sequence) or not spec[1]:
            raise ValueError(
                f"{_OWNER}: space[{name!r}] = {spec!r}: use ('choice', [v1, v2, ...]) "
                "with at least one value"
            )
        return spec
    if is_shape:
        raise ValueError(
            f"{_OWNER}: {name!r} changes array shapes and needs one compiled program per value, "
            f"so it cannot be drawn from a continuous {kind!r} distribution; give a list of "
            f"values, e.g. space[{name!r}] = [4, 8]"
        )
    if method != "random":
        raise ValueError(
            f"{_OWNER}: space[{name!r}] is a {kind!r} distribution, which only random search "
            f"can draw from; pass method='random' and num_samples=..., or a list of values"
        )
    if len(spec) != 3 or not all(_is_number(v) for v in spec[1:]) or not spec[1] < spec[2]:
        raise ValueError(
            f"{_OWNER}: space[{name!r}] = {spec!r}: use ({kind!r}, low, high) with numbers "
            "low < high"
        )
    if kind == "log_uniform" and spec[1] <= 0:
        raise ValueError(f"{_OWNER}: space[{name!r}] = {spec!r}: log_uniform needs 0 < low < high")
    return spec


def _check_values(name: str, values: list, is_shape: bool, shape_like: Any) -> list:
    if not values:
        raise ValueError(
            f"{_OWNER}: space[{name!r}] is empty, so the grid has no configuration; give at "
            "least one value"
        )
    if is_shape:
        for v in values:
            if isinstance(shape_like, int) and (isinstance(v, bool) or not isinstance(v, int)):
                raise TypeError(
                    f"{_OWNER}: {name!r} takes integers like the trainer's {shape_like!r} "
                    f"(got {v!r} of type {type(v).__name__})"
                )
        return values
    for v in values:
        if not _is_number(v) or not math.isfinite(float(v)):
            raise TypeError(
                f"{_OWNER}: {name!r} is a traced float setting; its values must be finite "
                f"numbers (got {v!r} of type {type(v).__name__})"
            )
    return [float(v) for v in values]


def check_space(
    space: Any, sweepable: Mapping[str, float], shape_settings: Mapping[str, Any], method: str
) -> Space:
    """The space checked against a trainer's settings, or an error naming the entry."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            f"{_OWNER}: space must be a non-empty dict name -> values (got {space!r}); e.g. "
            "space={'learning_rate': [1e-4, 3e-4]}"
        )
    specs: dict[str, Any] = {}
    traced, shape = [], []
    for name, spec in space.items():
        if name in sweepable:
            traced.append(name)
        elif name in shape_settings:
            shape.append(name)
        else:
            hint = did_you_mean(str(name), [*sweepable, *shape_settings])
            raise ValueError(
                f"{_OWNER}: unknown setting {name!r}.{hint} Traced: {sorted(sweepable)}; "
                f"shape-changing: {sorted(shape_settings)}"
            )
        is_shape = name in shape_settings
        if name == "n_devices":
            raise ValueError(
                f"{_OWNER}: n_devices cannot be swept; pass sweep(..., n_devices=...) to split "
                "the members over devices"
            )
        if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
            specs[name] = _check_distribution(name, spec, method, is_shape)
            if spec[0] == "choice":
                values = _check_values(name, list(spec[1]), is_shape, shape_settings.get(name))
                specs[name] = ("choice", values)
        elif isinstance(spec, Sequence) and not isinstance(spec, str):
            specs[name] = _check_values(name, list(spec), is_shape, shape_settings.get(name))
        else:
            raise TypeError(
                f"{_OWNER}: space[{name!r}] must be a list of values or a distribution tuple "
                f"(got {type(spec).__name__} {spec!r}); e.g. [{spec!r}]"
            )
    return Space(specs, traced, shape)


def configurations(space: Space, method: str, num_samples: int | None, seed: int) -> list[dict]:
    """The configurations: the grid's product (``num_samples`` must be None), or
    ``num_samples`` random draws (numpy's generator seeded from the sweep key)."""
    names = list(space.specs)
    if method == "grid":
        if num_samples is not None:
            raise ValueError(
                f"{_OWNER}: num_samples is for method='random' (got num_samples={num_samples} "
                "with method='grid'); drop it or pass method='random'"
            )
        return [dict(zip(names, vals, strict=True)) for vals in itertools.product(
            *(space.specs[n] for n in names)
        )]  # fmt: skip
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(
            f"{_OWNER}: method='random' needs num_samples, a positive int (got "
            f"{num_samples!r}); e.g. num_samples=16"
        )
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_samples):
        config = {}
        for name in names:
            spec = space.specs[name]
            if isinstance(spec, list) or spec[0] == "choice":
                values = spec if isinstance(spec, list) else spec[1]
                config[name] = values[int(rng.integers(len(values)))]
            elif spec[0] == "uniform":
                config[name] = float(rng.uniform(spec[1], spec[2]))
            else:
                config[name] = float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))
        out.append(config)
    return out


def group_by_shape(configs: list[dict], shape_names: list[str]) -> dict[tuple, list[int]]:
    """Indices of the configurations by their shape-changing values (first-seen order)."""
    groups: dict[tuple, list[int]] = {}
    for i, config in enumerate(configs):
        key = tuple((name, config[name]) for name in shape_names)
        try:
            hash(key)
        except TypeError:
            raise TypeError(
                f"{_OWNER}: the shape-changing values {dict(key)} cannot be grouped (not "
                "hashable); use tuples instead of lists, e.g. hidden_dims=[(32,), (64,)]"
            ) from None
        groups.setdefault(key, []).append(i)
    return groups
