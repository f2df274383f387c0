"""Minari interchange: a `Dataset` from a Minari dataset and back (extra ``realax-agents[minari]``).

Minari stores episodes: ``T + 1`` observations, ``T`` actions, rewards, ``terminations`` and
``truncations``. A `Dataset` row ``i`` of an episode is ``(observations[i], actions[i],
rewards[i], next_observations = observations[i + 1])``, ``masks = 1 - terminations`` and
``dones = terminations | truncations``; episodes follow one another. `write_minari` writes the
episodes given by ``dataset.episode_starts()`` / ``episode_ends()`` (the ``dones``) back.

``minari`` (and gymnasium, for the spaces) is imported only inside these functions, so
``import realax.agents`` never loads it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["read_minari", "write_minari"]

#: the keys a Minari episode holds (any other `Dataset` key cannot be written)
MINARI_KEYS = ("observations", "actions", "rewards", "masks", "dones", "next_observations")


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(
            f"Minari interchange needs the optional dependency {name.split('.')[0]!r}: "
            'install it with pip install "realax-agents[minari]" (minari[hdf5] and pillow)'
        ) from e


def _check_space(space: Any, what: str) -> None:
    spaces = _import("gymnasium.spaces")
    if not isinstance(space, spaces.Box | spaces.Discrete):
        raise ValueError(
            f"Dataset.from_minari: the dataset's {what} space is {type(space).__name__}; only "
            "Box and Discrete spaces map to the arrays of a Dataset (flatten the others first)"
        )


def read_minari(dataset: Any) -> dict[str, np.ndarray]:
    """Read every episode of a Minari dataset (a `minari.MinariDataset` or its id); the
    arrays of `realax.agents.Dataset.from_minari`.

    Args:
        dataset: a loaded ``MinariDataset``, or a dataset id for ``minari.load_dataset``
            (found under ``$MINARI_DATASETS_PATH``; nothing is downloaded).

    Returns:
        ``observations``, ``actions``, ``rewards``, ``masks`` (float32), ``dones`` (bool) and
        ``next_observations``, episodes in the dataset's order.
    """
    minari = _import("minari")
    if isinstance(dataset, str):
        dataset = minari.load_dataset(dataset, download=False)
    if not isinstance(dataset, minari.MinariDataset):
        raise TypeError(
            "Dataset.from_minari expects a minari.MinariDataset or a dataset id (got "
            f"{type(dataset).__name__})"
        )
    _check_space(dataset.observation_space, "observation")
    _check_space(dataset.action_space, "action")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in MINARI_KEYS}
    for episode in dataset.iterate_episodes():
        obs = np.asarray(episode.observations)
        terminated = np.asarray(episode.terminations, bool)
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(episode.actions))
        parts["rewards"].append(np.asarray(episode.rewards, np.float32))
        parts["masks"].append(1.0 - terminated.astype(np.float32))
        parts["dones"].append(terminated | np.asarray(episode.truncations, bool))
    if not parts["rewards"]:
        raise ValueError("Dataset.from_minari: the Minari dataset has no episodes")
    return {k: np.concatenate(v) for k, v in parts.items()}


def _spaces_of(dataset: Mapping[str, Any]) -> tuple[Any, Any]:
    spaces = _import("gymnasium.spaces")
    obs = np.asarray(dataset["observations"])
    observation_space = spaces.Box(-np.inf, np.inf, obs.shape[1:], obs.dtype)
    actions = np.asarray(dataset["actions"])
    if np.issubdtype(actions.dtype, np.integer) and actions.ndim == 1:
        action_space = spaces.Discrete(int(actions.max()) + 1)
    else:
        action_space = spaces.Box(-np.inf, np.inf, actions.shape[1:], actions.dtype)
    return observation_space, action_space


def _episode_buffers(dataset: Mapping[str, Any], starts: np.ndarray, ends: np.ndarray) -> list[Any]:
    buffer_cls = _import("minari.data_collector.episode_buffer").EpisodeBuffer
    a = {k: np.asarray(dataset[k]) for k in MINARI_KEYS}
    size = len(a["rewards"])
    # inside an episode, Minari keeps one observation sequence: s'_i must be s_{i+1}
    inner = np.ones(size, bool)
    inner[ends] = False
    broken = np.nonzero(
        inner[:-1]
        & np.any(
            a["next_observations"][:-1] != a["observations"][1:],
            axis=tuple(range(1, a["observations"].ndim)),
        )
    )[0]
    if broken.size:
        raise ValueError(
            "Dataset.to_minari: next_observations of row(s) "
            f"{broken[:5].tolist()} differ from the following row's observations, but dones is "
            "false there; Minari stores one observation sequence per episode, so mark those "
            "rows as episode ends (dones=True)"
        )
    terminated = a["masks"].reshape(size) == 0
    done = a["dones"].reshape(size).astype(bool)
    buffers = []
    for i, (s, e) in enumerate(zip(starts, ends, strict=True)):
        rows = slice(int(s), int(e) + 1)
        observations = np.concatenate([a["observations"][rows], a["next_observations"][e : e + 1]])
        buffers.append(
            buffer_cls(
                id=i,
                observations=observations,
                actions=a["actions"][rows],
                rewards=a["rewards"][rows],
                terminations=terminated[rows],
                truncations=done[rows] & ~terminated[rows],
            )
        )
    return buffers


def write_minari(
    dataset: Mapping[str, Any],
    dataset_id: str,
    *,
    starts: np.ndarray,
    ends: np.ndarray,
    **kwargs: Any,
) -> Any:
    """Write ``dataset`` as the Minari dataset ``dataset_id`` (under ``$MINARI_DATASETS_PATH``);
    the body of `realax.agents.Dataset.to_minari`.

    Args:
        dataset: needs `MINARI_KEYS` and no other key.
        dataset_id: Minari id ``(namespace/)(env_name/)name-v<version>``.
        starts, ends: first and last row of each episode (``Dataset.episode_starts()`` /
            ``episode_ends()``, from ``dones``).
        **kwargs: passed to ``minari.create_dataset_from_buffers`` (``env``,
            ``algorithm_name``, ``author``, ``code_permalink``, ``description``, ...).
            Without ``env``, ``observation_space`` defaults to an unbounded ``Box`` of the
            observations' shape and dtype, and ``action_space`` to ``Discrete(max + 1)`` for
            integer actions, else an unbounded ``Box``.

    Returns:
        The new ``minari.MinariDataset``.
    """
    minari = _import("minari")
    present: Sequence[str] = list(dataset)
    missing = [k for k in MINARI_KEYS if k not in present]
    extra = [k for k in present if k not in MINARI_KEYS]
    if missing or extra:
        raise ValueError(
            f"Dataset.to_minari: a Minari episode holds exactly {list(MINARI_KEYS)}; the dataset "
            f"lacks {missing} and has the extra key(s) {extra}; build one without them: "
            "Dataset.create(**{k: ds[k] for k in realax.agents._minari.MINARI_KEYS})"
        )
    if "env" not in kwargs:
        observation_space, action_space = _spaces_of(dataset)
        kwargs.setdefault("observation_space", observation_space)
        kwargs.setdefault("action_space", action_space)
    return minari.create_dataset_from_buffers(
        dataset_id, _episode_buffers(dataset, starts, ends), **kwargs
    )
