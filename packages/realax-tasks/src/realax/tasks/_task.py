"""Tasks: the episode return of a policy in an environment as a fitness function."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from ._env import Env
from ._obs_norm import RunningStats, merge_stats
from ._policy import check_policy

Array = jax.Array
_MODES = ("early_exit", "trajectory")


class EnvTask:
    """``task(params, key, data=None) -> (fitness, info)``: the episode return of a policy.

    The base of :class:`GymnaxTask`, :class:`BraxTask` and :class:`JumanjiTask`; it works
    with any :class:`Env`. The return counts rewards up to and including the first step
    where ``terminated`` or ``truncated`` is true, and nothing after (a latched mask), and at
    most ``max_steps`` steps.

    Two rollout modes compute the same fitness from the same key:

    - early exit (:meth:`evaluate`, the default of ``__call__``): a ``lax.while_loop`` that
      stops when the episode ends; ``info`` holds ``episode_length`` (and ``obs_stats``).
    - full trajectory (:meth:`rollout`, or ``__call__`` with ``mode="trajectory"``): a
      ``lax.scan`` over ``max_steps`` steps whose ``info`` is ``data_fn(trajectory)``; the
      trajectory dict holds ``obs``, ``actions``, ``rewards`` (0 after the end), ``dones``,
      ``terminated``, ``truncated``, ``valid`` (step belongs to the episode),
      ``policy_states`` (the state each action was taken with), ``episode_length``.

    ``compact=True`` changes how the early-exit mode runs under ``jax.vmap`` (as
    ``EvosaxTrainer`` evaluates a population), not what it computes: a vmapped
    ``while_loop`` steps every member until the longest episode of the batch ends, finished
    members included; with ``compact`` the batch runs as one rollout that, once at most a
    quarter of the members are still running, gathers those into a quarter-size batch and
    steps only them. Fitness and ``episode_length`` are equal to the default's for the same
    keys and ``data``; ``obs_stats`` agree to float rounding, so with ``obs_norm`` a long
    training run can drift apart from the default's in the last bits. It pays off when
    episodes end at very different times and a step is expensive (brax: 1.5x (hopper) and
    2x (inverted_pendulum) less CPU time for one evaluation of 128 members), not for cheap
    steps such as CartPole's, where the per-iteration overhead dominates; it costs about
    twice the compile time (the step is compiled for both batch sizes). Nested vmaps
    (population x evaluations) are merged into one batch; per-member ``data`` falls back to
    the plain vmapped loop.

    With ``policy=`` a flax policy module, ``params`` are its variables
    (``policy.init(key, obs, policy.initialize(key), key)``); with ``model_factory=``,
    ``model_factory(params)`` must return a model with ``model(obs, state, key) ->
    (action, state)`` and optionally ``model.initialize(key)``.

    With ``obs_norm=True`` observations are normalised with running statistics carried in
    ``data`` (a :class:`RunningStats` from :meth:`init_data`); every rollout reports the
    statistics of the raw observations it saw in ``info["obs_stats"]`` and
    :meth:`update_data` folds a population's worth of them into ``data``.
    """

    def __init__(
        self,
        env: Env,
        *,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        max_steps: int | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool = False,
    ):
        cls = type(self).__name__
        if not isinstance(env, Env):
            raise TypeError(f"{cls}: env must be a realax.tasks.Env (got {type(env).__name__})")
        if (policy is None) == (model_factory is None):
            raise ValueError(
                f"{cls}: pass exactly one of policy= (a flax policy module, e.g. "
                "realax.tasks.MLPPolicy.from_env(env)) or model_factory= (params -> model); got "
                f"policy={'set' if policy is not None else None}, "
                f"model_factory={'set' if model_factory is not None else None}"
            )
        if max_steps is None:
            max_steps = env.max_steps
        bad = isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral)
        if bad or max_steps < 1:
            raise ValueError(
                f"{cls}: max_steps must be a positive int (got max_steps={max_steps!r})"
            )
        if mode not in _MODES:
            raise ValueError(f"{cls}: mode must be one of {_MODES} (got mode={mode!r})")
        if not isinstance(compact, bool):
            raise TypeError(f"{cls}: compact must be True or False (got compact={compact!r})")
        if data_fn is not None and not callable(data_fn):
            raise TypeError(f"{cls}: data_fn must be callable (got {type(data_fn).__name__})")
        if model_factory is not None and not callable(model_factory):
            raise TypeError(
                f"{cls}: model_factory must be callable params -> model "
                f"(got {type(model_factory).__name__})"
            )
        self.env = env if not env.autoreset else env.replace(autoreset=False)
        self.policy = policy
        self.model_factory = model_factory
        self.max_steps = int(max_steps)
        self.data_fn = data_fn
        self.obs_norm = bool(obs_norm)
        self.obs_clip = float(obs_clip)
        self.mode = mode
        self.compact = compact
        self._member_eval = _compacting_evaluate(self) if compact else None
        if policy is not None:
            example = jnp.zeros(env.obs_shape, env.spec.obs_dtype)
            check_policy(policy, example)
            self._check_action_shape(policy, example)

    def _check_action_shape(self, policy: Any, example: Array) -> None:
        k = jax.random.key(0)
        variables = jax.eval_shape(lambda k: policy.init(k, example, policy.initialize(k), k), k)
        action, _ = jax.eval_shape(
            lambda v, k: policy.apply(v, example, policy.initialize(k), k), variables, k
        )
        want = self.env.action_shape
        if math.prod(action.shape) != math.prod(want):
            raise ValueError(
                f"{type(self).__name__}: the policy returns actions of shape {action.shape} but "
                f"{self.env.name!r} takes actions of shape {want} (action_dims="
                f"{self.env.action_dims}, discrete={self.env.discrete}); build the policy with "
                "MLPPolicy.from_env(task.env, ...) or the matching action_dims"
            )

    # ----------------------------------------------------------------- pass-through
    def reset(self, key: Array):
        """``env.reset(key)`` of the task's environment."""
        return self.env.reset(key)

    def step(self, key: Array, state: Any, action: Any):
        """``env.step(key, state, action)`` of the task's environment."""
        return self.env.step(key, state, action)

    # ----------------------------------------------------------------- data protocol
    def init_data(self, key: Array) -> RunningStats | None:
        """Initial task data: empty observation statistics with ``obs_norm``, else ``None``."""
        del key
        if not self.obs_norm:
            return None
        return RunningStats.create(shape=self.env.obs_shape)

    def update_data(self, data: Any, info: dict[str, Any]) -> Any:
        """Folds the observation statistics of a batch of rollouts into ``data``.

        Args:
            data: the current :class:`RunningStats` (or ``None`` without ``obs_norm``).
            info: the infos of many rollouts, batched over any leading axes (the trainer
                passes axes ``(popsize, eval_reps)``); ``info["obs_stats"]`` is used.
        """
        if not self.obs_norm:
            return data
        if not isinstance(info, dict) or "obs_stats" not in info:
            raise KeyError(
                f"{type(self).__name__}.update_data needs info['obs_stats'] from the rollouts; "
                "a custom data_fn must return a dict that keeps the 'obs_stats' entry"
            )
        batch = merge_stats(info["obs_stats"])
        return data.merge(batch)

    # ----------------------------------------------------------------- policy plumbing
    def _policy_init(self, params: Any, key: Array) -> Any:
        if self.policy is not None:
            return self.policy.initialize(key)
        model = self.model_factory(params)
        init = getattr(model, "initialize", None)
        return None if init is None else init(key)

    def _policy_act(self, params: Any, obs: Array, state: Any, key: Array):
        if self.policy is not None:
            return self.policy.apply(params, obs, state, key)
        return self.model_factory(params)(obs, state, key)

    def _norm(self, data: Any) -> RunningStats | None:
        if not self.obs_norm:
            return None
        if data is None:
            raise ValueError(
                f"{type(self).__name__} was built with obs_norm=True, so it needs the running "
                "observation statistics: call task(params, key, data) with "
                "data = task.init_data(key) (updated by task.update_data); EvosaxTrainer "
                "does this for you"
            )
        if not isinstance(data, RunningStats):
            raise TypeError(
                f"{type(self).__name__}: with obs_norm=True data must be the RunningStats from "
                f"task.init_data (got {type(data).__name__})"
            )
        return data

    def _start(self, params: Any, key: Array):
        k_reset, k_policy, k_loop = jax.random.split(key, 3)
        obs, env_state = self.env.reset(k_reset)
        return obs, env_state, self._policy_init(params, k_policy), k_loop

    def _exit_step(self, params, norm, k_loop, carry):
        """One step of the early-exit rollout (the ``while_loop`` body)."""
        t, obs, env_state, pstate, ret, _, stats = carry
        if stats is not None:
            stats = stats.add(obs)
        _, pstate, obs, env_state, reward, term, trunc = self._transition(
            params, norm, obs, env_state, pstate, jax.random.fold_in(k_loop, t)
        )
        done = jnp.logical_or(term, trunc)
        return t + 1, obs, env_state, pstate, ret + reward, done, stats

    def _exit_init(self, params, key):
        obs, env_state, pstate, k_loop = self._start(params, key)
        stats = RunningStats.create(shape=self.env.obs_shape) if self.obs_norm else None
        zero = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), jnp.zeros((), bool)
        return (zero[0], obs, env_state, pstate, zero[1], zero[2], stats), k_loop

    def _evaluate_batch(self, params: Any, keys: Array, data: Any) -> tuple[Array, dict]:
        """Early exit for a batch of members (leading axis of ``params`` and ``keys``) that
        steps only the running members once at most a quarter of the batch is left."""
        norm = self._norm(data)
        n = keys.shape[0]
        width = max(1, n // 4)
        carry, k_loop = jax.vmap(self._exit_init)(params, keys)
        step = jax.vmap(lambda p, k, c: self._exit_step(p, norm, k, c))

        def running(carry):
            t, *_, done, _ = carry
            return jnp.logical_and(jnp.logical_not(done), t < self.max_steps)

        def keep(mask, new, old):
            def pick(a, b):
                return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

            return jax.tree.map(pick, new, old)

        def all_members(carry):
            return keep(running(carry), step(params, k_loop, carry), carry)

        def few_members(carry):
            alive = running(carry)
            (idx,) = jnp.nonzero(alive, size=width, fill_value=n)
            take = lambda x: x.at[idx].get(mode="clip")  # noqa: E731
            sub = jax.tree.map(take, carry)
            new = step(jax.tree.map(take, params), take(k_loop), sub)
            put = lambda x, y: x.at[idx].set(y, mode="drop")  # noqa: E731
            return jax.tree.map(put, carry, new)

        def body(carry):
            left = jnp.sum(running(carry).astype(jnp.int32))
            return jax.lax.cond(left > width, all_members, few_members, carry)

        carry = jax.lax.while_loop(lambda c: jnp.any(running(c)), body, carry)
        t, *_, ret, _, stats = carry
        info: dict[str, Any] = {"episode_length": t}
        if stats is not None:
            info["obs_stats"] = stats
        return ret, info

    def _transition(self, params, norm, obs, env_state, pstate, key_t):
        k_act, k_env = jax.random.split(key_t)
        pol_obs = obs if norm is None else norm.normalize(obs, clip=self.obs_clip)
        action, new_pstate = self._policy_act(params, pol_obs, pstate, k_act)
        obs2, env_state2, reward, term, trunc, _ = self.env.step(k_env, env_state, action)
        return action, new_pstate, obs2, env_state2, reward, term, trunc

    # ----------------------------------------------------------------- rollouts
    def __call__(self, params: Any, key: Array, data: Any = None) -> tuple[Array, Any]:
        """Fitness (episode return, higher is better) and info; see the class docstring."""
        if self.mode == "trajectory":
            return self.rollout(params, key, data)
        return self.evaluate(params, key, data)

    def evaluate(self, params: Any, key: Array, data: Any = None) -> tuple[Array, dict]:
        """Early-exit rollout (``lax.while_loop``): stops as soon as the episode ends.

        With ``compact=True`` and under ``jax.vmap``, the batch is one rollout that steps
        only the running members once few are left (same results; see :class:`EnvTask`).

        Returns:
            ``(fitness, info)`` with ``info = {"episode_length": int32}`` plus
            ``"obs_stats"`` (a :class:`RunningStats`) when ``obs_norm``.
        """
        if self._member_eval is not None:
            self._norm(data)  # clear errors before tracing the batched rollout
            return self._member_eval(params, key, data)
        return self._evaluate_one(params, key, data)

    def _evaluate_one(self, params: Any, key: Array, data: Any = None) -> tuple[Array, dict]:
        norm = self._norm(data)
        obs, env_state, pstate, k_loop = self._start(params, key)
        stats = RunningStats.create(shape=self.env.obs_shape) if self.obs_norm else None

        def cond(carry):
            t, *_, done, _ = carry
            return jnp.logical_and(jnp.logical_not(done), t < self.max_steps)

        def body(carry):
            return self._exit_step(params, norm, k_loop, carry)

        init = (
            jnp.zeros((), jnp.int32),
            obs,
            env_state,
            pstate,
            jnp.zeros((), jnp.float32),
            jnp.zeros((), bool),
            stats,
        )
        t, *_, ret, _, stats = jax.lax.while_loop(cond, body, init)
        info: dict[str, Any] = {"episode_length": t}
        if stats is not None:
            info["obs_stats"] = stats
        return ret, info

    def rollout(self, params: Any, key: Array, data: Any = None) -> tuple[Array, Any]:
        """Full-trajectory rollout (``lax.scan`` over ``max_steps`` steps).

        Steps after the end of the episode are computed but masked: their rewards are 0 and
        ``valid`` is false. Uses the same randomness as :meth:`evaluate`, so both return the
        same fitness.

        Returns:
            ``(fitness, data_fn(trajectory))`` (the trajectory dict itself without
            ``data_fn``); see the class docstring for its entries.
        """
        norm = self._norm(data)
        obs, env_state, pstate, k_loop = self._start(params, key)

        def body(carry, t):
            obs, env_state, pstate, alive = carry
            action, new_pstate, obs2, env_state2, reward, term, trunc = self._transition(
                params, norm, obs, env_state, pstate, jax.random.fold_in(k_loop, t)
            )
            done = jnp.logical_or(term, trunc)
            out = {
                "obs": obs,
                "actions": action,
                "rewards": jnp.where(alive, reward, 0.0),
                "dones": jnp.logical_and(alive, done),
                "terminated": jnp.logical_and(alive, term),
                "truncated": jnp.logical_and(alive, trunc),
                "valid": alive,
                "policy_states": pstate,
            }
            alive = jnp.logical_and(alive, jnp.logical_not(done))
            return (obs2, env_state2, new_pstate, alive), out

        carry = (obs, env_state, pstate, jnp.ones((), bool))
        _, traj = jax.lax.scan(body, carry, jnp.arange(self.max_steps, dtype=jnp.int32))
        fitness = jnp.sum(traj["rewards"])
        traj["episode_length"] = jnp.sum(traj["valid"].astype(jnp.int32))
        if self.obs_norm:
            traj["obs_stats"] = RunningStats.from_batch(traj["obs"], traj["valid"])
        if self.data_fn is None:
            return fitness, traj
        info = self.data_fn(traj)
        if self.obs_norm and isinstance(info, dict) and "obs_stats" not in info:
            info = {**info, "obs_stats": traj["obs_stats"]}
        return fitness, info

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(env={self.env.name!r}, max_steps={self.max_steps}, "
            f"mode={self.mode!r}, obs_norm={self.obs_norm})"
        )


def _compacting_evaluate(task: EnvTask) -> Callable[..., tuple[Array, dict]]:
    """``task._evaluate_one`` that, under ``jax.vmap``, runs as one batched rollout
    (``task._evaluate_batch``) able to skip finished members; nested vmaps are merged into
    one batch."""

    @custom_vmap
    def member(params, key, data):
        return task._evaluate_one(params, key, data)

    @custom_vmap
    def batch(params, keys, data):
        return task._evaluate_batch(params, keys, data)

    def broadcast(tree, size):
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (size,) + x.shape), tree)

    def all_batched(tree):
        return jax.tree.map(lambda _: True, tree)

    @member.def_vmap
    def member_rule(axis_size, in_batched, params, key, data):
        p_b, k_b, d_b = (any(jax.tree.leaves(b)) for b in in_batched)
        if d_b:  # per-member task data: plain vmapped early exit
            fn = jax.vmap(task._evaluate_one, in_axes=(0 if p_b else None, 0 if k_b else None, 0))
            out = fn(params, key, data)
            return out, all_batched(out)
        params = params if p_b else broadcast(params, axis_size)
        key = key if k_b else broadcast(key, axis_size)
        out = batch(params, key, data)
        return out, all_batched(out)

    @batch.def_vmap
    def batch_rule(axis_size, in_batched, params, keys, data):
        p_b, k_b, d_b = (any(jax.tree.leaves(b)) for b in in_batched)
        if d_b:
            fn = jax.vmap(task._evaluate_batch, in_axes=(0 if p_b else None, 0 if k_b else None, 0))
            out = fn(params, keys, data)
            return out, all_batched(out)
        params = params if p_b else broadcast(params, axis_size)
        keys = keys if k_b else broadcast(keys, axis_size)
        n = keys.shape[1]
        merge = lambda x: x.reshape((axis_size * n,) + x.shape[2:])  # noqa: E731
        out = batch(jax.tree.map(merge, params), merge(keys), data)
        split = lambda x: x.reshape((axis_size, n) + x.shape[1:])  # noqa: E731
        out = jax.tree.map(split, out)
        return out, all_batched(out)

    return member


