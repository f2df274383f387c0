"""Traced ES settings that live in the strategy's state, not in its ``es_params``.

Several evosax 0.3 strategies (``Open_ES``, ``ARS``, ``SimpleGA``, ``HillClimbing``, ...) take
their search width as ``std_schedule`` and their step as ``optimizer``, two Python objects
given to the constructor: nothing of them is in ``es_params``, so ``realax.train.sweep`` and
``PBT`` could not vary them. Two traced names reach them through the state instead:

* ``sigma``: scales the strategy's ``std_schedule``. Before each ``ask`` the state's ``std``
  (what the schedule wrote) becomes ``sigma * std / std_schedule(0)``; with a constant schedule
  (the default, and ``realax evolve --sigma``) that is exactly ``sigma``, bit for bit the run
  built with ``std_schedule=optax.constant_schedule(sigma)``. The stored state keeps the
  schedule's value, so a checkpoint does not depend on ``sigma``.
* ``learning_rate``: the optimizer's learning rate, when the optimizer was built with
  ``optax.inject_hyperparams`` (``optax.inject_hyperparams(optax.adam)(learning_rate=0.05)``,
  which ``realax evolve --lr`` uses): its state carries the rate, and the traced value is
  written there before each ``ask``. An optimizer whose state carries no rate offers no
  ``learning_rate`` (``sweepable()`` says what can be traced).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

__all__ = ["STATE_NAMES", "apply_state_hparams", "state_sweepable"]

#: the traced names this module handles (never passed to ``es_params``)
STATE_NAMES = ("sigma", "learning_rate")


def _optimizer_rate(strategy: Any, num_dims: int) -> float | None:
    """The learning rate an ``inject_hyperparams`` optimizer of ``strategy`` carries, or None."""
    optimizer = getattr(strategy, "optimizer", None)
    if optimizer is None:
        return None
    try:
        opt_state = optimizer.init(jnp.zeros(num_dims))
    except Exception:  # an optimizer that cannot init on a flat vector: nothing to trace
        return None
    hyper = getattr(opt_state, "hyperparams", None)
    if not isinstance(hyper, dict) or "learning_rate" not in hyper:
        return None
    return float(hyper["learning_rate"])


def state_sweepable(strategy: Any, num_dims: int) -> dict[str, float]:
    """``{"sigma": ..., "learning_rate": ...}``: the state-held settings ``strategy`` has,
    with their current values (``std_schedule(0)``, the optimizer's rate)."""
    out: dict[str, float] = {}
    schedule = getattr(strategy, "std_schedule", None)
    if callable(schedule):
        out["sigma"] = float(schedule(0))
    rate = _optimizer_rate(strategy, num_dims)
    if rate is not None:
        out["learning_rate"] = rate
    return out


def apply_state_hparams(strategy: Any, es_state: Any, hparams: dict) -> Any:
    """``es_state`` with the traced ``sigma`` / ``learning_rate`` of ``hparams`` written in
    (called before ``ask``, whose state ``tell`` then uses)."""
    if "sigma" in hparams:
        std0 = jnp.asarray(strategy.std_schedule(0), es_state.std.dtype)
        # std / std0 is exactly 1 for a constant schedule, so std becomes sigma exactly
        std = hparams["sigma"].astype(es_state.std.dtype) * (es_state.std / std0)
        es_state = es_state.replace(std=std)
    if "learning_rate" in hparams:
        opt_state = es_state.opt_state
        old = opt_state.hyperparams["learning_rate"]
        rate = jnp.asarray(hparams["learning_rate"], jnp.result_type(old)).reshape(jnp.shape(old))
        hyper = {**opt_state.hyperparams, "learning_rate": rate}
        es_state = es_state.replace(opt_state=opt_state._replace(hyperparams=hyper))
    return es_state
