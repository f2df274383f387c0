"""Environments by name: ``make``, ``wrap``, dimensions and the ``ENV_SPACES`` table."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator, Mapping
from typing import Any

from ._env import Env
from ._suites import import_suite

# Names each suite registers in the versions realax-tasks is tested with. They only decide
# which suite to import for a name (and which extra to suggest when it is missing);
# environments registered at runtime are found in the suites' live registries.
_KNOWN_NAMES: dict[str, tuple[str, ...]] = {
    "gymnax": (
        "CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0",
        "MountainCarContinuous-v0", "Asterix-MinAtar", "Breakout-MinAtar",
        "Freeway-MinAtar", "Seaquest-MinAtar", "SpaceInvaders-MinAtar", "Catch-bsuite",
        "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite",
        "DiscountingChain-bsuite", "MNISTBandit-bsuite", "SimpleBandit-bsuite",
        "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc", "BernoulliBandit-misc",
        "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc", "FrozenLake-misc",
    ),
    "brax": (
        "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup",
        "inverted_pendulum", "inverted_double_pendulum", "pusher", "reacher", "swimmer",
        "walker2d",
    ),
    "jumanji": (
        "BinPack-v2", "CVRP-v1", "Cleaner-v0", "Connector-v3", "FlatPack-v0", "Game2048-v1",
        "GraphColoring-v1", "JobShop-v0", "Knapsack-v1", "LevelBasedForaging-v0", "MMST-v0",
        "Maze-v0", "Minesweeper-v0", "MultiCVRP-v0", "PacMan-v1", "RobotWarehouse-v0",
        "RubiksCube-partly-scrambled-v0", "RubiksCube-v0", "SearchAndRescue-v0",
        "SlidingTilePuzzle-v0", "Snake-v1", "Sokoban-v0", "Sudoku-v0", "Sudoku-very-easy-v0",
        "TSP-v1", "Tetris-v0",
    ),
}  # fmt: skip

SUITES = ("gymnax", "brax", "jumanji")


def _live_names(suite: str) -> list[str]:
    try:
        module = import_suite(suite)
    except ImportError:
        return []
    if suite == "gymnax":
        return list(module.registered_envs)
    if suite == "brax":
        return list(module._envs)
    return sorted(module.registered_environments())


def registered_names(suite: str | None = None) -> list[str]:
    """Names :func:`make` accepts, for one suite or all installed suites.

    Args:
        suite: ``"gymnax"``, ``"brax"``, ``"jumanji"`` or ``None`` for all installed ones.

    >>> "CartPole-v1" in registered_names("gymnax")
    True
    """
    suites = SUITES if suite is None else (suite,)
    if suite is not None and suite not in SUITES:
        raise ValueError(f"suite must be one of {SUITES} or None (got suite={suite!r})")
    return [n for s in suites for n in _live_names(s)]


def check_name(suite: str, name: str) -> None:
    """Raises the registry's ``ValueError`` (with close matches) if ``suite`` lacks ``name``."""
    if name not in _live_names(suite):
        _resolve(f"{suite}/{name}")


def _split_prefix(name: str) -> tuple[str | None, str]:
    prefix, sep, rest = name.partition("/")
    if sep and prefix in SUITES:
        return prefix, rest
    return None, name


def _resolve(name: str) -> tuple[str, str]:
    """Returns ``(suite, name)`` for an environment name, importing only what is needed."""
    if not isinstance(name, str):
        raise TypeError(f"env name must be a str (got {type(name).__name__}: {name!r})")
    suite, bare = _split_prefix(name)
    candidates = (suite,) if suite else SUITES
    # 1. names the suites ship: import that suite (ImportError names the extra).
    for s in candidates:
        if bare in _KNOWN_NAMES[s]:
            import_suite(s)
            return s, bare
    # 2. names registered at runtime in an installed suite.
    for s in candidates:
        if bare in _live_names(s):
            return s, bare
    pool = sorted({n for s in candidates for n in (*_KNOWN_NAMES[s], *_live_names(s))})
    close = difflib.get_close_matches(bare, pool, n=5, cutoff=0.5)
    if not close:
        lower = {n.lower(): n for n in pool}
        close = [lower[n] for n in difflib.get_close_matches(bare.lower(), list(lower), n=5)]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    where = f"{suite} " if suite else "gymnax, brax or jumanji "
    raise ValueError(
        f"unknown environment name {name!r}: not a registered {where}environment.{hint} "
        "See realax.tasks.registered_names() for every available name."
    )


