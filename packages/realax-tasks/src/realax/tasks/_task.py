"""Tasks: the episode return of a policy in an environment as a fitness function."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._env import Env
from ._obs_norm import RunningStats, merge_stats
from ._policy import check_policy, policy_or_factory
from ._rollout import Runner, compacting, early_exit, trajectory

Array = jax.Array
_MODES = ("early_exit", "trajectory")


def check_max_steps(owner: str, max_steps: Any) -> int:
    """``max_steps`` as an int, or a ``ValueError`` naming ``owner`` and the value."""
    bad = isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral)
    if bad or max_steps < 1:
        raise ValueError(f"{owner}: max_steps must be a positive int (got max_steps={max_steps!r})")
    return int(max_steps)


def _check_policy_args(owner: str, policy: Any, model_factory: Any, data_fn: Any) -> None:
    if (policy is None) == (model_factory is None):
        raise ValueError(
            f"{owner}: pass exactly one of policy= (a flax policy module, e.g. "
            "realax.tasks.MLPPolicy.from_env(env)) or model_factory= (params -> model); got "
            f"policy={'set' if policy is not None else None}, "
            f"model_factory={'set' if model_factory is not None else None}"
        )
    if data_fn is not None and not callable(data_fn):
        raise TypeError(f"{owner}: data_fn must be callable (got {type(data_fn).__name__})")
    if model_factory is not None and not callable(model_factory):
        raise TypeError(
            f"{owner}: model_factory must be callable params -> model "
            f"(got {type(model_factory).__name__})"
        )


class EnvTask:
    """``task(params, key, data=None) -> (fitness, info)``: the episode return of a policy.

    Build one from any :class:`Env` (``EnvTask(env, policy=...)``) or by name
    (:meth:`from_name`); :class:`GymnaxTask`, :class:`BraxTask` and :class:`JumanjiTask` are
    thin wrappers that build the environment from their suite's arguments. The return counts
    rewards up to and including the first step where ``terminated`` or ``truncated`` is
    true, and nothing after (a latched mask), and at most ``max_steps`` steps.

    Two rollout modes compute the same fitness from the same key:

    - early exit (:meth:`evaluate`, the default of ``__call__``): a ``lax.while_loop`` that
      stops when the episode ends; ``info`` holds ``episode_length`` (and ``obs_stats``).
    - full trajectory (:meth:`rollout`, or ``__call__`` with ``mode="trajectory"``): a
      ``lax.scan`` over ``max_steps`` steps whose ``info`` is ``data_fn(trajectory)``; the
      trajectory dict holds ``obs``, ``actions``, ``rewards`` (0 after the end), ``dones``,
      ``terminated``, ``truncated``, ``valid`` (step belongs to the episode),
      ``policy_states`` (the state each action was taken with), ``episode_length``.

    ``compact`` changes how the early-exit mode runs under ``jax.vmap`` (as
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
    the plain vmapped loop. ``compact="auto"`` (the default) chooses at compile time, for
    each batch: compaction for a batch of at least 32 members whose step (environment and
    policy) has at least 1,000 jaxpr operations (brax: ~6,000-10,000), the plain vmap
    otherwise (gymnax's CartPole or Pendulum: ~100); a compacting choice is named once on
    stderr and every choice is in :attr:`compact_choices` (batch size -> ``"compact"`` or
    ``"vmap"``). ``compact=True`` or ``False`` forces one.

    With ``policy=`` a flax policy module, ``params`` are its variables
    (``policy.init(key, obs, policy.initialize(key), key)``); with ``model_factory=``,
    ``model_factory(params)`` must return a model with ``model(obs, state, key) ->
    (action, state)`` and optionally ``model.initialize(key)``.

    With ``obs_norm=True`` observations are normalised with running statistics carried in
    ``data`` (a :class:`RunningStats` from :meth:`init_data`); every rollout reports the
    statistics of the raw observations it saw in ``info["obs_stats"]`` and
    :meth:`update_data` folds a population's worth of them into ``data``.

    Args:
        env: the :class:`Env` (used with ``autoreset=False``).
        policy: a policy module (see :class:`BasePolicy`); ``params`` are its variables.
        model_factory: alternatively, ``params -> model`` (see :func:`make_model_factory`).
        max_steps: step limit of a rollout (default: the environment's ``max_steps``).
        data_fn: map applied to the trajectory dict in trajectory mode.
        obs_norm: normalise observations with running statistics carried in ``data``.
        obs_clip: clip of normalised observations.
        mode: ``"early_exit"`` (default) or ``"trajectory"`` for ``__call__``.
        compact: under ``jax.vmap``, step only the still-running members once at most a
            quarter of the batch is left (early-exit mode; see above): ``"auto"``
            (default: by batch size and step cost), ``True`` or ``False``.
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
        compact: bool | str = "auto",
    ):
        cls = type(self).__name__
        if not isinstance(env, Env):
            raise TypeError(f"{cls}: env must be a realax.tasks.Env (got {type(env).__name__})")
        # a model factory in the policy position (the original's positional calls)
        policy, model_factory = policy_or_factory(cls, policy, model_factory)
        _check_policy_args(cls, policy, model_factory, data_fn)
        max_steps = check_max_steps(cls, env.max_steps if max_steps is None else max_steps)
        if mode not in _MODES:
            raise ValueError(f"{cls}: mode must be one of {_MODES} (got mode={mode!r})")
        if not isinstance(compact, bool) and compact != "auto":
            raise TypeError(
                f"{cls}: compact must be True or False, or 'auto' (got compact={compact!r})"
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
        self._runner = Runner(
            env=self.env,
            init=self._policy_init,
            act=self._policy_act,
            max_steps=self.max_steps,
            obs_norm=self.obs_norm,
            obs_clip=self.obs_clip,
        )
        #: ``compact="auto"``'s choice per batch size (``"compact"`` / ``"vmap"``), filled in
        #: when a vmapped evaluation is compiled
        self.compact_choices: dict[int, str] = {}
        auto = f"{cls}({self.env.name!r})" if compact == "auto" else None
        self._member_eval = (
            compacting(self._runner, auto, self.compact_choices) if compact else None
        )
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
        model = self._factory()(params)
        init = getattr(model, "initialize", None)
        return None if init is None else init(key)

    def _policy_act(self, params: Any, obs: Array, state: Any, key: Array):
        if self.policy is not None:
            return self.policy.apply(params, obs, state, key)
        return self._factory()(params)(obs, state, key)

    def _factory(self) -> Callable[[Any], Any]:
        assert self.model_factory is not None  # one of policy / model_factory is set
        return self.model_factory

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

    @classmethod
    def from_name(
        cls, name: str, *, env_kwargs: dict[str, Any] | None = None, **options: Any
    ) -> EnvTask:
        """The task of a registered environment, built with :func:`realax.tasks.make`.

        Args:
            name: any registered name (``realax envs`` lists them), e.g. ``"CartPole-v1"``,
                ``"brax/hopper"``, ``"Snake-v1"``.
            env_kwargs: options of :func:`realax.tasks.make` (e.g. ``backend=``,
                ``episode_length=``, ``num_rows=``).
            **options: the keyword options of :class:`EnvTask` (``policy=``, ``max_steps=``,
                ``obs_norm=``, ...).

        >>> import realax.tasks as rt
        >>> policy = rt.MLPPolicy(action_dims=2, discrete=True)
        >>> rt.EnvTask.from_name("CartPole-v1", policy=policy).max_steps
        500
        """
        from ._registry import make

        return cls(make(name, autoreset=False, **dict(env_kwargs or {})), **options)

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
        norm = self._norm(data)
        if self._member_eval is not None:
            return self._member_eval(params, key, norm)
        return early_exit(self._runner, params, key, norm)

    def rollout(self, params: Any, key: Array, data: Any = None) -> tuple[Array, Any]:
        """Full-trajectory rollout (``lax.scan`` over ``max_steps`` steps).

        Steps after the end of the episode are computed but masked: their rewards are 0 and
        ``valid`` is false. Uses the same randomness as :meth:`evaluate`, so both return the
        same fitness.

        Returns:
            ``(fitness, data_fn(trajectory))`` (the trajectory dict itself without
            ``data_fn``); see the class docstring for its entries.
        """
        fitness, traj = trajectory(self._runner, params, key, self._norm(data))
        if self.data_fn is None:
            return fitness, traj
        info = self.data_fn(traj)
        if self.obs_norm and isinstance(info, dict) and "obs_stats" not in info:
            info = {**info, "obs_stats": traj["obs_stats"]}
        return fitness, info

    def render(
        self,
        params: Any,
        key: Array,
        path: Any,
        *,
        max_steps: int | None = None,
        fps: int = 30,
        data: Any = None,
    ) -> Any:
        """Writes one episode of the policy with ``params`` as a GIF or MP4 (by suffix).

        A compiled rollout records the environment's states (the same episode as
        :meth:`evaluate` for the same key), then the suite's renderer draws one frame per
        state on the host: ``T + 1`` frames for an episode of ``T`` steps (see
        :func:`realax.tasks.render_rollout`). Never call it
        inside a compiled training loop. Renderer problems (a missing package, no OpenGL
        context for MuJoCo) raise before the rollout; see
        :func:`realax.tasks.check_render`.

        Args:
            params: the policy's parameters.
            key: the episode's PRNG key.
            path: ``.gif`` (pillow) or ``.mp4`` (ffmpeg: on PATH, or imageio-ffmpeg's).
            max_steps: step limit (default: the task's ``max_steps``).
            fps: frames per second.
            data: the task data (observation statistics with ``obs_norm``).

        Returns:
            The ``pathlib.Path`` written.
        """
        from ._render import render_rollout

        return render_rollout(
            self.env,
            self._policy_act,
            params,
            key,
            path,
            init=self._policy_init,
            max_steps=self.max_steps if max_steps is None else max_steps,
            fps=fps,
            norm=self._norm(data),
            obs_clip=self.obs_clip,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(env={self.env.name!r}, max_steps={self.max_steps}, "
            f"mode={self.mode!r}, obs_norm={self.obs_norm})"
        )
