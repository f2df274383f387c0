"""What the RL trainers share: the state, the metrics of a run, the front-end base class."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import realax.tasks as rt
from flax import struct
from jax import lax
from jax.sharding import PartitionSpec as P

from .. import _loops
from .._algorithm import Algorithm
from .._base import BaseTrainer
from .._mesh import AXIS, make_mesh
from .._protocols import Logger
from .._validate import (
    as_typed_key,
    check_bool,
    check_divisible,
    check_logger,
    check_n_devices,
    check_nonneg_int,
    check_positive_int,
    key_batch_size,
)
from ._envs import ActionBounds, agent_factory, agent_name, example_action
from ._envs import resolve_env as resolve_env
from ._evaluate import greedy_means, local_keys
from ._normalize import Normalizer
from ._traced import TracedRL

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
        hidden: the hidden states of a recurrent agent's environments (leading axis
            ``num_envs``, reset at episode ends), else None.
        data: unused (kept for the shared trainer interface), None.
        hparams: traced hyperparameters (``trainer.traced(names)``), float32 scalars by
            name (copied into the agent before each step); empty for an untraced run.
        norm: the `NormState` (running observation / return statistics) of a run with
            ``normalize_obs`` or ``normalize_reward``, else None.
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
    hparams: dict = struct.field(default_factory=dict)
    hidden: Any = None
    norm: Any = None


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


def nan_mean(total: jax.Array, count: jax.Array) -> jax.Array:
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan).astype(jnp.float32)


def track_episodes(ep_ret, ep_len, reward, done):
    """Add a step to the running episode stats; return finished sums and count."""
    ep_ret = ep_ret + reward
    ep_len = ep_len + 1
    finished = (
        jnp.sum(jnp.where(done, ep_ret, 0.0)),
        jnp.sum(jnp.where(done, ep_len, 0)),
        jnp.sum(done.astype(jnp.int32)),
    )
    return jnp.where(done, 0.0, ep_ret), jnp.where(done, 0, ep_len), finished


_SPLIT = ("env_state", "obs", "episode_return", "episode_length")
_REPLICATED = ("agent", "eval_return", "env_steps", "step", "key", "data")


def _state_specs(state: RLState) -> RLState:
    """Partition specs: environments (and replay rows) split over devices, rest replicated."""
    buffer = None
    if state.buffer is not None:
        buffer = state.buffer.replace(data=P(AXIS), pos=P(), size=P())
    specs: dict[str, Any] = {name: P(AXIS) for name in _SPLIT}
    specs.update({name: P() for name in _REPLICATED})
    hparams = {name: P() for name in state.hparams}
    hidden = None if state.hidden is None else P(AXIS)
    norm = Normalizer.specs(state.norm)
    return RLState(**specs, buffer=buffer, hparams=hparams, hidden=hidden, norm=norm)


#: the RLState fields a rollout carries from step to step, in the order of its carry tuple
ENV_CARRY = ("env_state", "obs", "episode_return", "episode_length")


def carry_of(state: RLState, fields: tuple[str, ...] = ENV_CARRY) -> tuple:
    """The rollout carry: the ``fields`` of ``state``, in order (:func:`with_carry` inverts)."""
    return tuple(getattr(state, f) for f in fields)


def with_carry(state: RLState, carry: tuple, fields: tuple[str, ...] = ENV_CARRY, **other):
    """``state`` with the rollout ``carry`` of ``fields`` and the ``other`` fields replaced."""
    return state.replace(**dict(zip(fields, carry, strict=True)), **other)


class RLTrainer(TracedRL, BaseTrainer):
    """What the on- and off-policy trainers share (not public).

    A subclass validates its own arguments, calls :meth:`_setup_env`, :meth:`_setup_eval` and
    :meth:`_setup_agent` (in that order), and defines ``_initialize(key, data)``,
    ``_local_step(state, axis)`` and ``env_action(actions)``; its
    algorithm is ``Algorithm(self._initialize, self._step, None, "episode_return")``.
    """

    _norm = Normalizer()  # off unless a subclass calls _setup_norm

    def _setup_norm(self, *options: Any) -> None:  # normalize_obs, ..., reward_clip, gamma
        self._norm = Normalizer.checked(*options)

    def _setup_env(self, train_steps: int, env: Any, env_kwargs: Any, num_envs, n_devices) -> None:
        self.train_steps = check_positive_int(
            train_steps, "train_steps", "pass the number of train steps, e.g. train_steps=100"
        )
        self.env = resolve_env(env, env_kwargs)
        self.eval_env = self.env.replace(autoreset=False)
        self.obs_shape = tuple(self.env.obs_shape)  # the agent's create checks the shape
        self.discrete = bool(self.env.discrete)
        self.num_envs = check_positive_int(num_envs, "num_envs", "e.g. num_envs=4")
        self.n_devices = check_n_devices(n_devices)
        check_divisible(self.num_envs, "num_envs", self.n_devices)

    def _setup_eval(
        self, eval_freq: int | None, eval_episodes: int, eval_max_steps: int | None
    ) -> None:
        self.eval_episodes = check_nonneg_int(eval_episodes, "eval_episodes")
        if self.eval_episodes:
            check_divisible(self.eval_episodes, "eval_episodes", self.n_devices)
        if eval_freq is None:
            eval_freq = max(1, self.train_steps // 10)
        self.eval_freq = check_positive_int(eval_freq, "eval_freq", "e.g. eval_freq=10")
        if eval_max_steps is None:
            eval_max_steps = int(self.env.max_steps)
        self.eval_max_steps = check_positive_int(eval_max_steps, "eval_max_steps")

    def _setup_agent(self, agent: Any, agent_kwargs: Any, logger: Any, progress_bar) -> None:
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self._agent = agent
        self._create = agent_factory(agent, agent_kwargs)
        self.agent_kwargs = dict(agent_kwargs or {})
        self._mesh = make_mesh(self.n_devices)
        self._bounds = None if self.discrete else ActionBounds(self.env)
        self.algorithm = Algorithm(self._initialize, self._step, None, "episode_return")

    def _make_agent(self, key: jax.Array, discrete: bool | None = None, **extra: Any) -> Any:
        discrete = self.discrete if discrete is None else discrete
        kwargs = {**self.agent_kwargs, **extra}
        if self.traced_values:
            kwargs["hparams"] = self.traced_values
        if discrete and "n_actions" not in kwargs:
            keywords = getattr(self._create, "keywords", {}) or {}
            if "n_actions" not in keywords:
                kwargs["n_actions"] = int(self.env.action_dims) if self.discrete else 2
        return self._create(
            key=key,
            observations=jnp.zeros(self.obs_shape, jnp.float32),
            actions=example_action(self.env, discrete),
            **kwargs,
        )

    def _abstract_agent(self, **extra: Any) -> Any:
        """The agent built abstractly (shapes and static config only), or a clear error."""
        try:
            return jax.eval_shape(lambda k: self._make_agent(k, **extra), jax.random.key(0))
        except (TypeError, ValueError) as e:
            self._check_action_kind(extra)
            raise type(e)(
                f"creating the agent for {self.env.name!r} (obs_shape={self.obs_shape}, "
                f"{'discrete' if self.discrete else 'continuous'} actions, action_dims="
                f"{self.env.action_dims}) failed: {e}"
            ) from None

    def _check_action_kind(self, extra: dict) -> None:
        """Raise a clear error if the agent works with the other kind of actions only."""
        try:
            jax.eval_shape(
                lambda k: self._make_agent(k, not self.discrete, **extra), jax.random.key(0)
            )
        except (TypeError, ValueError):
            return  # not the kind of actions: report the original error
        name, env = agent_name(self._agent), self.env.name
        if self.discrete:
            raise ValueError(
                f"{name} needs continuous actions; {env} has discrete actions: use DQN or PPO"
            ) from None
        raise ValueError(
            f"{name} needs discrete actions; {env} has continuous actions: use SAC or PPO"
        ) from None

    # -- pieces used inside the compiled step ------------------------------------------

    def env_action(self, actions: jax.Array) -> jax.Array:  # pragma: no cover
        """The agent's actions as the environment takes them (clipped / rescaled)."""
        raise NotImplementedError

    def _to_env_action(self, actions: jax.Array) -> jax.Array:
        return self.env_action(actions)

    def _local_keys(self, key: jax.Array, n_global: int, axis: str | None, parts: int = 1):
        return local_keys(key, n_global, axis, self.n_devices, parts)

    @staticmethod
    def _env_step(env: rt.Env, keys: jax.Array, env_state: Any, actions: jax.Array):
        return jax.vmap(env.step)(keys, env_state, actions)

    def _base_state(self, key: jax.Array, agent: Any, buffer: Any = None) -> RLState:
        k_env, k_run = jax.random.split(key)
        obs, env_state = jax.vmap(self.env.reset)(jax.random.split(k_env, self.num_envs))
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
            norm=self._norm.init(self.obs_shape, self.num_envs),
        )

    _track_episodes = staticmethod(track_episodes)

    def _evaluate(self, agent: Any, key: jax.Array, active: jax.Array, axis: str | None):
        """Mean return and length of ``eval_episodes`` greedy episodes (none if not ``active``)."""
        return greedy_means(
            agent,
            self.eval_env,
            key,
            active,
            n_episodes=self.eval_episodes,
            max_steps=self.eval_max_steps,
            action_fn=self.env_action,
            axis=axis,
            n_devices=self.n_devices,
        )

    def _finish_step(
        self, state: RLState, new: RLState, key: jax.Array, axis: str | None, finished, metrics
    ) -> tuple[RLState, dict]:
        """Evaluate the updated agent if due, advance the step and assemble the step's metrics.

        ``new`` is ``state`` after the rollout and update; ``metrics`` are the trainer's own
        (losses, updates, ...), added after the episode, evaluation and env-step metrics.
        Evaluation runs when the new step is a multiple of ``eval_freq`` or the last one.
        """
        eval_return, eval_info = state.eval_return, {}
        if self.eval_episodes:
            new_step = state.step + 1
            active = jnp.logical_or(new_step % self.eval_freq == 0, new_step == self.train_steps)
            policy = self._norm.policy(new.agent, new.norm)
            ret, length = self._evaluate(policy, key, active, axis)
            eval_return = jnp.where(active, ret, state.eval_return)
            eval_info = {"eval_length": jnp.where(active, length, jnp.nan)}
        new = new.replace(eval_return=eval_return, step=state.step + 1)
        total_ret, total_len, count = (jnp.sum(x) for x in finished)
        if axis is not None:
            total_ret, total_len, count = lax.psum((total_ret, total_len, count), axis)
        return new, {
            "episode_return": nan_mean(total_ret, count),
            "episode_length": nan_mean(total_len.astype(jnp.float32), count),
            "episodes": count,
            "eval_return": eval_return,
            **eval_info,
            "env_steps": new.env_steps,
            **metrics,
        }

    def _initialize(self, key: jax.Array, data: Any) -> RLState:
        raise NotImplementedError  # pragma: no cover

    def _local_step(self, state: RLState, axis: str | None) -> tuple[RLState, dict]:
        raise NotImplementedError  # pragma: no cover

    def _step(self, state: RLState, data: Any, consts: Any, keys: Any) -> tuple[RLState, dict]:
        del data, consts, keys
        if self._mesh is None:
            return self._local_step(state, None)
        specs = _state_specs(state)
        fn = jax.shard_map(
            lambda s: self._local_step(s, AXIS),
            mesh=self._mesh,
            in_specs=(specs,),
            out_specs=(specs, P()),
            check_vma=False,
        )
        return fn(state)

    # -- public ------------------------------------------------------------------------

    def policy(self, state: RLState) -> Any:
        """What acts for this run outside training (`evaluate`, `collect`, ``realax eval``):
        ``state.agent``, or with ``normalize_obs`` a `NormalizedAgent` holding its statistics."""
        return self._norm.policy(state.agent, state.norm)

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
        return _loops.init(self.algorithm, as_typed_key(key), None)

    def run(
        self, key: Any, *, logger: Logger | None = None, progress_bar: bool | None = None
    ) -> tuple[RLState, dict, dict]:
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
        seeds = key_batch_size(key) is not None
        key = as_typed_key(key)
        opts = self._options(logger, progress_bar)
        t0 = time.perf_counter()
        start = key if seeds else self.initialize(key)
        prepared = _loops.prepare(
            self.algorithm, start, n_steps=self.train_steps, seeds=seeds, **opts
        ).compile()
        t1 = time.perf_counter()
        state, metrics = prepared()
        jax.block_until_ready((state, metrics))
        t2 = time.perf_counter()
        env_steps = int(np.sum(np.asarray(state.env_steps)))
        timing = {
            "compile_seconds": t1 - t0,
            "train_seconds": t2 - t1,
            "env_steps": env_steps,
            "env_steps_per_second": env_steps / max(t2 - t1, 1e-9),
        }
        return state, metrics, timing
