"""The checks `OfflineTrainer` makes on its dataset before anything is compiled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import realax.tasks as rt
from realax.agents import Dataset

__all__ = ["as_dataset", "check_against_env", "check_finite", "check_batch_size"]

#: how many offending rows an error message lists
_SHOWN = 5


def as_dataset(dataset: Any) -> Dataset:
    """A `Dataset` from a `Dataset` or a mapping of arrays, with equal lengths checked."""
    if isinstance(dataset, Dataset):
        arrays = dict(dataset.arrays)
    elif isinstance(dataset, Mapping):
        arrays = dict(dataset)
    else:
        raise TypeError(
            "dataset must be a realax.agents.Dataset or a dict of arrays (got "
            f"{type(dataset).__name__}); e.g. realax.train.rl.collect(agent, env, key, 10_000)"
        )
    for name in ("observations", "actions"):
        if name not in arrays:
            raise KeyError(
                f"the dataset has no {name!r}; it has {sorted(arrays)}; every offline agent "
                "needs 'observations' and 'actions'"
            )
    lengths = {k: int(np.shape(v)[0]) if np.ndim(v) else 0 for k, v in arrays.items()}
    if len(set(lengths.values())) > 1 or 0 in lengths.values():
        raise ValueError(
            f"the dataset's arrays have different lengths {lengths}; every array needs one "
            "row per transition (a leading axis of the same size)"
        )
    return Dataset.create(**arrays)


def check_finite(dataset: Dataset) -> None:
    """Every float array finite; else name the array and the first offending rows."""
    for name, value in dataset.arrays.items():
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.floating):
            continue
        bad = ~np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
        if bad.any():
            rows = np.nonzero(bad)[0]
            kind = "NaN" if np.isnan(array[rows[0]]).any() else "infinite"
            raise ValueError(
                f"the dataset's {name!r} has {kind} values in {rows.size} row(s), first at "
                f"rows {rows[:_SHOWN].tolist()}; drop them with dataset.subset(mask) or fix "
                "the data"
            )


def check_batch_size(dataset: Dataset, batch_size: int) -> None:
    if batch_size > dataset.size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the dataset ({dataset.size} transitions); "
            f"use batch_size<={dataset.size}"
        )


def check_against_env(dataset: Dataset, env: rt.Env | None, obs_shape: tuple[int, ...]) -> None:
    """Observations and actions shaped as ``env`` (or, without one, as an MLP agent needs)."""
    obs = np.shape(dataset["observations"])[1:]
    actions = np.asarray(dataset["actions"])
    discrete = np.issubdtype(actions.dtype, np.integer)
    if env is None:
        if len(obs) != 1:
            raise ValueError(
                f"the dataset's observations have shape {obs}; the agents need flat "
                "observations (reshape them to (size, -1))"
            )
        return
    if obs != obs_shape:
        raise ValueError(
            f"the dataset's observations have shape {obs} per row but {env.name!r} gives "
            f"{obs_shape}; collect the dataset on the same environment (or pass env_kwargs)"
        )
    if bool(env.discrete) != bool(discrete):
        want = "integer actions" if env.discrete else "float actions"
        raise ValueError(
            f"{env.name!r} has {'discrete' if env.discrete else 'continuous'} actions, so the "
            f"dataset needs {want}; its 'actions' have dtype {actions.dtype}"
        )
    if discrete:
        n = int(env.action_dims)
        if actions.ndim != 1 or actions.min() < 0 or actions.max() >= n:
            raise ValueError(
                f"the dataset's discrete actions must be integers in [0, {n}) of shape (size,) "
                f"for {env.name!r} (got shape {actions.shape}, range [{actions.min()}, "
                f"{actions.max()}])"
            )
        return
    dims = (int(env.action_dims),)
    if actions.shape[1:] != dims:
        raise ValueError(
            f"the dataset's actions have shape {actions.shape[1:]} per row but {env.name!r} "
            f"takes {dims}"
        )
    if np.abs(actions).max() > 1.0 + 1e-5:
        raise ValueError(
            f"the dataset's continuous actions must lie in [-1, 1] (the agents' tanh range, "
            f"rescaled to {env.name!r}'s bounds when evaluating); they reach "
            f"{np.abs(actions).max():.3g}: rescale them, a = 2 * (a - low) / (high - low) - 1"
        )
