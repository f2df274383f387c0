"""The uniform functional environment interface shared by tasks and RL trainers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array
ObsFn = Callable[[Any], Array]


class EnvState(struct.PyTreeNode):
    """State of an :class:`Env`: the suite's own state plus the episode step counter.

    Attributes:
        inner: the wrapped environment's state (gymnax ``EnvState``, brax ``State`` or
            jumanji state), untouched.
        t: int32 number of steps taken in the current episode.
    """

    inner: Any
    t: Array


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Static description of an environment's observation and action spaces.

    Attributes:
        name: the environment's name (registry id for named environments).
        suite: ``"gymnax"``, ``"brax"`` or ``"jumanji"``.
        obs_shape: shape of one observation as returned by ``reset``/``step``.
        obs_dtype: dtype of the observation.
        action_dims: number of discrete actions (``int``), number of categories per
            component for multi-discrete actions (``tuple`` of ints), or the flat size
            of a continuous action (``int``).
        action_shape: shape of one action as the environment consumes it.
        discrete: whether actions are (multi-)discrete.
        action_low: lower bounds of continuous actions (``action_shape``), else ``None``.
        action_high: upper bounds of continuous actions, else ``None``.
        max_steps: episode limit: the step at which ``truncated`` becomes true.
    """

    name: str
    suite: str
    obs_shape: tuple[int, ...]
    obs_dtype: Any
    action_dims: int | tuple[int, ...]
    action_shape: tuple[int, ...]
    discrete: bool
    action_low: jax.Array | None
    action_high: jax.Array | None
    max_steps: int

    @property
    def obs_dims(self) -> int:
        """Size of the flattened observation."""
        return math.prod(self.obs_shape)