class GymnaxTask(EnvTask):
    """A gymnax environment as a fitness function of policy parameters.

    Args:
        env: a gymnax id (e.g. ``"CartPole-v1"``), a gymnax ``Environment`` instance or a
            :class:`GymnaxEnv`.
        policy: a policy module (see :class:`BasePolicy`); ``params`` are its variables.
        model_factory: alternatively, ``params -> model`` (see :func:`make_model_factory`).
        env_params: gymnax ``EnvParams`` (default: the environment's defaults).
        max_steps: step limit of a rollout (default: the environment's episode limit).
        data_fn: map applied to the trajectory dict in trajectory mode.
        obs_norm: normalise observations with running statistics carried in ``data``.
        obs_clip: clip of normalised observations.
        mode: ``"early_exit"`` (default) or ``"trajectory"`` for ``__call__``.
        compact: under ``jax.vmap``, step only the still-running members once at most a
            quarter of the batch is left (early-exit mode; see :class:`EnvTask`).

    >>> import realax.tasks as rt
    >>> task = rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True))
    >>> params, _ = rt.make_model_factory(task.policy, jnp.zeros(4), jax.random.key(0))
    >>> fitness, info = jax.jit(task)(params, jax.random.key(1))
    >>> bool(fitness == info["episode_length"])  # CartPole pays 1 per step
    True
    """

    def __init__(
        self,
        env: Any,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        env_params: Any = None,
        max_steps: int | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool = False,
    ):
        from ._gymnax import GymnaxEnv

        if isinstance(env, Env):
            if env_params is not None:
                raise ValueError("GymnaxTask: env_params can't be combined with an Env instance")
        else:
            env = GymnaxEnv(env, env_params, autoreset=False)
        super().__init__(
            env,
            policy=policy,
            model_factory=model_factory,
            max_steps=max_steps,
            data_fn=data_fn,
            obs_norm=obs_norm,
            obs_clip=obs_clip,
            mode=mode,
            compact=compact,
        )


