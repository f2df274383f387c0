"""The suite tasks: :class:`EnvTask` built from a gymnax, brax or jumanji name or instance.

Each is a thin wrapper: it builds the suite's :class:`Env` from its own positional
arguments (kept from the original realax), then hands every task option to
:class:`EnvTask`. ``EnvTask.from_name(name, ...)`` does the same for any suite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from ._brax import BraxEnv
from ._env import Env
from ._gymnax import GymnaxEnv
from ._jumanji import JumanjiEnv
from ._policy import is_model_factory
from ._task import EnvTask, check_max_steps

Array = jax.Array

_OPTIONS: tuple[str, ...] = ("policy", "model_factory", "max_steps", "data_fn")
_OPTIONS += ("obs_norm", "obs_clip", "mode", "compact")


def _gymnax_original_order(args: dict[str, Any]) -> None:
    """The original's positional ``GymnaxTask(env, model_factory, env_params, data_fn)``: the
    values that landed one slot later (env params in ``model_factory``, data_fn in
    ``env_params``) are moved back, when their types say so."""
    if (
        is_model_factory(args["policy"])
        and args["model_factory"] is not None
        and not callable(args["model_factory"])
        and (args["env_params"] is None or callable(args["env_params"]))
        and args["data_fn"] is None
    ):
        args["model_factory"], args["env_params"], args["data_fn"] = (
            None,
            args["model_factory"],
            args["env_params"],
        )


def _brax_original_order(args: dict[str, Any]) -> None:
    """The original's positional ``BraxTask(env, max_steps, model_factory, backend, data_fn,
    env_kwargs)``: backend, data_fn and env_kwargs landed one slot later; moved back."""
    if (
        is_model_factory(args["policy"])
        and isinstance(args["model_factory"], str)
        and (args["backend"] is None or callable(args["backend"]))
        and (args["data_fn"] is None or isinstance(args["data_fn"], dict))
        and args["env_kwargs"] is None
    ):
        args["model_factory"], args["backend"], args["data_fn"], args["env_kwargs"] = (
            None,
            args["model_factory"],
            args["backend"],
            args["data_fn"],
        )


def _options(args: dict[str, Any]) -> dict[str, Any]:
    """The :class:`EnvTask` options among a wrapper's arguments (its ``locals()``)."""
    return {name: args[name] for name in _OPTIONS}


class GymnaxTask(EnvTask):
    """A gymnax environment as a fitness function of policy parameters.

    Args:
        env: a gymnax id (e.g. ``"CartPole-v1"``), a gymnax ``Environment`` instance or a
            :class:`GymnaxEnv`.
        policy: a policy module (see :class:`BasePolicy`); ``params`` are its variables. A
            callable that is not a flax module is taken as ``model_factory`` (the
            original's ``GymnaxTask(env, model_factory)``).
        model_factory: alternatively, ``params -> model`` (see :func:`make_model_factory`).
        env_params: gymnax ``EnvParams`` (default: the environment's defaults).
        max_steps: step limit of a rollout (default: the environment's episode limit).
        data_fn: map applied to the trajectory dict in trajectory mode.
        obs_norm, obs_clip, mode, compact: keyword options, as in :class:`EnvTask`.

    >>> import jax, jax.numpy as jnp, realax.tasks as rt
    >>> task = rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True))
    >>> params, _ = rt.make_model_factory(task.policy, jnp.zeros(4), jax.random.key(0))
    >>> fitness, info = jax.jit(task)(params, jax.random.key(1))
    >>> bool(fitness == info["episode_length"])  # CartPole pays 1 per step
    True
    """

    def __init__(
        self,
        env: Any,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        env_params: Any = None,
        max_steps: int | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool | str = "auto",
    ):
        args = dict(locals())  # a copy: edited below
        _gymnax_original_order(args)
        env_params = args["env_params"]
        if not isinstance(env, Env):
            env = GymnaxEnv(env, env_params, autoreset=False)
        elif env_params is not None:
            raise ValueError("GymnaxTask: env_params can't be combined with an Env instance")
        super().__init__(env, **_options(args))


