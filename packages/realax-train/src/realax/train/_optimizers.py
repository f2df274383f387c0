"""OptaxTrainer's optimisers: optax aliases by name, and the traced hyperparameters (which
optimiser numbers can be traced; the ``optax.inject_hyperparams`` optimiser reading them)."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import optax

from ._suggest import did_you_mean

__all__ = [
    "available_optimizers",
    "build_optimizer",
    "check_learning_rate",
    "optimizer_numbers",
    "traced_optimizer",
]


def available_optimizers() -> list[str]:
    """Names of optax aliases accepted as ``optimizer`` (functions taking ``learning_rate``)."""
    names = []
    for name in dir(optax):
        if name.startswith("_"):
            continue
        fn = getattr(optax, name)
        if not inspect.isfunction(fn):
            continue
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            continue
        if params and params[0] == "learning_rate":
            names.append(name)
    return sorted(names)


def build_optimizer(optimizer: Any, learning_rate: Any, opt_kws: dict) -> Any:
    if isinstance(optimizer, str):
        names = available_optimizers()
        if optimizer not in names:
            raise ValueError(
                f"unknown optimizer {optimizer!r}.{did_you_mean(optimizer, names)} Pass an "
                "optax alias name (see realax.train.available_optimizers()) or an "
                "optax.GradientTransformation."
            )
        try:
            return getattr(optax, optimizer)(learning_rate=learning_rate, **opt_kws)
        except TypeError as e:
            raise TypeError(
                f"opt_kws={opt_kws} do not fit optax.{optimizer} ({e}); see help(optax."
                f"{optimizer})."
            ) from e
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None)):
        if opt_kws:
            raise ValueError(
                f"opt_kws only apply when optimizer is a name (got opt_kws={opt_kws} with an "
                "optax transformation); pass them when building the transformation instead."
            )
        return optimizer
    raise TypeError(
        f"optimizer must be an optax alias name or an optax.GradientTransformation (got "
        f"{type(optimizer).__name__}); e.g. optimizer='adamw'."
    )


def check_learning_rate(learning_rate: Any) -> Any:
    if callable(learning_rate):
        return learning_rate
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, numbers.Real)
        or not float(learning_rate) > 0
    ):
        raise ValueError(
            f"learning_rate must be a float > 0 or an optax schedule (got "
            f"learning_rate={learning_rate!r}); e.g. learning_rate=1e-3."
        )
    return learning_rate


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _alias_params(name: str) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(getattr(optax, name)).parameters)


def optimizer_numbers(optimizer: Any, learning_rate: Any, opt_kws: Mapping) -> dict[str, float]:
    """The numeric arguments of an optax alias (``optimizer`` a name) with their values in
    this configuration: ``learning_rate`` unless it is a schedule, the alias's float defaults
    (``b1``, ``eps``, ...) and the numeric ``opt_kws``. ``{}`` for a given transformation."""
    if not isinstance(optimizer, str):
        return {}
    values = {k: p.default for k, p in _alias_params(optimizer).items() if p.default is not p.empty}
    values.update(opt_kws)
    values["learning_rate"] = learning_rate
    return {k: float(v) for k, v in values.items() if _is_number(v)}


def traced_optimizer(
    optimizer: str, learning_rate: Any, opt_kws: Mapping, names: Sequence[str]
) -> optax.GradientTransformation:
    """``optax.<optimizer>(learning_rate, **opt_kws)`` whose arguments ``names`` are
    hyperparameters held in the optimiser state (``optax.inject_hyperparams``); every other
    argument stays a static constant, so the update is the untraced one with those values."""
    static = tuple(k for k in _alias_params(optimizer) if k not in names)
    build = optax.inject_hyperparams(getattr(optax, optimizer), static_args=static)
    return build(learning_rate=learning_rate, **opt_kws)
