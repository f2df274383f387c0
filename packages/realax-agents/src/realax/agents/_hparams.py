"""Traced hyperparameters of an agent: numbers of its config carried as arrays.

An agent's static config stays as it is. An agent created with ``hparams={name: value}``
carries those config numbers as float32 scalars in its ``hparams`` pytree field and its
update reads them there (:func:`value`); the optimiser's ``learning_rate`` /
``max_grad_norm`` are then injected hyperparameters (``optax.inject_hyperparams``) whose
values :func:`with_hparams` writes into the optimiser state, so a value changed between two
updates (a sweep member, PBT) takes effect at the next update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._train_state import TrainState

__all__ = ["OPTIMIZER_HPARAMS", "check_hparams", "value", "with_hparams"]

#: the hyperparameters an agent's optimiser takes as injected (traced) values
OPTIMIZER_HPARAMS = ("learning_rate", "max_grad_norm")


def check_hparams(
    owner: str, hparams: Mapping[str, Any] | None, traceable: Sequence[str], config: Any
) -> dict[str, jax.Array]:
    """``hparams`` as float32 scalars, every name a traceable config number, or an error."""
    if hparams is None:
        return {}
    if not isinstance(hparams, Mapping):
        raise TypeError(
            f"{owner}.create: hparams must be a dict name -> value (got {type(hparams).__name__})"
        )
    out = {}
    for name, v in hparams.items():
        if name not in traceable or getattr(config, name, None) is None:
            usable = [n for n in traceable if getattr(config, n, None) is not None]
            raise ValueError(
                f"{owner}.create: hparams names config numbers to trace; {name!r} is not one "
                f"(traceable here: {usable})"
            )
        out[name] = jnp.asarray(v, jnp.float32)
    return out


def value(agent: Any, name: str) -> Any:
    """The traced value of config number ``name`` if the agent carries it, else the config's."""
    hparams = getattr(agent, "hparams", None) or {}
    return hparams[name] if name in hparams else getattr(agent.config, name)


def _is_injected(x: Any) -> bool:
    return isinstance(x, optax.InjectStatefulHyperparamsState)


def _set_injected(opt_state: Any, values: Mapping[str, Any]) -> Any:
    def put(x: Any) -> Any:
        if not _is_injected(x):
            return x
        hyper = dict(x.hyperparams)
        for name in OPTIMIZER_HPARAMS:
            if name in values and name in hyper:
                hyper[name] = jnp.asarray(values[name], jnp.asarray(hyper[name]).dtype)
        return x._replace(hyperparams=hyper)

    return jax.tree.map(put, opt_state, is_leaf=_is_injected)


def with_hparams(agent: Any, values: Mapping[str, Any]) -> Any:
    """``agent`` with new values of the hyperparameters it traces (``agent.hparams``); the
    optimiser hyperparameters among them are written into every `TrainState`'s optimiser
    state. Names the agent does not trace are ignored."""
    hparams = dict(getattr(agent, "hparams", None) or {})
    values = {k: v for k, v in values.items() if k in hparams}
    if not values:
        return agent
    hparams.update({k: jnp.asarray(v, jnp.float32) for k, v in values.items()})
    changes: dict[str, Any] = {"hparams": hparams}
    if any(name in values for name in OPTIMIZER_HPARAMS):
        for field in agent.__dataclass_fields__:
            model = getattr(agent, field)
            if isinstance(model, TrainState):
                opt_state = _set_injected(model.opt_state, values)
                changes[field] = model.replace(opt_state=opt_state)
    return agent.replace(**changes)
