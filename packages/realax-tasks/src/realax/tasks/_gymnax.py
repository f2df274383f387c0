"""gymnax environments behind the :class:`~realax.tasks.Env` interface."""

from __future__ import annotations

import glob
import math
import os
from types import ModuleType
from typing import Any

import jax.numpy as jnp

from . import _frames
from ._env import Env, EnvSpec, ObsFn, box_bounds, check_no_env_kwargs
from ._suites import EnvInfo, SuiteAdapter, check_name, import_suite, register_suite


class GymnaxEnv(Env):
    """A gymnax 1.0 environment (by id or instance) as an :class:`Env`.

    Args:
        env: a gymnax id (``gymnax.registered_envs``) or a gymnax ``Environment`` instance.
        env_params: the environment's ``EnvParams``; defaults to ``env.default_params``.
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: optional map applied to every raw observation.
        **env_kwargs: passed to ``gymnax.make`` when ``env`` is an id.

    >>> env = GymnaxEnv("CartPole-v1")
    >>> env.obs_shape, env.action_dims, env.discrete, env.max_steps
    ((4,), 2, True, 500)
    """

    suite = "gymnax"

    def __init__(
        self,
        env: Any,
        env_params: Any = None,
        *,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        gymnax = import_suite("gymnax")
        if isinstance(env, str):
            check_name("gymnax", env)
            try:
                env, default_params = gymnax.make(env, **env_kwargs)
            except OSError as error:  # e.g. MNISTBandit-bsuite downloads MNIST on creation
                raise RuntimeError(
                    f"creating gymnax environment {env!r} needs data it could not fetch "
                    f"({error}); run it once with network access so the data is cached"
                ) from error
            name = env.name if hasattr(env, "name") else type(env).__name__
        else:
            check_no_env_kwargs("gymnax", env_kwargs)
            default_params = env.default_params
            name = env.name
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn)
        self.env = env
        self.env_params = default_params if env_params is None else env_params

    def _build_spec(self) -> EnvSpec:
        space = self.env.action_space(self.env_params)
        action_dims, action_shape, discrete = _action_space(self._name, space)
        return self._make_spec(
            action_dims=action_dims,
            action_shape=action_shape,
            discrete=discrete,
            bounds=None if discrete else box_bounds(space.low, space.high, action_shape),
            max_steps=int(self.env_params.max_steps_in_episode),
        )

    def _reset(self, key):
        return self.env.reset_env(key, self.env_params)

    def _step(self, key, inner, action):
        obs, inner, reward, terminated, info = self.env.step_env(
            key, inner, action, self.env_params
        )
        truncated = self.env.is_truncated(inner, self.env_params)
        return obs, inner, reward, jnp.asarray(terminated), jnp.asarray(truncated), info


def _action_space(name: str, space: Any) -> tuple[Any, tuple[int, ...], bool]:
    """``(action_dims, action_shape, discrete)`` of a gymnax Discrete or Box action space."""
    spaces = import_suite("gymnax").environments.spaces
    if isinstance(space, spaces.Discrete):
        return int(space.n), (), True
    if isinstance(space, spaces.Box):
        shape = tuple(int(d) for d in space.shape)
        return math.prod(shape), shape, False
    raise TypeError(
        f"gymnax environment {name!r} has a {type(space).__name__} action space; only "
        "Discrete and Box action spaces are supported."
    )


def _describe(name: str) -> EnvInfo:
    """Dimensions from the environment's spaces (gymnax builds environments cheaply)."""
    env, params = import_suite("gymnax").make(name)
    action_dims, _, discrete = _action_space(name, env.action_space(params))
    obs_shape = tuple(int(d) for d in env.observation_space(params).shape)
    return EnvInfo(name, "gymnax", obs_shape, action_dims, discrete)


# Where gymnax 1.0 keeps MNIST (the default ``directory`` of gymnax.utils.load_mnist, which
# MNISTBandit-bsuite's constructor calls): read here as a constant so that checking for it
# does not import gymnax (a test compares it with gymnax's signature).
MNIST_DIR = "/tmp/mnist"


def _download(name: str) -> str | None:
    """MNISTBandit-bsuite downloads MNIST when created, unless gymnax's copy is on disk."""
    if name != "MNISTBandit-bsuite":
        return None
    if len(glob.glob(os.path.join(MNIST_DIR, "*.gz"))) >= 4:  # the four MNIST files
        return None
    return (
        f"Downloads the MNIST data set into {MNIST_DIR} when created, which a listing could "
        f"not fetch without the network; run realax.tasks.make({name!r}) once while online."
    )


def _names(gymnax: ModuleType) -> list[str]:
    return list(gymnax.registered_envs)


register_suite(
    SuiteAdapter(
        name="gymnax",
        names=_names,
        make=GymnaxEnv,
        describe=_describe,
        download=_download,
        render=_frames.gymnax_frames,
        check_render=_frames.check_gymnax,
    )
)