class BraxTask(EnvTask):
    """A brax environment as a fitness function of policy parameters.

    Args:
        env: a brax environment name (e.g. ``"inverted_pendulum"``), a brax ``Env`` or a
            :class:`BraxEnv`.
        max_steps: episode length (brax environments have no limit of their own).
        policy: a policy module; ``params`` are its variables.
        model_factory: alternatively, ``params -> model``.
        backend: brax physics pipeline (``"positional"``, ``"generalized"``, ``"spring"``,
            ``"mjx"``) when ``env`` is a name.
        data_fn: map applied to the trajectory dict in trajectory mode.
        env_kwargs: extra keyword arguments of the brax environment's constructor.
        obs_norm: normalise observations with running statistics carried in ``data``.
        obs_clip: clip of normalised observations.
        mode: ``"early_exit"`` (default) or ``"trajectory"`` for ``__call__``.
        compact: under ``jax.vmap``, step only the still-running members once at most a
            quarter of the batch is left (early-exit mode; see :class:`EnvTask`).

    >>> import realax.tasks as rt
    >>> policy = rt.MLPPolicy(action_dims=1, action_low=-3.0, action_high=3.0)
    >>> task = rt.BraxTask("inverted_pendulum", 50, policy=policy)
    >>> params, _ = rt.make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
    >>> fitness, traj = jax.jit(task.rollout)(params, jax.random.key(0))
    >>> traj["obs"].shape, traj["actions"].shape, bool(traj["rewards"].sum() == fitness)
    ((50, 4), (50, 1), True)
    """

    def __init__(
        self,
        env: Any,
        max_steps: int = 1000,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        backend: str = "positional",
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool = False,
    ):
        from ._brax import BraxEnv

        if not isinstance(env, Env):
            if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
                raise ValueError(
                    f"BraxTask: max_steps must be a positive int (got max_steps={max_steps!r})"
                )
            kwargs = dict(env_kwargs or {})
            if isinstance(env, str):
                env = BraxEnv(
                    env, backend=backend, episode_length=max_steps, autoreset=False, **kwargs
                )
            else:
                env = BraxEnv(env, episode_length=max_steps, autoreset=False, **kwargs)
        super().__init__(
            env,
            policy=policy,
            model_factory=model_factory,
            max_steps=max_steps,
            data_fn=data_fn,
            obs_norm=obs_norm,
            obs_clip=obs_clip,
            mode=mode,
            compact=compact,
        )


