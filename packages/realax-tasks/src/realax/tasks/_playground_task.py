"""``PlaygroundTask``: a MuJoCo Playground environment as a fitness function of policy
parameters (a module apart from ``_playground``, which the registry imports: this one
imports ``_task``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._env import Env
from ._playground import PlaygroundEnv
from ._suite_tasks import _options
from ._task import EnvTask, check_max_steps


class PlaygroundTask(EnvTask):
    """A MuJoCo Playground environment as a fitness function of policy parameters.

    Args:
        env: a Playground name (e.g. ``"CartpoleBalance"``), a ``mujoco_playground.MjxEnv``
            or a :class:`PlaygroundEnv`.
        max_steps: episode length (default: the environment's ``episode_length``, 1000 for
            the dm_control suite).
        policy: a policy module; ``params`` are its variables. A callable that is not a
            flax module is taken as ``model_factory``.
        model_factory: alternatively, ``params -> model``.
        impl: the MJX implementation when ``env`` is a name (default ``"jax"``, see
            :class:`PlaygroundEnv`).
        data_fn: map applied to the trajectory dict in trajectory mode.
        env_kwargs: other keyword arguments of :class:`PlaygroundEnv` (``config_overrides``,
            ``render_size``, ``obs_fn``) when ``env`` is a name.
        obs_norm, obs_clip, mode, compact: keyword options, as in :class:`EnvTask`.

    >>> import jax, jax.numpy as jnp, realax.tasks as rt
    >>> policy = rt.MLPPolicy(action_dims=1, width=8, depth=1)
    >>> task = rt.PlaygroundTask("CartpoleBalance", 20, policy=policy)  # doctest: +SKIP
    >>> params, _ = rt.make_model_factory(policy, jnp.zeros(5), jax.random.key(0))
    >>> fitness, info = jax.jit(task)(params, jax.random.key(1))  # doctest: +SKIP
    >>> int(info["episode_length"])  # doctest: +SKIP
    20
    """

    def __init__(
        self,
        env: Any,
        max_steps: int | None = None,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        impl: str | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool = False,
    ):
        if not isinstance(env, str) and (impl is not None or env_kwargs):
            raise ValueError(
                "PlaygroundTask: impl and env_kwargs apply when env is a name (got "
                f"{type(env).__name__}); build the environment with "
                "realax.tasks.PlaygroundEnv(name, impl=..., ...) instead"
            )
        if not isinstance(env, Env):
            kwargs = dict(env_kwargs or {})
            if impl is not None:
                kwargs["impl"] = impl
            if max_steps is not None:
                kwargs["episode_length"] = check_max_steps("PlaygroundTask", max_steps)
            env = PlaygroundEnv(env, autoreset=False, **kwargs)
        super().__init__(env, **_options(locals()))