class Env:
    """A functional, jittable, vmappable environment with one interface for every suite.

    Build one with :func:`realax.tasks.make` (by name) or :func:`realax.tasks.wrap` (from a
    gymnax, brax or jumanji instance). All methods are pure functions of their arguments, so
    ``jax.vmap(env.reset)(keys)`` and ``jax.vmap(env.step)(keys, states, actions)`` batch
    environments.

    ``step`` returns gymnax-1.0-style outputs for every suite:
    ``(obs, state, reward, terminated, truncated, info)``. ``terminated`` is a natural end
    of the episode (bootstrap with zero), ``truncated`` means the step counter reached
    ``max_steps`` (or the suite signalled a time-out). With ``autoreset=True`` (the default),
    a step that ends the episode returns the first observation and state of a fresh episode
    and puts the last observation of the finished one in ``info["final_obs"]``; with
    ``autoreset=False`` the ended state is returned as is (cheaper when the caller stops at
    the end of the episode, as the tasks do).

    Subclasses implement ``_reset(key) -> (raw_obs, inner)`` and
    ``_step(key, inner, action) -> (raw_obs, inner, reward, terminated, truncated, info)``.

    >>> import realax.tasks as rt
    >>> env = rt.make("CartPole-v1")
    >>> obs, state = env.reset(jax.random.key(0))
    >>> obs, state, r, term, trunc, info = env.step(jax.random.key(1), state, 1)
    >>> obs.shape, float(r), bool(term), bool(trunc), int(state.t)
    ((4,), 1.0, False, False, 1)
    """

    suite: str = ""
    env: Any  # the suite's own environment (set by each suite wrapper)

    def __init__(self, *, name: str, autoreset: bool = True, obs_fn: ObsFn | None = None):
        self._name = name
        self.autoreset = bool(autoreset)
        self.obs_fn = obs_fn
        self._spec: EnvSpec | None = None
        self._max_steps_override: int | None = None

    # ------------------------------------------------------------------ spec
    @property
    def spec(self) -> EnvSpec:
        """The environment's :class:`EnvSpec` (computed once, from its spaces)."""
        if self._spec is None:
            # the spec holds concrete host values (bounds, sizes), also when first asked for
            # while a rollout is being traced
            with jax.ensure_compile_time_eval():
                spec = self._build_spec()
            override = self._max_steps_override
            if override is not None:
                spec = dataclasses.replace(spec, max_steps=override)
            self._spec = spec
        return self._spec

    def _build_spec(self) -> EnvSpec:  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_spec(
        self,
        *,
        action_dims: int | tuple[int, ...],
        action_shape: tuple[int, ...],
        discrete: bool,
        bounds: tuple[jax.Array, jax.Array] | None,
        max_steps: int,
    ) -> EnvSpec:
        """The :class:`EnvSpec` of this environment's observation and the given actions."""
        obs = self._obs_struct()
        low, high = bounds if bounds is not None else (None, None)
        return EnvSpec(
            name=self._name,
            suite=self.suite,
            obs_shape=tuple(obs.shape),
            obs_dtype=obs.dtype,
            action_dims=action_dims,
            action_shape=action_shape,
            discrete=discrete,
            action_low=low,
            action_high=high,
            max_steps=max_steps,
        )

    def _obs_struct(self) -> jax.ShapeDtypeStruct:
        obs = jax.eval_shape(lambda k: self._observe(self._reset(k)[0]), jax.random.key(0))
        if not isinstance(obs, jax.ShapeDtypeStruct):
            raise TypeError(
                f"{self.suite} environment {self._name!r} returns structured observations "
                f"({jax.tree.structure(obs)}); pass obs_fn= (a function mapping the raw "
                "observation to one array) when creating it"
            )
        return obs

    name = property(lambda self: self.spec.name)
    obs_shape = property(lambda self: self.spec.obs_shape)
    obs_dims = property(lambda self: self.spec.obs_dims)
    action_dims = property(lambda self: self.spec.action_dims)
    action_shape = property(lambda self: self.spec.action_shape)
    discrete = property(lambda self: self.spec.discrete)
    action_low = property(lambda self: self.spec.action_low)
    action_high = property(lambda self: self.spec.action_high)
    max_steps = property(lambda self: self.spec.max_steps)

    @property
    def unwrapped(self) -> Any:
        """The wrapped suite environment (``self.env`` of the suite wrappers)."""
        return self.env

    def replace(self, **changes: Any) -> Env:
        """A copy with some constructor options changed (e.g. ``autoreset=False``)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        for k, v in changes.items():
            if k not in ("autoreset", "obs_fn", "max_steps"):
                raise TypeError(f"Env.replace got an unexpected option {k!r}")
            if k == "max_steps":
                if not isinstance(v, int) or v < 1:
                    raise ValueError(f"max_steps must be a positive int (got max_steps={v!r})")
                new._max_steps_override = v
            else:
                setattr(new, k, v)
        new._spec = None
        return new

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"{type(self).__name__}(name={s.name!r}, obs_shape={s.obs_shape}, "
            f"action_dims={s.action_dims}, discrete={s.discrete}, max_steps={s.max_steps}, "
            f"autoreset={self.autoreset})"
        )

    # ------------------------------------------------------------------ dynamics
    def _observe(self, raw_obs: Any) -> Any:
        return raw_obs if self.obs_fn is None else self.obs_fn(raw_obs)

    def _reset(self, key: Array) -> tuple[Any, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _step(self, key: Array, inner: Any, action: Array):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_action(self, action: Array) -> None:
        spec = self.spec
        if action.size != math.prod(spec.action_shape):
            kind = "discrete" if spec.discrete else "continuous"
            raise ValueError(
                f"{spec.suite} environment {spec.name!r} takes {kind} actions of shape "
                f"{spec.action_shape} (action_dims={spec.action_dims}); got an action of shape "
                f"{action.shape}. For batches of environments, jax.vmap env.step."
            )

    def _prepare_action(self, action: Any) -> Array:
        spec = self.spec
        action = jnp.asarray(action)
        self._check_action(action)
        if spec.discrete:
            return action.astype(jnp.int32).reshape(spec.action_shape)
        return action.astype(jnp.float32).reshape(spec.action_shape)

    def reset(self, key: Array) -> tuple[Array, EnvState]:
        """Starts an episode.

        Args:
            key: a PRNG key.

        Returns:
            ``(obs, state)``.
        """
        raw, inner = self._reset(key)
        return self._observe(raw), EnvState(inner=inner, t=jnp.zeros((), jnp.int32))

    def step(
        self, key: Array, state: EnvState, action: Any
    ) -> tuple[Array, EnvState, Array, Array, Array, dict[str, Any]]:
        """Advances the environment by one step.

        Args:
            key: a PRNG key (used by stochastic dynamics and by the automatic reset).
            state: the :class:`EnvState` returned by ``reset``/``step``.
            action: an int (discrete), an int vector (multi-discrete) or a float array with
                ``action_dims`` entries (continuous; reshaped to ``action_shape``).

        Returns:
            ``(obs, state, reward, terminated, truncated, info)`` with ``reward`` float32 and
            ``terminated``/``truncated`` boolean scalars.
        """
        key_step, key_reset = jax.random.split(key)
        raw, inner, reward, terminated, truncated, info = self._step(
            key_step, state.inner, self._prepare_action(action)
        )
        t = state.t + 1
        terminated = jnp.asarray(terminated).astype(bool)
        truncated = jnp.logical_or(jnp.asarray(truncated).astype(bool), t >= self.max_steps)
        reward = jnp.asarray(reward, jnp.float32)
        obs = self._observe(raw)
        info = dict(info)
        if self.autoreset:
            done = jnp.logical_or(terminated, truncated)
            raw_r, inner_r = self._reset(key_reset)
            obs_r = self._observe(raw_r)
            info["final_obs"] = obs
            pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)
            obs, inner = pick(obs_r, obs), pick(inner_r, inner)
            t = jnp.where(done, 0, t)
        return obs, EnvState(inner=inner, t=t), reward, terminated, truncated, info

    def sample_action(self, key: Array) -> Array:
        """A uniformly random valid action (useful for exploration and tests)."""
        spec = self.spec
        if spec.discrete:
            n = jnp.broadcast_to(jnp.asarray(spec.action_dims), spec.action_shape)
            return jax.random.randint(key, spec.action_shape, 0, n, jnp.int32)
        assert spec.action_low is not None and spec.action_high is not None
        low = jnp.where(jnp.isfinite(spec.action_low), spec.action_low, -1.0)
        high = jnp.where(jnp.isfinite(spec.action_high), spec.action_high, 1.0)
        return jax.random.uniform(key, spec.action_shape, minval=low, maxval=high)


def check_episode_length(episode_length: Any) -> int:
    """``episode_length`` if it is a positive int, else a ``ValueError`` saying so."""
    if (
        isinstance(episode_length, bool)
        or not isinstance(episode_length, int)
        or episode_length < 1
    ):
        raise ValueError(
            f"episode_length must be a positive int (got episode_length={episode_length!r})"
        )
    return episode_length


def check_no_env_kwargs(suite: str, env_kwargs: dict[str, Any]) -> None:
    """The suite constructor's keywords only apply when an environment is built by name."""
    if env_kwargs:
        raise TypeError(
            f"env_kwargs are only used when env is a {suite} name; got an environment "
            f"instance and env_kwargs={sorted(env_kwargs)}"
        )


def box_bounds(low: Any, high: Any, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Broadcasts scalar or array bounds to ``shape`` as float32 arrays."""
    lo = jnp.broadcast_to(jnp.asarray(low, jnp.float32), shape)
    hi = jnp.broadcast_to(jnp.asarray(high, jnp.float32), shape)
    return lo, hi