class JumanjiTask(EnvTask):
    """A jumanji environment as a fitness function of policy parameters.

    Observations are flattened to one vector (see :class:`JumanjiEnv`).

    Args:
        env: a jumanji id (e.g. ``"Snake-v1"``), a jumanji ``Environment`` or a
            :class:`JumanjiEnv`.
        max_steps: step limit of a rollout (default: the environment's ``time_limit``, or
            1000 for environments without one).
        policy: a policy module; ``params`` are its variables.
        model_factory: alternatively, ``params -> model``.
        data_fn: map applied to the trajectory dict in trajectory mode.
        env_kwargs: keyword arguments of ``jumanji.make`` (e.g. ``num_rows=6``).
        obs_fn: raw observation -> array (default: a flattening chosen per environment).
        obs_norm: normalise observations with running statistics carried in ``data``.
        obs_clip: clip of normalised observations.
        mode: ``"early_exit"`` (default) or ``"trajectory"`` for ``__call__``.
        compact: under ``jax.vmap``, step only the still-running members once at most a
            quarter of the batch is left (early-exit mode; see :class:`EnvTask`).

    >>> import realax.tasks as rt
    >>> policy = rt.MLPPolicy(action_dims=4, discrete=True, width=8, depth=1)
    >>> task = rt.JumanjiTask("Game2048-v1", 20, policy=policy)
    >>> task.env.obs_shape
    (20,)
    >>> params, _ = rt.make_model_factory(policy, jnp.zeros(20), jax.random.key(0))
    >>> fitness, info = jax.jit(task)(params, jax.random.key(1))
    >>> 1 <= int(info["episode_length"]) <= 20
    True
    """

    def __init__(
        self,
        env: Any,
        max_steps: int | None = None,
        policy: Any = None,
        model_factory: Callable[[Any], Any] | None = None,
        data_fn: Callable[[dict[str, Any]], Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
        obs_fn: Callable[[Any], Array] | None = None,
        *,
        obs_norm: bool = False,
        obs_clip: float = 10.0,
        mode: str = "early_exit",
        compact: bool = False,
    ):
        from ._jumanji import JumanjiEnv

        if not isinstance(env, Env):
            env = JumanjiEnv(env, autoreset=False, obs_fn=obs_fn, **dict(env_kwargs or {}))
        super().__init__(
            env,
            policy=policy,
            model_factory=model_factory,
            max_steps=max_steps,
            data_fn=data_fn,
            obs_norm=obs_norm,
            obs_clip=obs_clip,
            mode=mode,
            compact=compact,
        )
