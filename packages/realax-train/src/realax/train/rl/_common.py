"""Shared plumbing of the RL trainers: state, environments, agents, evaluation, devices."""

from __future__ import annotations

import inspect
import numbers
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import realax.tasks as rt
from flax import struct
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from .._base import (
    BaseTrainer,
    as_typed_key,
    check_bool,
    check_logger,
    check_n_devices,
    check_positive_int,
    key_batch_size,
)
from .._progress import ProgressBar

AXIS = "devices"

__all__ = ["RLState", "default_rl_metrics"]


class RLState(struct.PyTreeNode):
    """State of an RL trainer run: everything needed to continue it bit-identically.

    Attributes:
        agent: the agent (a PyTreeNode from realax.agents: parameters, optimiser states, key).
        env_state: batched environment states, leading axis ``num_envs``.
        obs: last observations ``(num_envs, *obs_shape)``.
        episode_return: running return of each environment's current episode.
        episode_length: running length of each environment's current episode.
        eval_return: mean return of the latest greedy evaluation (NaN before the first).
        env_steps: int32 number of environment transitions collected so far (all envs).
        step: int32 number of completed train steps.
        key: typed PRNG key; train step ``t`` uses ``jax.random.fold_in(key, t)``.
        buffer: the `ReplayBuffer` of an off-policy run, else None.
        data: unused (kept for the shared trainer interface), None.
    """

    agent: Any
    env_state: Any
    obs: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    eval_return: jax.Array
    env_steps: jax.Array
    step: jax.Array
    key: jax.Array
    buffer: Any = None
    data: Any = None


def default_rl_metrics(state: Any, data: Mapping[str, Any]) -> tuple[dict, Any, jax.Array]:
    """``metrics_fn`` for ``realax.log.Logger`` with the RL trainers.

    Logs every scalar metric of the step (returns, lengths, losses, evaluation return, env
    steps) and checkpoints the whole `RLState` (agent, environment states, replay buffer, key),
    so a run restored with ``realax.log.restore(ckpt_dir, like=state)`` resumes exactly.

    Example:
        >>> import realax.log as rlog  # doctest: +SKIP
        >>> logger = rlog.Logger(wandb_log=False, metrics_fn=default_rl_metrics,
        ...                      ckpt_dir="runs/ppo", ckpt_freq=50)  # doctest: +SKIP
    """
    if not hasattr(state, "step"):
        raise TypeError(f"default_rl_metrics expects an RLState (got {type(state).__name__})")
    logged = {k: jnp.asarray(v) for k, v in data.items() if jnp.shape(v) == ()}
    return logged, state, state.step


# ----------------------------------------------------------------------------- checks


def check_nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0 (got {name}={value!r})")
    return int(value)