def make(name: str, **kwargs: Any) -> Env:
    """Creates any gymnax, brax or jumanji environment by name as an :class:`Env`.

    The suite is found from the name (``"CartPole-v1"`` -> gymnax, ``"ant"`` -> brax,
    ``"Snake-v1"`` -> jumanji); a ``"gymnax/"``, ``"brax/"`` or ``"jumanji/"`` prefix
    picks the suite explicitly.

    Args:
        name: the environment's registry name.
        **kwargs: options of the suite's wrapper (:class:`GymnaxEnv`: ``env_params``;
            :class:`BraxEnv`: ``backend="positional"``, ``episode_length=1000``;
            :class:`JumanjiEnv`: ``episode_length``), ``autoreset`` (default ``True``),
            ``obs_fn``, ``max_steps`` (overrides the episode limit), and any other keyword
            is passed to the suite's own constructor.

    Returns:
        An :class:`Env`.

    Raises:
        ValueError: unknown name (the message lists close matches).
        ImportError: the suite is not installed (the message names the extra).

    >>> import jax
    >>> env = make("CartPole-v1")
    >>> obs, state = env.reset(jax.random.key(0))
    >>> env.suite, env.obs_shape, env.action_dims, env.discrete, env.max_steps
    ('gymnax', (4,), 2, True, 500)
    """
    suite, bare = _resolve(name)
    max_steps = kwargs.pop("max_steps", None)
    if suite == "gymnax":
        from ._gymnax import GymnaxEnv

        env: Env = GymnaxEnv(bare, **kwargs)
    elif suite == "brax":
        from ._brax import BraxEnv

        env = BraxEnv(bare, **kwargs)
    else:
        from ._jumanji import JumanjiEnv

        env = JumanjiEnv(bare, **kwargs)
    if max_steps is not None:
        env = env.replace(max_steps=max_steps)
    return env


def _suite_of_instance(env: Any) -> str | None:
    for cls in type(env).__mro__:
        root = cls.__module__.split(".")[0]
        if root in SUITES:
            return root
    return None


def wrap(env: Any, **kwargs: Any) -> Env:
    """Wraps a gymnax ``Environment``, brax ``Env`` or jumanji ``Environment`` instance.

    Args:
        env: the environment instance (subclasses defined outside the suites work too).
            An :class:`Env` is returned as is (with ``kwargs`` applied via ``replace``).
        **kwargs: the same options as :func:`make` (except suite constructor arguments).

    >>> import gymnax
    >>> env = wrap(gymnax.environments.CartPole())
    >>> env.name, env.action_dims
    ('CartPole-v1', 2)
    """
    if isinstance(env, Env):
        return env.replace(**kwargs) if kwargs else env
    suite = _suite_of_instance(env)
    max_steps = kwargs.pop("max_steps", None)
    if suite == "gymnax":
        from ._gymnax import GymnaxEnv

        out: Env = GymnaxEnv(env, **kwargs)
    elif suite == "brax":
        from ._brax import BraxEnv

        out = BraxEnv(env, **kwargs)
    elif suite == "jumanji":
        from ._jumanji import JumanjiEnv

        out = JumanjiEnv(env, **kwargs)
    else:
        raise TypeError(
            "env must be a gymnax Environment, a brax Env, a jumanji Environment or a "
            f"realax.tasks.Env (got {type(env).__module__}.{type(env).__name__}); to use an "
            "environment by name call realax.tasks.make(name)"
        )
    if max_steps is not None:
        out = out.replace(max_steps=max_steps)
    return out


@functools.cache
def _dimensions(name: str) -> tuple[int, int | tuple[int, ...], bool]:
    try:
        env = make(name, autoreset=False)
    except ValueError as error:  # a brax env without the default (positional) backend
        if "does not support backend" not in str(error):
            raise
        env = make(name, autoreset=False, backend="generalized")
    spec = env.spec
    return spec.obs_dims, spec.action_dims, spec.discrete


def get_env_dimensions(name: str) -> tuple[int, int | tuple[int, ...], bool]:
    """``(obs_dims, action_dims, discrete)`` of a registered environment, from its spaces.

    ``obs_dims`` is the size of the flattened observation; ``action_dims`` the number of
    discrete actions, the per-component category counts (tuple) of a multi-discrete action,
    or the size of a continuous action. Results are cached per name.

    >>> get_env_dimensions("CartPole-v1")
    (4, 2, True)
    """
    return _dimensions(name)


class _EnvSpaces(Mapping):
    """Read-only mapping name -> ``(obs_dims, action_dims, discrete)``, computed on access."""

    def __init__(self, names: tuple[str, ...]):
        self._names = names

    def __getitem__(self, name: str) -> tuple[int, int | tuple[int, ...], bool]:
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
ENV_SPACES: Mapping[str, tuple[int, int | tuple[int, ...], bool]] = _EnvSpaces(
    (
        "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
        "Pendulum-v1", "PointRobot-misc", "MetaMaze-misc", "Reacher-misc",
        "halfcheetah", "ant", "walker2d", "hopper", "humanoid", "reacher",
        "inverted_pendulum", "inverted_double_pendulum",
    )
)  # fmt: skip
