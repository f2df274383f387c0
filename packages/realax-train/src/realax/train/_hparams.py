"""Traced hyperparameters: the values a state carries in ``state.hparams`` (issue 17).

A trainer's ``sweepable()`` names the numeric settings that change no array shape;
``trainer.traced(names)`` returns a new trainer whose states carry those settings as float32
scalars in ``state.hparams`` and whose step reads them there instead of the static value. An
untraced state has ``hparams == {}`` (no leaves: the same compiled program as before, and old
checkpoints restore). :func:`set_hparams` changes the values of a state, inside or outside a
compiled program (a sweep sets one value per member, PBT changes them mid-run).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._suggest import did_you_mean

__all__ = ["Traceable", "check_names", "initial_hparams", "read", "set_hparams"]

#: the dtype of every traced hyperparameter
DTYPE = jnp.float32


def _unknown(owner: str, name: str, sweepable: Iterable[str], shape_settings: Iterable[str]) -> str:
    sweepable, shape_settings = sorted(sweepable), sorted(shape_settings)
    if name in shape_settings:
        return (
            f"{owner}: {name!r} changes array shapes, so it cannot be a traced value; sweep "
            f"over it with realax.train.sweep (one compiled program per shape), or build "
            f"the trainer with {name}=... (traceable: {sweepable})"
        )
    hint = did_you_mean(name, [*sweepable, *shape_settings])
    return (
        f"{owner}: unknown hyperparameter {name!r}.{hint} Traceable: {sweepable}; "
        f"shape-changing: {shape_settings}"
    )


def check_names(
    owner: str,
    names: Any,
    sweepable: Mapping[str, float],
    shape_settings: Iterable[str] = (),
) -> tuple[str, ...]:
    """``names`` as a tuple of distinct traceable names (order kept), or a clear error.

    >>> check_names("T.traced", ["lr", "lr"], {"lr": 0.1})
    ('lr',)
    >>> check_names("T.traced", ["rl"], {"lr": 0.1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: T.traced: unknown hyperparameter 'rl'. Did you mean 'lr'? Traceable: ...
    """
    if isinstance(names, str) or not isinstance(names, Sequence | set | frozenset):
        raise TypeError(
            f"{owner}: names must be a list of hyperparameter names (got "
            f"{type(names).__name__} {names!r}); e.g. traced(['learning_rate'])"
        )
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{owner}: names must be strings (got {name!r})")
        if name not in sweepable:
            raise ValueError(_unknown(owner, name, sweepable, shape_settings))
        if name not in out:
            out.append(name)
    return tuple(out)


def initial_hparams(names: Sequence[str], values: Mapping[str, Any]) -> dict[str, jax.Array]:
    """``{name: float32 scalar}`` for ``names``, from ``values`` (a trainer's ``sweepable()``)."""
    return {name: jnp.asarray(values[name], DTYPE) for name in names}


def read(hparams: Mapping[str, Any], name: str, static: Any) -> Any:
    """The traced value of ``name`` if the state carries it, else the static setting."""
    return hparams.get(name, static)


def set_hparams(state: Any, values: Mapping[str, Any]) -> Any:
    """``state`` with new values of its traced hyperparameters (``state.hparams``).

    Works on a single state, under ``jit`` / ``vmap``, and on a member-stacked state (a value
    is broadcast to the stored shape, so a scalar sets every member and an array of one value
    per member sets each). Only names the state already carries are accepted: build the
    trainer with ``trainer.traced(names)`` first.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import EvosaxTrainer, set_hparams
        >>> f = lambda x, key, data=None: (jnp.sum(x**2), {})
        >>> t = EvosaxTrainer(5, "SNES", f, params_like=jnp.ones(2), popsize=8)
        >>> t = t.traced(["std_init"])
        >>> state = set_hparams(t.initialize(jax.random.key(0)), {"std_init": 0.5})
        >>> float(state.hparams["std_init"])
        0.5
    """
    hparams = getattr(state, "hparams", None)
    if not isinstance(hparams, Mapping):
        raise TypeError(
            f"set_hparams needs a state with an hparams dict (got {type(state).__name__}); "
            "pass a state of a trainer built with trainer.traced(names)"
        )
    if not isinstance(values, Mapping):
        raise TypeError(
            f"set_hparams: values must be a mapping name -> value (got {type(values).__name__})"
        )
    new = dict(hparams)
    for name, value in values.items():
        if name not in hparams:
            hint = did_you_mean(str(name), hparams)
            raise ValueError(
                f"set_hparams: the state does not trace {name!r}.{hint} It traces "
                f"{sorted(hparams)}; build the trainer with trainer.traced([{name!r}, ...])"
            )
        arr = jnp.asarray(value, DTYPE)
        shape = np.shape(hparams[name])
        if arr.ndim > len(shape):
            raise ValueError(
                f"set_hparams: the value of {name!r} has shape {arr.shape}, more axes than the "
                f"state's {shape}; give a scalar or one value per member"
            )
        new[name] = jnp.broadcast_to(arr, shape)
    return state.replace(hparams=new)


def scalar_floats(obj: Any, names: Iterable[str]) -> dict[str, float]:
    """The attributes of ``obj`` among ``names`` that are float scalars, as Python floats."""
    out = {}
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, bool) or value is None:
            continue
        arr = np.asarray(value)
        if arr.shape == () and np.issubdtype(arr.dtype, np.floating):
            out[name] = float(arr)
    return out


class Traceable:
    """The traced-hyperparameter methods of a trainer (mixed into the trainers).

    A trainer implements :meth:`sweepable`, :meth:`shape_settings` and ``_trace(values)``
    (rebuild its algorithm so that states carry ``values`` in ``state.hparams``), and keeps its
    constructor arguments in ``_args`` for :meth:`rebuild`.
    """

    _args: dict[str, Any]
    #: the traced names and their starting values (empty: an untraced trainer)
    traced_values: dict[str, float] = {}

    def sweepable(self) -> dict[str, float]:
        """The numeric settings that change no array shape, with their current values."""
        raise NotImplementedError  # pragma: no cover

    def shape_settings(self) -> dict[str, Any]:
        """The settings that change array shapes (one compiled program per value)."""
        raise NotImplementedError  # pragma: no cover

    def _trace(self, values: dict[str, float]) -> None:
        raise NotImplementedError  # pragma: no cover

    def traced(self, names: Sequence[str]) -> Any:
        """A new trainer (same configuration) whose states carry ``names`` in
        ``state.hparams`` (float32 scalars starting at this trainer's values) and whose step
        reads them there; change them with ``realax.train.set_hparams(state, {...})``.

        Raises:
            ValueError: an unknown or shape-changing name (with close matches), before
                anything is compiled.
        """
        owner = f"{type(self).__name__}.traced"
        sweepable = self.sweepable()
        names = check_names(owner, names, sweepable, self.shape_settings())
        new = copy.copy(self)
        new.traced_values = {name: sweepable[name] for name in names}
        new._trace(dict(new.traced_values))
        return new

    def rebuild(self, **changes: Any) -> Any:
        """A new trainer built from this one's constructor arguments with ``changes``
        (e.g. a shape-changing setting), traced like this one."""
        args = dict(self._args)
        for name, value in changes.items():
            if name not in args and "agent_kwargs" in args:
                args["agent_kwargs"] = {**(args["agent_kwargs"] or {}), name: value}
            else:
                args[name] = value
        new = type(self)(**args)
        return new.traced(list(self.traced_values)) if self.traced_values else new
