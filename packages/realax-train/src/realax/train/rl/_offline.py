"""OfflineTrainer: an agent trained on a fixed `Dataset`, evaluated on an environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax
from jax.sharding import PartitionSpec as P
from realax.agents import Dataset

from .._algorithm import Algorithm
from .._base import BaseTrainer
from .._mesh import AXIS, make_mesh, replicated
from .._validate import (
    check_bool,
    check_divisible,
    check_logger,
    check_n_devices,
    check_nonneg_int,
    check_positive_int,
)
from ._envs import ActionBounds, agent_factory, agent_name, flat_obs_shape, resolve_env
from ._evaluate import greedy_means
from ._offline_checks import as_dataset, check_against_env, check_batch_size, check_finite

__all__ = ["OfflineState", "OfflineTrainer"]


class OfflineState(struct.PyTreeNode):
    """State of an `OfflineTrainer` run (the dataset is not part of it: the trainer holds it).

    Attributes:
        agent: the agent (a PyTreeNode from realax.agents).
        eval_return: mean return of the latest greedy evaluation (NaN before the first, or
            without an environment).
        step: int32 number of completed gradient steps.
        key: typed PRNG key; step ``t`` uses ``jax.random.fold_in(key, t)``.
        data: unused (kept for the shared trainer interface), None.
        hparams: traced hyperparameters (issue 17); empty: OfflineTrainer traces none yet.
    """

    agent: Any
    eval_return: jax.Array
    step: jax.Array
    key: jax.Array
    data: Any = None
    hparams: dict = struct.field(default_factory=dict)


class OfflineTrainer(BaseTrainer):
    """Train an agent from a fixed `realax.agents.Dataset`, one gradient step per train step.

    Each step samples ``batch_size`` rows uniformly (with replacement) from the dataset and
    calls ``agent.update(batch)`` with the minibatch, a `Dataset` (a mapping with the
    dataset's keys: ``observations``, ``actions``, ``rewards``, ``masks``,
    ``next_observations``, ...). Every ``eval_freq`` steps (and after the last one) the greedy
    policy plays ``eval_episodes`` fresh episodes of ``env`` inside the compiled loop
    (`realax.train.rl.evaluate`); continuous actions, in ``[-1, 1]``, are rescaled to the
    environment's bounds. The run methods are those of every trainer (``train``,
    ``init_and_train`` with a batch of keys for several seeds, ``resume``, ...).

    The dataset is a constant of the compiled program (an argument, not a closure), held by
    the trainer and not by the state: a checkpoint holds the agent, the step and the key, and
    resuming needs the same dataset again (the CLI keeps its path and checksum in the run's
    ``config.toml``). With ``n_devices > 1`` every minibatch is split over devices (the same
    rows as on one device) and gradients are averaged through the agent's ``pmap_axis``.

    Metrics per step: the agent's update info (e.g. ``loss``), ``eval_return`` (latest) and
    ``eval_length`` (NaN on steps without evaluation).

    Args:
        agent: an agent class with ``create(key=, observations=, actions=, **config)`` and
            ``update(batch)`` (`DiscreteBC`, `ContinuousBC`, `SAC`, `DQN`, ...) or such a
            function; ``n_actions`` is filled in for integer actions.
        dataset: a `Dataset` (or a dict of arrays).
        env: the environment of the evaluations (name, ``realax.tasks.Env`` or suite
            instance), or None (no evaluation).
        train_steps: number of gradient steps.
        batch_size: rows per minibatch.
        eval_freq: steps between evaluations (default ``train_steps // 10``).
        eval_episodes: episodes per evaluation (0: none).
        eval_max_steps: step limit of an evaluation episode (default: the env's).
        agent_kwargs: the agent's configuration.
        env_kwargs: options of the environment.
        logger: any object with ``log(state, metrics)`` (``realax.log.Logger`` with
            `default_rl_metrics`).
        progress_bar: show a tqdm bar.
        n_devices: devices the minibatches are split over.

    Raises:
        KeyError, ValueError: before anything is compiled, for a dataset missing a key the
            agent needs, arrays of different lengths, observations or actions not shaped as
            ``env``'s, ``batch_size`` larger than the dataset, NaN or infinite values.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.agents import DiscreteBC
        >>> from realax.train.rl import OfflineTrainer, collect
        >>> policy = lambda obs, key: jnp.int32(obs[2] > 0)
        >>> data = collect(policy, "CartPole-v1", jax.random.key(0), num_steps=256)
        >>> trainer = OfflineTrainer(DiscreteBC, data, "CartPole-v1", train_steps=20,
        ...                          batch_size=32, eval_episodes=2,
        ...                          agent_kwargs={"hidden_dims": (16,)})
        >>> state, metrics = trainer.init_and_train(jax.random.key(1))
        >>> int(state.step), metrics["loss"].shape
        (20, (20,))
    """

    def __init__(
        self, agent: Any, dataset: Any, env: Any = None, *,
        train_steps: int, batch_size: int = 256,
        eval_freq: int | None = None, eval_episodes: int = 10, eval_max_steps: int | None = None,
        agent_kwargs: Mapping[str, Any] | None = None, env_kwargs: Mapping[str, Any] | None = None,
        logger: Any = None, progress_bar: bool = False, n_devices: int = 1,
    ):  # fmt: skip
        self.train_steps = check_positive_int(train_steps, "train_steps", "e.g. train_steps=1000")
        self.batch_size = check_positive_int(batch_size, "batch_size", "e.g. batch_size=256")
        self.n_devices = check_n_devices(n_devices)
        check_divisible(self.batch_size, "batch_size", self.n_devices)
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self.dataset = as_dataset(dataset)
        self.env = None if env is None else resolve_env(env, env_kwargs)
        self.obs_shape = tuple(self.dataset["observations"].shape[1:])
        if self.env is not None:
            self.eval_env = self.env.replace(autoreset=False)
            check_against_env(self.dataset, self.env, flat_obs_shape(self.env))
        else:
            check_against_env(self.dataset, None, self.obs_shape)
        check_batch_size(self.dataset, self.batch_size)
        check_finite(self.dataset)
        self.discrete = bool(jnp.issubdtype(self.dataset["actions"].dtype, jnp.integer))
        if self.discrete:  # from the env, else the largest action in the dataset
            self.n_actions = (
                int(self.env.action_dims)
                if self.env is not None
                else int(np.max(np.asarray(self.dataset["actions"]))) + 1
            )
        self._setup_eval(eval_freq, eval_episodes, eval_max_steps)
        self._agent = agent
        self._create = agent_factory(agent, agent_kwargs)
        self.agent_kwargs = dict(agent_kwargs or {})
        self._mesh = make_mesh(self.n_devices)
        self._bounds = None if self.discrete or self.env is None else ActionBounds(self.env)
        info = self._check_agent()
        metric = "loss" if "loss" in info else next(iter(info), "eval_return")
        self.algorithm = Algorithm(self._initialize, self._step, None, metric)
        self.consts = self.dataset

    def _setup_eval(self, eval_freq: Any, eval_episodes: Any, eval_max_steps: Any) -> None:
        self.eval_episodes = check_nonneg_int(eval_episodes, "eval_episodes")
        if self.env is None:
            self.eval_episodes = 0
        if self.eval_episodes:
            check_divisible(self.eval_episodes, "eval_episodes", self.n_devices)
        if eval_freq is None:
            eval_freq = max(1, self.train_steps // 10)
        self.eval_freq = check_positive_int(eval_freq, "eval_freq", "e.g. eval_freq=1000")
        if eval_max_steps is None:
            eval_max_steps = int(self.env.max_steps) if self.env is not None else 1
        self.eval_max_steps = check_positive_int(eval_max_steps, "eval_max_steps")

    # -- the agent ---------------------------------------------------------------------

    def _make_agent(self, key: jax.Array) -> Any:
        kwargs = dict(self.agent_kwargs)
        keywords = getattr(self._create, "keywords", {}) or {}
        if self.discrete and "n_actions" not in kwargs and "n_actions" not in keywords:
            kwargs["n_actions"] = self.n_actions
        return self._create(
            key=key,
            observations=jnp.zeros(self.obs_shape, jnp.float32),
            actions=jnp.zeros_like(self.dataset["actions"][0]),
            **kwargs,
        )

    def _check_agent(self) -> dict:
        """Create the agent and trace one update abstractly; clear errors, nothing compiled."""
        name = agent_name(self._agent)
        try:
            abstract = jax.eval_shape(self._make_agent, jax.random.key(0))
        except (TypeError, ValueError) as e:
            raise type(e)(
                f"creating {name} for the dataset (observations {self.obs_shape}, "
                f"{'integer' if self.discrete else 'float'} actions of shape "
                f"{tuple(self.dataset['actions'].shape[1:])}) failed: {e}"
            ) from None
        for method in ("update", "sample_actions") if self.eval_episodes else ("update",):
            if not callable(getattr(abstract, method, None)):
                raise TypeError(f"OfflineTrainer needs an agent with {method}; {name} has none")
        batch = self.dataset.subset(jnp.arange(self.batch_size // self.n_devices))
        try:
            info = jax.eval_shape(lambda a, b: a.update(b)[1], abstract, batch)
        except KeyError as e:
            raise KeyError(
                f"{name}.update needs a key the dataset lacks: {e.args[0] if e.args else e} "
                f"(dataset keys: {sorted(self.dataset)}); add it, e.g. collect the dataset "
                "with realax.train.rl.collect, which writes every key of jaxrl_m's format"
            ) from None
        return dict(info)

    def env_action(self, actions: jax.Array) -> jax.Array:
        """The agent's actions as the environment takes them (continuous: ``[-1, 1]`` rescaled
        to the bounds)."""
        return actions if self._bounds is None else self._bounds.rescale(actions)

    # -- the algorithm -------------------------------------------------------------------

    def _initialize(self, key: jax.Array, data: Any) -> OfflineState:
        del data
        k_agent, k_run = jax.random.split(key)
        return OfflineState(
            agent=self._make_agent(k_agent),
            eval_return=jnp.asarray(jnp.nan, jnp.float32),
            step=jnp.zeros((), jnp.int32),
            key=k_run,
        )

    def _update(self, agent: Any, batch: Dataset) -> tuple[Any, dict]:
        if self._mesh is None:
            agent, info = agent.update(batch)
        else:

            def local(a: Any, b: Dataset) -> tuple[Any, dict]:
                a, info = a.update(b, pmap_axis=AXIS)
                return a, lax.pmean(info, AXIS)

            fn = jax.shard_map(
                local,
                mesh=self._mesh,
                in_specs=(P(), P(AXIS)),
                out_specs=(P(), P()),
                check_vma=False,
            )
            agent, info = fn(replicated(agent, self._mesh), batch)
        return agent, {k: jnp.asarray(v, jnp.float32) for k, v in info.items()}

    def _step(self, state: OfflineState, data: Any, consts: Any, keys: Any):
        del data, keys
        dataset: Dataset = consts
        k_batch, k_eval = jax.random.split(jax.random.fold_in(state.key, state.step))
        batch = dataset.sample(k_batch, self.batch_size)
        agent, info = self._update(state.agent, batch)
        step = state.step + 1
        eval_return, metrics = state.eval_return, dict(info)
        if self.eval_episodes:
            active = jnp.logical_or(step % self.eval_freq == 0, step == self.train_steps)
            ret, length = greedy_means(
                agent,
                self.eval_env,
                k_eval,
                active,
                n_episodes=self.eval_episodes,
                max_steps=self.eval_max_steps,
                action_fn=self.env_action,
            )
            eval_return = jnp.where(active, ret, state.eval_return)
            metrics["eval_length"] = jnp.where(active, length, jnp.nan)
        metrics["eval_return"] = eval_return
        return state.replace(agent=agent, eval_return=eval_return, step=step), metrics

    def initialize(self, key: jax.Array, data: Any = None) -> OfflineState:
        """A fresh `OfflineState` (compiled)."""
        if data is not None:
            raise ValueError(
                "OfflineTrainer takes its dataset in the constructor (got data that is not "
                "None); pass OfflineTrainer(agent, dataset, ...)"
            )
        return super().initialize(key, None)
