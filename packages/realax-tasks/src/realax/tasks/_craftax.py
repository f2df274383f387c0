"""Craftax environments (Craftax-Classic and Craftax, symbolic observations) behind the
:class:`~realax.tasks.Env` interface, and their frames (Craftax's own pixel renderer)."""

from __future__ import annotations

import contextlib
import io
import os
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from . import _frames
from ._env import Env, EnvSpec, ObsFn, check_no_env_kwargs
from ._suites import EnvInfo, SuiteAdapter, check_name, import_suite, register_suite

if TYPE_CHECKING:
    import numpy as np

# Craftax has no registry to list: ``craftax_env.make_craftax_env_from_name`` accepts a fixed
# set of names (the tests check these against it). The pixel variants are left out: their
# observations are the renderer's images, which need the texture processing of rendering.
NAMES = ("Craftax-Classic-Symbolic-v1", "Craftax-Symbolic-v1")


def _classic(env: Any) -> bool:
    return type(env).__module__.startswith("craftax.craftax_classic")


class CraftaxEnv(Env):
    """A Craftax environment (by name or instance) as an :class:`Env`.

    Observations are Craftax's symbolic vectors (float32; Craftax-Classic: 1345 entries),
    actions one of 17 (Craftax-Classic) or 43 (Craftax). An episode ends at death
    (``terminated``) or at the environment's ``max_timesteps`` (10,000: ``truncated``).
    ``info`` holds Craftax's achievements of the step.

    Args:
        env: ``"Craftax-Classic-Symbolic-v1"`` or ``"Craftax-Symbolic-v1"``, or an instance
            of one of Craftax's environment classes.
        env_params: Craftax's ``EnvParams`` (default: the environment's defaults).
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: optional map applied to every observation.
        **env_kwargs: fields of the default ``EnvParams`` to change (``max_timesteps=500``).

    (Not run as a doctest: tracing Craftax takes seconds.)

    >>> env = CraftaxEnv("Craftax-Classic-Symbolic-v1")  # doctest: +SKIP
    >>> env.obs_shape, env.action_dims, env.max_steps  # doctest: +SKIP
    ((1345,), 17, 10000)
    """

    suite = "craftax"

    def __init__(
        self,
        env: Any,
        env_params: Any = None,
        *,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        craftax_env = import_suite("craftax")
        if isinstance(env, str):
            check_name("craftax", env)
            name = env
            env = craftax_env.make_craftax_env_from_name(name, auto_reset=False)
        else:
            name = getattr(env, "name", type(env).__name__)
        params = env.default_params if env_params is None else env_params
        if env_kwargs:
            if env_params is not None:
                check_no_env_kwargs("craftax", env_kwargs)
            params = params.replace(**env_kwargs)
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn)
        self.env = env
        self.env_params = params

    def _build_spec(self) -> EnvSpec:
        return self._make_spec(
            action_dims=int(self.env.num_actions),
            action_shape=(),
            discrete=True,
            bounds=None,
            max_steps=int(self.env_params.max_timesteps),
        )

    def _reset(self, key):
        return self.env.reset_env(key, self.env_params)

    def _step(self, key, inner, action):
        obs, inner, reward, done, info = self.env.step_env(key, inner, action, self.env_params)
        timed_out = inner.timestep >= self.env_params.max_timesteps
        terminated = jnp.logical_and(done, jnp.logical_not(timed_out))
        return obs, inner, reward, terminated, timed_out, dict(info)


def _describe(name: str) -> EnvInfo:
    """Sizes from the environment's spaces, without tracing it."""
    env = import_suite("craftax").make_craftax_env_from_name(name, auto_reset=False)
    params = env.default_params
    shape = tuple(int(d) for d in env.observation_space(params).shape)
    return EnvInfo(name, "craftax", shape, int(env.num_actions), True)


# ---------------------------------------------------------------------------- frames
_BLOCK_PIXELS = 16  # Craftax's BLOCK_PIXEL_SIZE_IMG: 16 pixels per block


def _renderer_module(env: Any) -> Any:
    import importlib

    package = "craftax_classic" if _classic(env.unwrapped) else "craftax"
    return importlib.import_module(f"craftax.{package}")


def check_craftax(env: Any) -> None:
    """Raises if Craftax's pixel renderer cannot run here: pillow writes the GIF, and Craftax
    writes its processed textures (once, about a minute) next to its own files."""
    _frames._require("PIL", "pillow", "render", f"rendering craftax {env.spec.name!r}")
    import importlib

    module = _renderer_module(env)
    cache = importlib.import_module(f"{module.__name__}.constants").TEXTURE_CACHE_FILE
    folder = os.path.dirname(cache)
    if not os.path.exists(cache) and not os.access(folder, os.W_OK):
        raise RuntimeError(
            f"rendering craftax {env.spec.name!r}: Craftax processes its textures on first use "
            f"and saves them to {cache}, but {folder} is not writable; render once as a user "
            "who can write there (or install Craftax into a virtual environment)"
        )


def craftax_frames(env: Any, states: list[Any]) -> list[np.ndarray]:
    """Frames of Craftax states, drawn by Craftax's own pixel renderer (16 pixels a block);
    the first call processes Craftax's textures (cached by Craftax on disk)."""
    import importlib

    import numpy as np

    module = _renderer_module(env)
    renderer = importlib.import_module(f"{module.__name__}.renderer")
    with contextlib.redirect_stdout(io.StringIO()):  # Craftax prints about its texture cache
        draw = renderer.make_craftax_pixel_renderer(_BLOCK_PIXELS)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    pixels = np.asarray(jax.jit(jax.vmap(draw))(stacked))
    return list(np.clip(pixels, 0, 255).astype(np.uint8))


register_suite(
    SuiteAdapter(
        name="craftax",
        names=lambda module: list(NAMES),
        make=CraftaxEnv,
        describe=_describe,
        static_names=True,
        module="craftax.craftax_env",
        render=craftax_frames,
        check_render=check_craftax,
    )
)
