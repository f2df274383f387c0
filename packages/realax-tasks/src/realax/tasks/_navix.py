"""Navix environments behind the :class:`~realax.tasks.Env` interface; frames by navix's own
RGB renderer (``navix.observations.rgb``)."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from . import _frames
from ._env import Env, EnvSpec, ObsFn, check_episode_length, check_no_env_kwargs
from ._suites import EnvInfo, SuiteAdapter, check_name, import_suite, register_suite
from ._xminigrid import flat_float

if TYPE_CHECKING:
    import numpy as np

_TRUNCATION, _TERMINATION = 1, 2  # navix's StepType values


def _action_count(space: Any) -> int:
    return int(space.maximum) - int(space.minimum) + 1


class NavixEnv(Env):
    """A navix environment (by id or instance) as an :class:`Env`.

    Observations are navix's default (symbolic: ``height x width x 3``) flattened to float32
    (``obs_fn`` replaces it); seven actions. ``terminated``: navix's termination (goal
    reached, lava, ...); ``truncated``: ``episode_length`` steps.

    Args:
        env: a navix id (``navix.registry()``) or a navix ``Environment``.
        episode_length: navix's ``max_steps`` when built by id (navix's default: 100). A
            longer ``max_steps`` of :func:`realax.tasks.make` does not lengthen navix's own
            limit; set this instead.
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: raw observation -> array (default: flattened to float32).
        **env_kwargs: passed to ``navix.make``.

    (Not run as a doctest: importing navix takes ~10 s.)

    >>> env = NavixEnv("Navix-Empty-5x5-v0")  # doctest: +SKIP
    >>> env.obs_shape, env.action_dims, env.max_steps  # doctest: +SKIP
    ((75,), 7, 100)
    """

    suite = "navix"

    def __init__(
        self,
        env: Any,
        *,
        episode_length: int = 100,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        navix = import_suite("navix")
        check_episode_length(episode_length)
        if isinstance(env, str):
            check_name("navix", env)
            name = env
            env = navix.make(env, max_steps=episode_length, **env_kwargs)
        else:
            check_no_env_kwargs("navix", env_kwargs)
            name = type(env).__name__
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn or flat_float)
        self.env = env

    def _build_spec(self) -> EnvSpec:
        return self._make_spec(
            action_dims=_action_count(self.env.action_space),
            action_shape=(),
            discrete=True,
            bounds=None,
            max_steps=int(self.env.max_steps),
        )

    def _reset(self, key):
        timestep = self.env.reset(key)
        return timestep.observation, timestep

    def _step(self, key, inner, action):
        del key  # navix keeps its key in the state
        # navix's public ``step`` resets inside a lax.cond when the episode had ended, which
        # under vmap runs the reset at every step; realax's Env resets itself, so the
        # transition alone is called
        timestep = self.env._step(inner, action)
        terminated = timestep.step_type == _TERMINATION
        truncated = timestep.step_type == _TRUNCATION
        return timestep.observation, timestep, timestep.reward, terminated, truncated, {}


def _describe(name: str) -> EnvInfo:
    """Sizes from the environment's spaces, without tracing it."""
    env = import_suite("navix").make(name)
    size = 1
    for d in env.observation_space.shape:
        size *= int(d)
    return EnvInfo(name, "navix", (size,), _action_count(env.action_space), True)


def _names(navix: ModuleType) -> list[str]:
    return sorted(navix.registry())


# ---------------------------------------------------------------------------- frames
def check_navix(env: Any) -> None:
    """Raises if the GIF cannot be written (navix draws its frames with JAX)."""
    _frames._require("PIL", "pillow", "render", f"rendering navix {env.spec.name!r}")


def navix_frames(env: Any, states: list[Any]) -> list[np.ndarray]:
    """Frames of navix timesteps, drawn by navix's RGB observation of the full grid."""
    import numpy as np

    rgb = import_suite("navix").observations.rgb
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *(s.state for s in states))
    return list(np.asarray(jax.jit(jax.vmap(rgb))(stacked), np.uint8))


register_suite(
    SuiteAdapter(
        name="navix",
        names=_names,
        make=NavixEnv,
        describe=_describe,
        render=navix_frames,
        check_render=check_navix,
    )
)