class BraxTask(EnvTask):
    """A brax environment as a fitness function of policy parameters.

    Args:
        env: a brax environment name (e.g. ``"inverted_pendulum"``), a brax ``Env`` or a
            :class:`BraxEnv`.
        max_steps: episode length (brax environments have no limit of their own).
        policy: a policy module; ``params`` are its variables. A callable that is not a
            flax module is taken as ``model_factory`` (the original's positional call).
        model_factory: alternatively, ``params -> model``.
        backend: brax physics pipeline (``"positional"``, ``"generalized"``, ``"spring"``,
            ``"mjx"``) when ``env`` is a name; ``None`` (default): ``"positional"``, or one
            the environment supports if it refuses it (see :class:`BraxEnv`).
        data_fn: map applied to the trajectory dict in trajectory mode.
        env_kwargs: extra keyword arguments of the brax environment's constructor.
        obs_norm, obs_clip, mode, compact: keyword options, as in :class:`EnvTask`.

    >>> import jax, jax.numpy as jnp, realax.tasks as rt
    >>> policy = rt.MLPPolicy(action_dims=1, action_low=-3.0, action_high=3.0)
    >>> task = rt.BraxTask("inverted_pendulum", 50, policy=policy)
    >>> params, _ = rt.make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
    >>> fitness, traj = jax.jit(task.rollout)(params, jax.random.key(0))
    >>> traj["obs"].shape, traj["actions"].shape, bool(traj["rewards"].sum() == fitness)
    ((50, 4), (50, 1), True)
    """

    def __init__(
        self,
        env: Any,
        max_steps: int = 1000,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        backend: str | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool | str = "auto",
    ):
        args = dict(locals())  # a copy: edited below
        _brax_original_order(args)
        if not isinstance(env, Env):
            kwargs = dict(args["env_kwargs"] or {})
            if isinstance(env, str):
                kwargs["backend"] = args["backend"]
            episode_length = check_max_steps("BraxTask", max_steps)
            env = BraxEnv(env, episode_length=episode_length, autoreset=False, **kwargs)
        super().__init__(env, **_options(args))


class JumanjiTask(EnvTask):
    """A jumanji environment as a fitness function of policy parameters.

    Observations are flattened to one vector (see :class:`JumanjiEnv`).

    Args:
        env: a jumanji id (e.g. ``"Snake-v1"``), a jumanji ``Environment`` or a
            :class:`JumanjiEnv`.
        max_steps: step limit of a rollout (default: the environment's ``time_limit``, or
            1000 for environments without one).
        policy: a policy module; ``params`` are its variables. A callable that is not a
            flax module is taken as ``model_factory`` (the original's positional call).
        model_factory: alternatively, ``params -> model``.
        data_fn: map applied to the trajectory dict in trajectory mode.
        env_kwargs: keyword arguments of ``jumanji.make`` (e.g. ``num_rows=6``).
        obs_fn: raw observation -> array (default: a flattening chosen per environment).
        obs_norm, obs_clip, mode, compact: keyword options, as in :class:`EnvTask`.

    >>> import jax, jax.numpy as jnp, realax.tasks as rt
    >>> policy = rt.MLPPolicy(action_dims=4, discrete=True, width=8, depth=1)
    >>> task = rt.JumanjiTask("Game2048-v1", 20, policy=policy)
    >>> task.env.obs_shape
    (20,)
    >>> params, _ = rt.make_model_factory(policy, jnp.zeros(20), jax.random.key(0))
    >>> fitness, info = jax.jit(task)(params, jax.random.key(1))
    >>> 1 <= int(info["episode_length"]) <= 20
    True
    """

    def __init__(
        self,
        env: Any,
        max_steps: int | None = None,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
        obs_fn: Callable[[Any], Array] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool | str = "auto",
    ):
        if not isinstance(env, Env):
            env = JumanjiEnv(env, autoreset=False, obs_fn=obs_fn, **dict(env_kwargs or {}))
        super().__init__(env, **_options(locals()))