def check_divisible(value: int, name: str, n_devices: int) -> None:
    if value % n_devices:
        ok = -(-value // n_devices) * n_devices
        raise ValueError(
            f"{name} must be divisible by n_devices (got {name}={value}, n_devices={n_devices}); "
            f"use {name}={ok}"
        )


def resolve_env(env: Any, env_kwargs: Mapping[str, Any] | None) -> rt.Env:
    """A realax-tasks Env (with autoreset) from a registry name or an env instance."""
    kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        env = rt.make(env, **kwargs)
    elif isinstance(env, rt.Env):
        if kwargs:
            env = env.replace(**kwargs)
    else:
        try:
            env = rt.wrap(env, **kwargs)
        except TypeError as e:
            raise TypeError(
                f"env must be a realax.tasks environment name (e.g. 'CartPole-v1'), a "
                f"realax.tasks.Env or a gymnax/brax/jumanji environment instance (got "
                f"{type(env).__name__}): {e}"
            ) from None
    if not env.autoreset:
        env = env.replace(autoreset=True)
    if env.discrete and not isinstance(env.action_dims, int):
        raise ValueError(
            f"environment {env.name!r} has multi-discrete actions (action_dims="
            f"{env.action_dims}); the RL trainers support one discrete action or a continuous "
            "action vector"
        )
    return env


def example_action(env: rt.Env) -> jax.Array:
    if env.discrete:
        return jnp.zeros((), jnp.int32)
    return jnp.zeros((int(env.action_dims),), jnp.float32)


def agent_factory(agent: Any, agent_kwargs: Mapping[str, Any] | None) -> Callable[..., Any]:
    """``create(key=, observations=, actions=, **kw)`` from an agent class or a callable."""
    if agent_kwargs is not None and not isinstance(agent_kwargs, Mapping):
        raise TypeError(f"agent_kwargs must be a dict or None (got {type(agent_kwargs).__name__})")
    create = getattr(agent, "create", None) if inspect.isclass(agent) else agent
    if not callable(create):
        raise TypeError(
            "agent must be an agent class with a create(key=, observations=, actions=, ...) "
            "classmethod (e.g. realax.agents.PPO) or such a function (e.g. "
            f"functools.partial(PPO.create, learning_rate=3e-4)); got {type(agent).__name__}"
        )
    return create


def flat_obs_shape(env: rt.Env) -> tuple[int, ...]:
    shape = tuple(env.obs_shape)
    if len(shape) != 1:
        raise ValueError(
            f"environment {env.name!r} has observations of shape {shape}; the RL trainers' MLP "
            "agents need flat observations; pass env_kwargs={'obs_fn': lambda o: o.reshape(-1)}"
        )
    return shape


# ----------------------------------------------------------------------------- trainer base


def nan_mean(total: jax.Array, count: jax.Array) -> jax.Array:
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan).astype(jnp.float32)


