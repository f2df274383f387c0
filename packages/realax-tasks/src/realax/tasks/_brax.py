"""brax environments behind the :class:`~realax.tasks.Env` interface."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from ._env import Env, EnvSpec, ObsFn, box_bounds
from ._suites import import_suite

#: Physics pipelines of brax 0.14 (``brax.envs.base.PipelineEnv``).
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")


class BraxEnv(Env):
    """A brax environment (by name or instance) as an :class:`Env`.

    brax environments have no episode limit of their own; ``episode_length`` (brax's
    conventional 1000 by default) sets ``max_steps``, after which ``truncated`` is true.
    ``terminated`` is brax's ``done``.

    Args:
        env: a brax environment name (``brax.envs._envs``) or a brax ``Env`` instance.
        backend: physics pipeline when ``env`` is a name: one of ``BRAX_BACKENDS``.
        episode_length: the episode limit (``max_steps``).
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: optional map applied to every raw observation.
        **env_kwargs: passed to ``brax.envs.get_environment``.

    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()):  # brax prints optional-import notes
    ...     env = BraxEnv("inverted_pendulum", backend="positional")
    >>> env.obs_shape, env.action_dims, env.max_steps, env.action_high.tolist()
    ((4,), 1, 1000, [3.0])
    """

    suite = "brax"

    def __init__(
        self,
        env: Any,
        *,
        backend: str = "positional",
        episode_length: int = 1000,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        envs = import_suite("brax")
        if not isinstance(episode_length, int) or episode_length < 1:
            raise ValueError(
                f"episode_length must be a positive int (got episode_length={episode_length!r})"
            )
        if isinstance(env, str):
            from ._registry import check_name

            check_name("brax", env)
            if backend not in BRAX_BACKENDS:
                raise ValueError(
                    f"backend must be one of {BRAX_BACKENDS} (got backend={backend!r})"
                )
            name = env
            try:
                env = envs.get_environment(env, backend=backend, **env_kwargs)
            except ValueError as error:
                if "backend" not in str(error).lower():
                    raise
                raise ValueError(
                    f"brax environment {name!r} does not support backend={backend!r} "
                    f"({error}); pass backend='generalized'"
                ) from error
        else:
            if env_kwargs:
                raise TypeError(
                    "env_kwargs are only used when env is a brax name; got an Env instance "
                    f"and env_kwargs={sorted(env_kwargs)}"
                )
            cls = type(env.unwrapped)
            registered = [n for n, c in envs._envs.items() if c is cls]
            name = registered[0] if registered else cls.__name__.lower()
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn)
        self.env = env
        self.episode_length = episode_length

    @property
    def unwrapped(self) -> Any:
        return self.env

    def _build_spec(self) -> EnvSpec:
        obs = self._obs_struct()
        action_dims = int(self.env.action_size)
        low, high = box_bounds(-1.0, 1.0, (action_dims,))
        sys = getattr(self.env.unwrapped, "sys", None)
        ctrl = getattr(getattr(sys, "actuator", None), "ctrl_range", None)
        if ctrl is not None:
            ctrl = jnp.asarray(ctrl, jnp.float32)
            if ctrl.shape == (action_dims, 2) and bool(jnp.all(ctrl[:, 0] < ctrl[:, 1])):
                low, high = ctrl[:, 0], ctrl[:, 1]
        return EnvSpec(
            name=self._name,
            suite=self.suite,
            obs_shape=tuple(obs.shape),
            obs_dtype=obs.dtype,
            action_dims=action_dims,
            action_shape=(action_dims,),
            discrete=False,
            action_low=low,
            action_high=high,
            max_steps=self.episode_length,
        )

    def _reset(self, key):
        state = self.env.reset(key)
        return state.obs, state

    def _step(self, key, inner, action):
        del key
        state = self.env.step(inner, action)
        info = {"metrics": state.metrics}
        terminated = state.done > 0
        return state.obs, state, state.reward, terminated, jnp.zeros((), bool), info


def brax_names() -> list[str]:
    """All registered brax environment names (empty if brax is not installed)."""
    try:
        return list(import_suite("brax")._envs)
    except ImportError:
        return []
