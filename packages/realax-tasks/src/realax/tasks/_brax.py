"""brax environments behind the :class:`~realax.tasks.Env` interface."""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import Any

import jax.numpy as jnp

from . import _frames
from ._env import Env, EnvSpec, ObsFn, box_bounds, check_episode_length, check_no_env_kwargs
from ._quiet import quiet
from ._suites import EnvInfo, SuiteAdapter, import_suite, register_suite, unknown_name

#: Physics pipelines of brax 0.14 (``brax.envs.base.PipelineEnv``).
BRAX_BACKENDS = ("generalized", "positional", "spring", "mjx")

# The order a backend is picked in when the caller does not choose one.
_PREFERRED = ("positional", "generalized", "spring", "mjx")

# brax has no public function listing its registry: brax.envs offers get_environment and
# register_environment, and the table itself is the private brax.envs._envs. So the names
# brax 0.12-0.14 registers (brax/envs/__init__.py) are listed here; an environment
# registered at runtime with brax.envs.register_environment is not listed, but
# make("brax/<name>") builds it through the public brax.envs.get_environment.
_BUILTIN_NAMES = (
    "ant", "fast", "halfcheetah", "hopper", "humanoid", "humanoidstandup",
    "inverted_pendulum", "inverted_double_pendulum", "pusher", "reacher", "swimmer",
    "walker2d",
)  # fmt: skip


def _get_environment(name: str, backend: str | None, env_kwargs: dict[str, Any], note: bool):
    """Builds brax environment ``name``: with ``backend``, or with the first backend of
    ``_PREFERRED`` it supports (saying so in one line on stderr when ``note``)."""
    envs = import_suite("brax")
    if backend is not None and backend not in BRAX_BACKENDS:
        raise ValueError(f"backend must be one of {BRAX_BACKENDS} (got backend={backend!r})")
    errors = []
    for choice in (backend,) if backend else _PREFERRED:
        try:
            with quiet():
                env = envs.get_environment(name, backend=choice, **env_kwargs)
        except KeyError:
            if name in _BUILTIN_NAMES:  # a KeyError from inside the environment's constructor
                raise
            raise unknown_name(f"brax/{name}", "brax", sorted(_BUILTIN_NAMES), []) from None
        except ValueError as error:
            if "backend" not in str(error).lower():
                raise
            errors.append(error)
            continue
        if backend is None and choice != _PREFERRED[0] and note:
            print(
                f"realax.tasks: brax environment {name!r} does not support the default "
                f"backend {_PREFERRED[0]!r}; using backend={choice!r}.",
                file=sys.stderr,
            )
        return env
    if backend is None:
        raise ValueError(f"brax environment {name!r} supports none of {_PREFERRED}: {errors}")
    raise ValueError(
        f"brax environment {name!r} does not support backend={backend!r} ({errors[0]}); "
        "pass backend='generalized', or leave backend unset to use one it supports"
    ) from errors[0]


def _name_of_class(cls: type) -> str:
    """The registered name of a built-in brax class (``InvertedPendulum`` ->
    ``"inverted_pendulum"``, ``Halfcheetah`` -> ``"halfcheetah"``), else its lowercased name."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", cls.__name__).lower()
    return snake if snake in _BUILTIN_NAMES else cls.__name__.lower()


class BraxEnv(Env):
    """A brax environment (by name or instance) as an :class:`Env`.

    brax environments have no episode limit of their own; ``episode_length`` (brax's
    conventional 1000 by default) sets ``max_steps``, after which ``truncated`` is true.
    ``terminated`` is brax's ``done``.

    Args:
        env: a brax environment name (``realax.tasks.registered_names("brax")``, or one
            registered with ``brax.envs.register_environment``) or a brax ``Env`` instance.
        backend: physics pipeline when ``env`` is a name: one of ``BRAX_BACKENDS``.
            ``None`` (default): ``"positional"``, or, for an environment that refuses it
            (``swimmer``), the first of ``"generalized"``, ``"spring"``, ``"mjx"`` it
            supports, named in a one-line note on stderr.
        episode_length: the episode limit (``max_steps``).
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: optional map applied to every raw observation.
        **env_kwargs: passed to ``brax.envs.get_environment``.

    >>> env = BraxEnv("inverted_pendulum", backend="positional")
    >>> env.obs_shape, env.action_dims, env.max_steps, env.action_high.tolist()
    ((4,), 1, 1000, [3.0])
    """

    suite = "brax"

    def __init__(
        self,
        env: Any,
        *,
        backend: str | None = None,
        episode_length: int = 1000,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        check_episode_length(episode_length)
        if isinstance(env, str):
            name = env
            env = _get_environment(name, backend, env_kwargs, note=True)
        else:
            check_no_env_kwargs("brax", env_kwargs)
            name = _name_of_class(type(env.unwrapped))
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn)
        self.env = env
        self.episode_length = episode_length

    def _build_spec(self) -> EnvSpec:
        action_dims = int(self.env.action_size)
        bounds = box_bounds(-1.0, 1.0, (action_dims,))
        system = getattr(self.env.unwrapped, "sys", None)
        ctrl = getattr(getattr(system, "actuator", None), "ctrl_range", None)
        if ctrl is not None:
            ctrl = jnp.asarray(ctrl, jnp.float32)
            if ctrl.shape == (action_dims, 2) and bool(jnp.all(ctrl[:, 0] < ctrl[:, 1])):
                bounds = ctrl[:, 0], ctrl[:, 1]
        return self._make_spec(
            action_dims=action_dims,
            action_shape=(action_dims,),
            discrete=False,
            bounds=bounds,
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


def _names(envs: ModuleType | None) -> list[str]:
    del envs  # no public listing in brax: see _BUILTIN_NAMES
    return list(_BUILTIN_NAMES)


def _describe(name: str) -> EnvInfo:
    """Builds the environment once (brax can only say its sizes from a loaded model)."""
    env = BraxEnv(_get_environment(name, None, {}, note=False), autoreset=False)
    return EnvInfo(name, "brax", env.obs_shape, env.action_dims, env.discrete)


register_suite(
    SuiteAdapter(
        name="brax",
        module="brax.envs",
        names=_names,
        make=BraxEnv,
        describe=_describe,
        open_registry=True,
        static_names=True,
        render=_frames.brax_frames,
        check_render=_frames.check_brax,
    )
)
