"""Environments by name or instance: ``make``, ``wrap`` and ``registered_names``.

Importing this module imports the three suite modules, which register their adapters in
the table of ``_suites`` (gymnax first: names are looked up in that order).
"""

from __future__ import annotations

from typing import Any

# isort: off
from . import _gymnax, _brax, _jumanji  # noqa: F401  (each registers its suite adapter)
from . import _playground  # noqa: F401  (MuJoCo Playground: imported only when its names are used)
from . import _craftax, _xminigrid, _navix  # noqa: F401  (the grid-world suites, after them)

# isort: on
from ._env import Env
from ._suites import adapter, adapter_of_instance, resolve, suites


def registered_names(suite: str | None = None) -> list[str]:
    """Names :func:`make` accepts, for one suite or all installed suites.

    Read from each suite's own registry (brax, which has no public listing, from the names
    it ships; see the README), or from the on-disk cache of the installed suite version;
    no environment is built and the network is never used.

    Args:
        suite: ``"gymnax"``, ``"brax"``, ``"jumanji"`` or ``None`` for all installed ones.

    >>> "CartPole-v1" in registered_names("gymnax")
    True
    """
    chosen = suites() if suite is None else (adapter(suite).name,)
    names: list[str] = []
    for s in chosen:
        try:
            names.extend(adapter(s).registered())
        except ImportError:
            continue
    return names


def make(name: str, **kwargs: Any) -> Env:
    """Creates any gymnax, brax or jumanji environment by name as an :class:`Env`.

    The suite is found from the name (``"CartPole-v1"`` -> gymnax, ``"ant"`` -> brax,
    ``"Snake-v1"`` -> jumanji); a ``"gymnax/"``, ``"brax/"`` or ``"jumanji/"`` prefix
    picks the suite explicitly (needed for brax environments registered at runtime).

    Args:
        name: the environment's registry name.
        **kwargs: options of the suite's wrapper (:class:`GymnaxEnv`: ``env_params``;
            :class:`BraxEnv`: ``backend``, ``episode_length=1000``;
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
    suite, bare = resolve(name)
    max_steps = kwargs.pop("max_steps", None)
    env = suite.make(bare, **kwargs)
    return env if max_steps is None else env.replace(max_steps=max_steps)


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
    suite = adapter_of_instance(env)
    if suite is None:
        raise TypeError(
            "env must be a gymnax Environment, a brax Env, a jumanji Environment or a "
            f"realax.tasks.Env (got {type(env).__module__}.{type(env).__name__}); to use an "
            "environment by name call realax.tasks.make(name)"
        )
    max_steps = kwargs.pop("max_steps", None)
    out = (suite.wrap or suite.make)(env, **kwargs)
    return out if max_steps is None else out.replace(max_steps=max_steps)
