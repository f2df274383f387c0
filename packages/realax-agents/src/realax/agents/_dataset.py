"""`Dataset`: a fixed set of transitions for offline RL, read like a dict of arrays.

The keys follow jaxrl_m's: ``observations``, ``actions``, ``rewards``, ``masks`` (1.0 where
the next state's value is bootstrapped, 0.0 at a termination), ``dones`` (True where an
episode ended, terminated or truncated) and ``next_observations``; any other key is kept.

`Dataset.create` derives ``dones`` when it is absent (as jaxrl_m's D4RL loader does): an
episode ends where ``masks`` is 0, where the next row's ``observations`` differ from this
row's ``next_observations`` (the trajectory jumps: a reset), and at the last row.
`check_dataset` is the one place that checks a dataset against what its consumer needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ._batches import Transition
from ._dataset_checks import check_dataset as check_dataset
from ._dataset_checks import derive_dones

__all__ = ["Dataset", "check_dataset"]

#: the keys an offline agent reads (`Dataset.to_transition` needs them)
TRANSITION_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")


class Dataset(struct.PyTreeNode, Mapping):
    """A mapping of arrays sharing a leading transition axis; a pytree, so it passes
    through ``jit``, ``vmap`` and ``shard_map``.

    ``data["observations"]`` reads an array; `sample` draws a minibatch (a `Dataset` of
    ``batch_size`` rows) inside compiled code. An agent's ``update`` takes a `Dataset`
    batch directly (a mapping with the keys above), or a `Transition` from `to_transition`.

    Attributes:
        arrays: dict of arrays ``(size, ...)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> ds = Dataset.create(observations=jnp.zeros((5, 3)), actions=jnp.zeros(5, jnp.int32),
        ...                     rewards=jnp.ones(5), masks=jnp.ones(5),
        ...                     dones=jnp.array([0, 0, 1, 0, 1], bool),
        ...                     next_observations=jnp.zeros((5, 3)))
        >>> ds.size, ds["observations"].shape
        (5, (5, 3))
        >>> ds.sample(jax.random.key(0), 8)["rewards"].shape
        (8,)
        >>> ds.episode_returns().tolist()
        [3.0, 2.0]
    """

    arrays: dict[str, Any]

    @classmethod
    def create(cls, **arrays: Any) -> Dataset:
        """A dataset of the given arrays (numpy or jax; converted to jax arrays).

        Raises:
            ValueError: without arrays, for a scalar array, or if the leading axes differ.
        """
        if not arrays:
            raise ValueError(
                "Dataset.create needs at least one array, e.g. Dataset.create(observations=..., "
                "actions=..., rewards=..., masks=..., dones=..., next_observations=...)"
            )
        nested = [k for k, v in arrays.items() if isinstance(v, Mapping)]
        if nested:
            raise ValueError(
                f"Dataset.create: {nested} are nested dicts; a Dataset holds flat arrays, so "
                "pass each leaf as its own key (e.g. observations_image=..., "
                "observations_state=...) or concatenate them"
            )
        converted = {k: jnp.asarray(v) for k, v in arrays.items()}
        lengths = {}
        for k, v in converted.items():
            if v.ndim == 0:
                raise ValueError(
                    f"Dataset.create: {k!r} is a scalar; every array needs a leading "
                    "transition axis"
                )
            lengths[k] = int(v.shape[0])
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "Dataset.create: arrays have different lengths "
                f"{lengths}; every array needs one row per transition"
            )
        if "dones" not in converted:
            dones = derive_dones(converted)
            if dones is not None:
                converted["dones"] = dones
        return cls(arrays=converted)

    @classmethod
    def from_transition(
        cls, transition: Transition, *, dones: Any = None, time_major: bool = False, **extra: Any
    ) -> Dataset:
        """The dataset of a `Transition` (rows on its leading axis; more leading axes are
        flattened in C order).

        Args:
            transition: the batch; ``masks = 1 - terminated``.
            dones: bool per row, true where an episode ended (terminated *or* truncated).
                Without it, ``dones`` is derived as `Dataset.create` does (terminations and
                jumps between ``next_observations`` and the next row's ``observations``).
            time_major: the leading axes are ``(T, n_envs)`` (a rollout of vectorised
                environments); they are swapped before flattening, so each environment's
                steps are consecutive rows and episodes stay contiguous.
            **extra: more arrays to keep (same leading shape).

        Example:
            >>> t = Transition(obs=jnp.zeros((3, 2)), actions=jnp.zeros(3, jnp.int32),
            ...                rewards=jnp.ones(3), next_obs=jnp.zeros((3, 2)),
            ...                terminated=jnp.array([False, True, False]))
            >>> ds = Dataset.from_transition(t)
            >>> ds["masks"].tolist(), ds["dones"].tolist()
            ([1.0, 0.0, 1.0], [False, True, True])
        """
        if not isinstance(transition, Transition):
            raise TypeError(
                "Dataset.from_transition expects a realax.agents.Transition (got "
                f"{type(transition).__name__}); for a dict use Dataset.create(**arrays)"
            )
        lead = jnp.shape(transition.rewards)
        if time_major and len(lead) != 2:
            raise ValueError(
                f"Dataset.from_transition: time_major=True needs leading axes (T, n_envs); "
                f"rewards has shape {lead}"
            )
        arrays = {
            "observations": transition.obs,
            "actions": transition.actions,
            "rewards": transition.rewards,
            "masks": transition.masks,
            "next_observations": transition.next_obs,
            **({} if dones is None else {"dones": jnp.asarray(dones, bool)}),
            **extra,
        }
        n = int(np.prod(lead))
        for k, v in arrays.items():
            if jnp.shape(v)[: len(lead)] != lead:
                raise ValueError(
                    f"Dataset.from_transition: {k!r} has shape {jnp.shape(v)}, expected a "
                    f"leading shape {lead} like rewards"
                )
        if time_major:
            arrays = {k: jnp.swapaxes(v, 0, 1) for k, v in arrays.items()}
        return cls.create(
            **{k: jnp.reshape(v, (n, *jnp.shape(v)[len(lead) :])) for k, v in arrays.items()}
        )

    @classmethod
    def concatenate(cls, datasets: Sequence[Dataset]) -> Dataset:
        """Rows of ``datasets`` one after the other (same keys, dtypes and row shapes).

        Example:
            >>> a = Dataset.create(rewards=jnp.ones(2), masks=jnp.ones(2))
            >>> Dataset.concatenate([a, a]).size
            4
        """
        datasets = list(datasets)
        if not datasets or not all(isinstance(d, Dataset) for d in datasets):
            raise TypeError("Dataset.concatenate expects a non-empty sequence of Datasets")
        first = datasets[0]
        for i, d in enumerate(datasets[1:], start=1):
            if set(d.arrays) != set(first.arrays):
                raise ValueError(
                    f"Dataset.concatenate: dataset {i} has keys {sorted(d.arrays)}, dataset 0 "
                    f"has {sorted(first.arrays)}; give every dataset the same keys"
                )
            for k, v in d.arrays.items():
                u = first.arrays[k]
                if v.dtype != u.dtype or v.shape[1:] != u.shape[1:]:
                    raise ValueError(
                        f"Dataset.concatenate: {k!r} is {v.dtype}{list(v.shape[1:])} per row in "
                        f"dataset {i} but {u.dtype}{list(u.shape[1:])} in dataset 0"
                    )
        return cls(arrays={k: jnp.concatenate([d.arrays[k] for d in datasets]) for k in first})

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str], *, compress: bool = False) -> Path:
        """Write the dataset to one ``.npz`` file, atomically, with sha256 checksums.

        The file is replaced only once the new one is complete and synced to disk; dtypes
        and shapes round-trip exactly through `Dataset.load` (see ``_dataset_io``).

        Args:
            path: destination file (its folder must exist); ``.npz`` is the usual suffix.
            compress: deflate the arrays (smaller, slower).

        Returns:
            ``path`` as a `pathlib.Path`.

        Example:
            >>> import tempfile, os
            >>> ds = Dataset.create(rewards=jnp.arange(3.0), masks=jnp.ones(3))
            >>> path = ds.save(os.path.join(tempfile.mkdtemp(), "data.npz"))
            >>> Dataset.load(path)["rewards"].tolist()
            [0.0, 1.0, 2.0]
        """
        from ._dataset_io import save_arrays

        return save_arrays(path, self.arrays, compress=compress)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dataset:
        """Read a file written by `Dataset.save`, verifying every array's checksum.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            realax.agents._dataset_io.DatasetFileError: (a `ValueError`) if the file is
                truncated, corrupted or not a realax dataset; the message names the file.
        """
        from ._dataset_io import load_arrays

        return cls(arrays={k: jnp.asarray(v) for k, v in load_arrays(path).items()})

    # ------------------------------------------------------------------ Minari
    @classmethod
    def from_minari(cls, dataset: Any) -> Dataset:
        """Read a Minari dataset (a ``minari.MinariDataset`` or its id under
        ``$MINARI_DATASETS_PATH``); needs ``realax-agents[minari]``.

        ``masks = 1 - terminations``, ``dones = terminations | truncations``,
        ``next_observations`` are each episode's observations shifted by one.
        """
        from ._minari import read_minari

        return cls.create(**read_minari(dataset))

    def to_minari(self, dataset_id: str, **kwargs: Any) -> Any:
        """Write the episodes (split at ``dones``) as Minari dataset ``dataset_id``; needs
        ``realax-agents[minari]``. Keyword arguments go to
        ``minari.create_dataset_from_buffers`` (``env``, ``algorithm_name``, ...); returns
        the ``minari.MinariDataset``. Terminations are the rows where ``masks`` is 0,
        truncations the other rows where ``dones`` is true.
        """
        from ._minari import write_minari

        starts, ends = self.episode_starts(), self.episode_ends()
        return write_minari(self.arrays, dataset_id, starts=starts, ends=ends, **kwargs)

    # ------------------------------------------------------------------ checks
    def validate(
        self, required_keys: Sequence[str] = (), *, owner: str = "Dataset.validate", **kwargs: Any
    ) -> Dataset:
        """`check_dataset` on this dataset; returns it unchanged so calls chain."""
        check_dataset(self, required_keys, owner=owner, **kwargs)
        return self

    def __repr__(self) -> str:
        if not self.arrays:
            return "Dataset(size=0)"
        fields = ", ".join(
            f"{k}={getattr(v, 'dtype', type(v).__name__)}{list(jnp.shape(v))}"
            for k, v in self.arrays.items()
        )
        return f"Dataset(size={self.size}, {fields})"

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, key: str) -> Any:
        try:
            return self.arrays[key]
        except KeyError:
            raise KeyError(
                f"Dataset has no key {key!r}; its keys are {sorted(self.arrays)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def __hash__(self) -> int:  # Mapping sets __hash__ = None; keep identity hashing
        return id(self)

    @property
    def size(self) -> int:
        """Number of transitions (static: the arrays' leading axis)."""
        return int(jax.tree.leaves(self.arrays)[0].shape[0])

    # ------------------------------------------------------------------ selecting rows
    def subset(self, indices: Any) -> Dataset:
        """The rows at ``indices`` (an int array or a boolean mask, numpy or jax)."""
        idx = jnp.asarray(indices)
        if idx.dtype == jnp.bool_:
            idx = jnp.nonzero(idx)[0]
        return Dataset(arrays={k: v[idx] for k, v in self.arrays.items()})

    def sample(self, key: jax.Array, batch_size: int | None = None) -> Dataset:
        """``batch_size`` rows drawn uniformly with replacement (jit-able)."""
        if batch_size is None:
            raise TypeError(
                "Dataset.sample(key, batch_size) takes a PRNG key first (jaxrl_m's "
                "sample(batch_size) used numpy's global RNG); e.g. "
                "dataset.sample(jax.random.key(0), 256)"
            )
        idx = jax.random.randint(key, (batch_size,), 0, self.size)
        return self.subset(idx)

    def to_transition(self) -> Transition:
        """The rows as a `realax.agents.Transition` (needs the keys of `TRANSITION_KEYS`)."""
        missing = [k for k in TRANSITION_KEYS if k not in self.arrays]
        if missing:
            raise KeyError(
                f"Dataset.to_transition: missing key(s) {missing}; it has {sorted(self.arrays)}"
            )
        a = self.arrays
        return Transition(
            obs=a["observations"],
            actions=a["actions"],
            rewards=a["rewards"],
            next_obs=a["next_observations"],
            terminated=1.0 - jnp.asarray(a["masks"], jnp.float32),
        )

    # ------------------------------------------------------------------ episodes
    def episode_ends(self) -> np.ndarray:
        """Indices of the last transition of each episode (host-side numpy).

        An episode ends where ``dones`` is true (or, without ``dones``, where ``masks`` is
        0); the last row always closes an episode.
        """
        if "dones" in self.arrays:
            ends = np.asarray(self.arrays["dones"]).astype(bool).copy()
        elif "masks" in self.arrays:
            ends = np.asarray(self.arrays["masks"]) == 0
        else:
            raise KeyError(
                f"Dataset.episode_ends needs 'dones' (or 'masks'); it has {sorted(self.arrays)}"
            )
        ends = ends.reshape(self.size)
        ends[-1] = True
        return np.nonzero(ends)[0]

    def episode_starts(self) -> np.ndarray:
        """Indices of the first transition of each episode (host-side numpy)."""
        ends = self.episode_ends()
        return np.concatenate([[0], ends[:-1] + 1]).astype(ends.dtype)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode, in order (host-side numpy)."""
        rewards = np.asarray(self.arrays["rewards"], np.float64).reshape(self.size)
        ends = self.episode_ends()
        cumulative = np.concatenate([[0.0], np.cumsum(rewards)])
        starts = self.episode_starts()
        return (cumulative[ends + 1] - cumulative[starts]).astype(np.float32)


def as_mapping(data: Mapping[str, Any] | Dataset) -> Mapping[str, Any]:
    """``data``'s arrays as a plain mapping (a `Dataset` or any mapping)."""
    return data.arrays if isinstance(data, Dataset) else data