class RLTrainer(BaseTrainer):
    """What the on- and off-policy trainers share (not public)."""

    _progress_metric = "episode_return"

    def _setup_common(
        self,
        *,
        agent: Any,
        env: Any,
        train_steps: int,
        num_envs: int,
        agent_kwargs: Mapping[str, Any] | None,
        env_kwargs: Mapping[str, Any] | None,
        eval_freq: int | None,
        eval_episodes: int,
        eval_max_steps: int | None,
        logger: Any,
        progress_bar: bool,
        n_devices: int,
    ) -> None:
        self.train_steps = check_positive_int(
            train_steps, "train_steps", "pass the number of train steps, e.g. train_steps=100"
        )
        self.env = resolve_env(env, env_kwargs)
        self.eval_env = self.env.replace(autoreset=False)
        self.obs_shape = flat_obs_shape(self.env)
        self.discrete = bool(self.env.discrete)
        self.num_envs = check_positive_int(num_envs, "num_envs", "e.g. num_envs=4")
        self.n_devices = check_n_devices(n_devices)
        check_divisible(self.num_envs, "num_envs", self.n_devices)
        self.eval_episodes = check_nonneg_int(eval_episodes, "eval_episodes")
        if self.eval_episodes:
            check_divisible(self.eval_episodes, "eval_episodes", self.n_devices)
        if eval_freq is None:
            eval_freq = max(1, self.train_steps // 10)
        self.eval_freq = check_positive_int(eval_freq, "eval_freq", "e.g. eval_freq=10")
        if eval_max_steps is None:
            eval_max_steps = int(self.env.max_steps)
        self.eval_max_steps = check_positive_int(eval_max_steps, "eval_max_steps")
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self._create = agent_factory(agent, agent_kwargs)
        self.agent_kwargs = dict(agent_kwargs or {})
        self._mesh = (
            Mesh(np.asarray(jax.devices()[: self.n_devices]), (AXIS,))
            if self.n_devices > 1
            else None
        )
        if not self.discrete:
            low = np.asarray(self.env.action_low, np.float32).reshape(-1)
            high = np.asarray(self.env.action_high, np.float32).reshape(-1)
            self._low = np.where(np.isfinite(low), low, -1.0).astype(np.float32)
            self._high = np.where(np.isfinite(high), high, 1.0).astype(np.float32)

    def _make_agent(self, key: jax.Array, **extra: Any) -> Any:
        kwargs = {**self.agent_kwargs, **extra}
        if self.discrete and "n_actions" not in kwargs:
            keywords = getattr(self._create, "keywords", {}) or {}
            if "n_actions" not in keywords:
                kwargs["n_actions"] = int(self.env.action_dims)
        return self._create(
            key=key,
            observations=jnp.zeros(self.obs_shape, jnp.float32),
            actions=example_action(self.env),
            **kwargs,
        )

    def _abstract_agent(self, **extra: Any) -> Any:
        """The agent built abstractly (shapes and static config only), or a clear error."""
        try:
            return jax.eval_shape(lambda k: self._make_agent(k, **extra), jax.random.key(0))
        except (TypeError, ValueError) as e:
            raise type(e)(
                f"creating the agent for {self.env.name!r} (obs_shape={self.obs_shape}, "
                f"{'discrete' if self.discrete else 'continuous'} actions, action_dims="
                f"{self.env.action_dims}) failed: {e}"
            ) from None

    # -- pieces used inside the compiled step ------------------------------------------

    def _reset_envs(self, key: jax.Array, n: int) -> tuple[jax.Array, Any]:
        return jax.vmap(self.env.reset)(jax.random.split(key, n))

    def _local_keys(self, key: jax.Array, n_global: int, axis: str | None, parts: int = 1):
        """Keys of this device's share of ``n_global`` items, ``(n_local, parts)``.

        Item ``i`` gets the same key whatever the number of devices, so a run split over
        devices steps the same environments with the same randomness as a one-device run.
        """
        keys = jax.random.split(key, (n_global, parts))
        if axis is None:
            return keys
        n = n_global // self.n_devices
        return lax.dynamic_slice_in_dim(keys, lax.axis_index(axis) * n, n)

    @staticmethod
    def _env_step(env: rt.Env, keys: jax.Array, env_state: Any, actions: jax.Array):
        return jax.vmap(env.step)(keys, env_state, actions)

    def _base_state(self, key: jax.Array, agent: Any, buffer: Any = None) -> RLState:
        k_env, k_run = jax.random.split(key)
        obs, env_state = self._reset_envs(k_env, self.num_envs)
        return RLState(
            agent=agent,
            env_state=env_state,
            obs=obs.astype(jnp.float32),
            episode_return=jnp.zeros((self.num_envs,), jnp.float32),
            episode_length=jnp.zeros((self.num_envs,), jnp.int32),
            eval_return=jnp.asarray(jnp.nan, jnp.float32),
            env_steps=jnp.zeros((), jnp.int32),
            step=jnp.zeros((), jnp.int32),
            key=k_run,
            buffer=buffer,
        )

    @staticmethod
    def _track_episodes(ep_ret, ep_len, reward, done):
        """Add a step to the running episode stats; return finished sums and count."""
        ep_ret = ep_ret + reward
        ep_len = ep_len + 1
        finished = (
            jnp.sum(jnp.where(done, ep_ret, 0.0)),
            jnp.sum(jnp.where(done, ep_len, 0)),
            jnp.sum(done.astype(jnp.int32)),
        )
        ep_ret = jnp.where(done, 0.0, ep_ret)
        ep_len = jnp.where(done, 0, ep_len)
        return ep_ret, ep_len, finished

    def _evaluate(self, agent: Any, key: jax.Array, active: jax.Array, axis: str | None):
        """Mean return and length of ``eval_episodes`` greedy episodes on fresh environments.

        A ``while_loop`` that stops when every episode ended (or ``eval_max_steps``); with
        ``active`` false it runs zero iterations, which stays cheap under ``vmap`` over seeds
        (where a ``lax.cond`` would evaluate both branches).
        """
        n = self.eval_episodes // self.n_devices
        env = self.eval_env
        k_reset, k_loop = jax.random.split(key)
        reset_keys = self._local_keys(k_reset, self.eval_episodes, axis)[:, 0]
        obs, env_state = jax.vmap(env.reset)(reset_keys)
        limit = jnp.where(active, self.eval_max_steps, 0)

        def cond(carry):
            i, _, _, _, _, alive, _ = carry
            return jnp.logical_and(i < limit, jnp.any(alive))

        def body(carry):
            i, env_state, obs, ret, length, alive, k = carry
            k, k_step = jax.random.split(k)
            keys = self._local_keys(k_step, self.eval_episodes, axis)[:, 0]
            actions = agent.sample_actions(obs.astype(jnp.float32), seed=k, deterministic=True)
            obs, env_state, reward, term, trunc, _ = self._env_step(
                env, keys, env_state, self._to_env_action(actions)
            )
            ret = ret + jnp.where(alive, reward, 0.0)
            length = length + alive.astype(jnp.int32)
            alive = jnp.logical_and(alive, ~jnp.logical_or(term, trunc))
            return i + 1, env_state, obs, ret, length, alive, k

        carry = (
            jnp.zeros((), jnp.int32),
            env_state,
            obs,
            jnp.zeros((n,), jnp.float32),
            jnp.zeros((n,), jnp.int32),
            jnp.ones((n,), bool),
            k_loop,
        )
        _, _, _, ret, length, _, _ = lax.while_loop(cond, body, carry)
        mean_ret, mean_len = jnp.mean(ret), jnp.mean(length.astype(jnp.float32))
        if axis is not None:
            mean_ret, mean_len = lax.pmean((mean_ret, mean_len), axis)
        return mean_ret, mean_len

    def _maybe_evaluate(self, state: RLState, agent: Any, key: jax.Array, axis: str | None):
        """Evaluate when the new step is a multiple of ``eval_freq`` or the last one."""
        if not self.eval_episodes:
            return state.eval_return, {}
        new_step = state.step + 1
        active = jnp.logical_or(new_step % self.eval_freq == 0, new_step == self.train_steps)
        ret, length = self._evaluate(agent, key, active, axis)
        eval_return = jnp.where(active, ret, state.eval_return)
        return eval_return, {"eval_length": jnp.where(active, length, jnp.nan)}

    def _finish_step(
        self, state: RLState, new: RLState, key: jax.Array, axis: str | None, finished, metrics
    ) -> tuple[RLState, dict]:
        """Evaluate the updated agent if due, advance the step and assemble the step's metrics.

        ``new`` is ``state`` after the rollout and update; ``metrics`` are the trainer's own
        (losses, updates, ...), added after the episode, evaluation and env-step metrics.
        """
        eval_return, eval_info = self._maybe_evaluate(state, new.agent, key, axis)
        new = new.replace(eval_return=eval_return, step=state.step + 1)
        return new, {
            **self._episode_metrics(finished, axis),
            "eval_return": eval_return,
            **eval_info,
            "env_steps": new.env_steps,
            **metrics,
        }

    def _episode_metrics(self, finished, axis):
        total_ret, total_len, count = (jnp.sum(x) for x in finished)
        if axis is not None:
            total_ret, total_len, count = lax.psum((total_ret, total_len, count), axis)
        return {
            "episode_return": nan_mean(total_ret, count),
            "episode_length": nan_mean(total_len.astype(jnp.float32), count),
            "episodes": count,
        }

    def _to_env_action(self, actions: jax.Array) -> jax.Array:  # pragma: no cover
        raise NotImplementedError

    def _local_step(self, state: RLState, axis: str | None) -> tuple[RLState, dict]:
        raise NotImplementedError  # pragma: no cover

    def _state_specs(self, state: RLState) -> RLState:
        """Partition specs: environments (and replay rows) split over devices, rest replicated."""
        buffer = None
        if state.buffer is not None:
            buffer = state.buffer.replace(data=P(AXIS), pos=P(), size=P())
        return RLState(
            agent=P(),
            env_state=P(AXIS),
            obs=P(AXIS),
            episode_return=P(AXIS),
            episode_length=P(AXIS),
            eval_return=P(),
            env_steps=P(),
            step=P(),
            key=P(),
            buffer=buffer,
            data=P(),
        )

    def _step(self, state: RLState, data: Any, consts: Any) -> tuple[RLState, dict]:
        del data, consts
        if self._mesh is None:
            return self._local_step(state, None)
        specs = self._state_specs(state)

        fn = jax.shard_map(
            lambda s: self._local_step(s, AXIS),
            mesh=self._mesh,
            in_specs=(specs,),
            out_specs=(specs, P()),
            check_vma=False,
        )
        return fn(state)

    # -- public ------------------------------------------------------------------------

    def initialize(self, key: jax.Array, data: Any = None) -> RLState:
        """Initial `RLState`: a fresh agent, reset environments (and an empty replay buffer).

        Example:
            >>> state = trainer.initialize(jax.random.key(0))  # doctest: +SKIP
        """
        if data is not None:
            raise ValueError(
                "the RL trainers take no data (got data that is not None); configure the "
                "environment through env / env_kwargs instead"
            )
        return self._jitted["init"](as_typed_key(key), None)

    def run(self, key: Any) -> tuple[RLState, dict, dict]:
        """Initialise and train like :meth:`init_and_train`, timing the run on the host.

        The program is compiled first (timed separately) so ``env_steps_per_second`` counts the
        compiled loop only. Given a batch of keys, trains one run per key (``vmap``) and counts
        every run's environment steps.

        Returns:
            ``(state, metrics, timing)``; ``timing`` holds ``compile_seconds``,
            ``train_seconds``, ``env_steps`` (all runs) and ``env_steps_per_second``.

        Example:
            >>> state, metrics, timing = trainer.run(jax.random.key(0))  # doctest: +SKIP
            >>> timing["env_steps_per_second"]  # doctest: +SKIP
        """
        n_seeds = key_batch_size(key)
        key = as_typed_key(key)
        statics = {"n_steps": self.train_steps, "progress": self.progress_bar}
        t0 = time.perf_counter()
        if n_seeds is None:
            state = self.initialize(key)
            args: tuple = (state, None, self._consts())
            compiled = self._jitted["scan"].lower(*args, **statics).compile()
            start = int(state.step)
        else:
            args = (key, None, self._consts())
            compiled = self._jitted["seeds"].lower(*args, **statics, scan=True).compile()
            start = 0
        t1 = time.perf_counter()
        with ProgressBar.maybe(
            self.progress_bar, id(self), self.train_steps, start, self._progress_metric
        ):
            state, metrics = compiled(*args)
            jax.block_until_ready((state, metrics))
            if self.progress_bar:
                jax.effects_barrier()
        t2 = time.perf_counter()
        env_steps = int(np.sum(np.asarray(state.env_steps)))
        timing = {
            "compile_seconds": t1 - t0,
            "train_seconds": t2 - t1,
            "env_steps": env_steps,
            "env_steps_per_second": env_steps / max(t2 - t1, 1e-9),
        }
        return state, metrics, timing


def steps_from_total(
    total_env_steps: int | None, train_steps: int | None, per_step: int, what: str
) -> int:
    """``train_steps`` given directly or derived from a total number of environment steps."""
    if (total_env_steps is None) == (train_steps is None):
        raise ValueError(
            "give exactly one of train_steps (number of train steps) or total_env_steps "
            f"(environment steps, {per_step} per train step: {what}) (got train_steps="
            f"{train_steps!r}, total_env_steps={total_env_steps!r})"
        )
    if train_steps is not None:
        return check_positive_int(train_steps, "train_steps")
    total = check_positive_int(total_env_steps, "total_env_steps")
    if total < per_step:
        raise ValueError(
            f"total_env_steps={total} is less than one train step ({per_step} env steps: "
            f"{what}); use total_env_steps >= {per_step}"
        )
    return total // per_step
