"""What each registered environment looks like, without running it: ``env_info``,
``get_env_dimensions`` and the ``ENV_SPACES`` table.

Per name, in order: an answer already computed in this process; the on-disk cache of the
installed suite version (``_cache``); the suite adapter's ``download`` check (an
environment that would fetch data is reported, never built); else the adapter's ``describe``
(gymnax reads its spaces, jumanji its specs, brax loads the model), run quietly, whose
answer is stored in that cache. The network is never used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import _cache
from . import _registry as _registry  # registers the suite adapters
from ._quiet import quiet
from ._suites import EnvInfo, SuiteAdapter, UnknownEnvName, resolve

Dims = tuple[int, int | tuple[int, ...], bool]

_SEEN: dict[tuple[str, str], EnvInfo] = {}


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _unavailable(suite: SuiteAdapter, name: str, error: Exception) -> EnvInfo:
    reason = _sentence(
        f"{suite.name} environment {name!r} cannot be built here: {type(error).__name__}: {error}"
    )
    return EnvInfo(name, suite.name, reason=reason)


def _decode(name: str, suite: str, entry: Any) -> EnvInfo | None:
    try:
        dims = entry["action_dims"]
        return EnvInfo(
            name,
            suite,
            tuple(int(d) for d in entry["obs_shape"]),
            tuple(int(d) for d in dims) if isinstance(dims, list) else int(dims),
            bool(entry["discrete"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _cached(suite: SuiteAdapter, name: str) -> EnvInfo | None:
    path = suite.cache_path()
    if path is None:
        return None
    entry = _cache.read(path).get("envs", {}).get(name)
    return _decode(name, suite.name, entry) if entry is not None else None


def _lookup(suite: SuiteAdapter, name: str) -> EnvInfo:
    cached = _cached(suite, name)
    if cached is not None:
        return cached
    path = suite.cache_path()
    reason = suite.download(name)
    if reason is not None:
        return EnvInfo(name, suite.name, reason=reason)
    try:
        with quiet():
            if suite.describe is not None:
                info = suite.describe(name)
            else:
                info = EnvInfo.from_spec(suite.make(name, autoreset=False).spec)
    except UnknownEnvName:  # a name with a "brax/" prefix that brax does not register
        raise
    except Exception as error:  # noqa: BLE001 - any failure to build is reported as a reason
        return _unavailable(suite, name, error)
    if path is not None:
        entry = {
            "obs_shape": list(info.obs_shape or ()),
            "action_dims": info.action_dims,
            "discrete": info.discrete,
        }
        _cache.update(path, env=(name, entry))
    return info


def env_info(name: str) -> EnvInfo:
    """What a registered environment looks like, or why it cannot be built here.

    Fast and network-free: read from the suite's spaces or specs (gymnax, jumanji) or from
    a loaded model (brax), once, then cached on disk per suite version (see the README).
    An environment that would download data when created (jumanji ``Sokoban-v0``, gymnax
    ``MNISTBandit-bsuite`` without its data) is not built: its ``reason`` says so.

    Args:
        name: a registered name, optionally with a ``"gymnax/"``, ``"brax/"`` or
            ``"jumanji/"`` prefix.

    Returns:
        An :class:`EnvInfo` (``info.reason is None`` when it can be built).

    Raises:
        ValueError: unknown name (close matches, and where to list names).
        ImportError: its suite is not installed (the message names the extra).

    >>> info = env_info("CartPole-v1")
    >>> info.suite, info.obs_shape, info.action_dims, info.discrete, info.reason
    ('gymnax', (4,), 2, True, None)
    """
    suite, bare = resolve(name)
    key = (suite.name, bare)
    if key not in _SEEN:
        _SEEN[key] = _lookup(suite, bare)
    return _SEEN[key]


def known_env_info(name: str) -> EnvInfo | None:
    """:func:`env_info` if it is already known (computed in this process or in the on-disk
    cache), else ``None``; never builds the environment (for listings of suites whose
    environments are slow to build, such as Playground's).

    >>> known_env_info("CartPole-v1") == env_info("CartPole-v1")
    True
    """
    suite, bare = resolve(name)
    return _SEEN.get((suite.name, bare)) or _cached(suite, bare)


def get_env_dimensions(name: str) -> Dims:
    """``(obs_dims, action_dims, discrete)`` of a registered environment, from its spaces.

    ``obs_dims`` is the size of the flattened observation; ``action_dims`` the number of
    discrete actions, the per-component category counts (tuple) of a multi-discrete action,
    or the size of a continuous action. Fast and network-free, as :func:`env_info`.

    Raises:
        RuntimeError: the environment cannot be built here; the message is
            :attr:`EnvInfo.reason`.

    >>> get_env_dimensions("CartPole-v1")
    (4, 2, True)
    """
    info = env_info(name)
    if info.reason is not None:
        raise RuntimeError(info.reason)
    assert info.obs_dims is not None and info.action_dims is not None
    return info.obs_dims, info.action_dims, bool(info.discrete)


class _EnvSpaces(Mapping):
    """Read-only mapping name -> ``(obs_dims, action_dims, discrete)``, computed on access."""

    def __init__(self, names: tuple[str, ...]):
        self._names = names

    def __getitem__(self, name: str) -> Dims:
        if name not in self._names:
            raise KeyError(
                f"{name!r} is not in ENV_SPACES; use realax.tasks.get_env_dimensions({name!r})"
                " for any registered environment"
            )
        return get_env_dimensions(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"ENV_SPACES({list(self._names)})"


#: ``(obs_dims, action_dims, discrete)`` for the environments the original realax listed,
#: computed from each environment's spaces the first time a name is looked up.
ENV_SPACES: Mapping[str, Dims] = _EnvSpaces(
    (
        "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
        "Pendulum-v1", "PointRobot-misc", "MetaMaze-misc", "Reacher-misc",
        "halfcheetah", "ant", "walker2d", "hopper", "humanoid", "reacher",
        "inverted_pendulum", "inverted_double_pendulum",
    )
)  # fmt: skip
