"""Episodes of a policy in an environment, as pure functions of a :class:`Runner`.

- :func:`early_exit`: a ``lax.while_loop`` that stops when the episode ends;
- :func:`trajectory`: a ``lax.scan`` over ``max_steps`` steps, recording everything;
- :func:`early_exit_batch` and :func:`compacting`: the early exit of a batch of members that
  steps only the running ones once at most a quarter of the batch is left;
- :func:`prefers_compact`: the automatic choice between the two (``compact="auto"``), by the
  batch size and the cost of one step.

All of them draw the same randomness for step ``t`` (``fold_in(k_loop, t)``), so they return
the same episode return for the same key. ``norm`` is the :class:`RunningStats` observations
are normalised with (``None``: no normalisation), already checked by the task.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from ._env import Env
from ._obs_norm import RunningStats

Array = jax.Array

#: ``compact="auto"`` compacts batches of at least this many members ...
AUTO_MIN_BATCH = 32
#: ... whose step (environment and policy, one member) has at least this many jaxpr
#: operations: brax's positional inverted_pendulum has ~6,000, hopper ~10,000, gymnax's
#: CartPole and Pendulum ~100 (where the gathers and the extra loop cost more than they save)
AUTO_MIN_STEP_OPS = 1000


@dataclasses.dataclass(frozen=True, eq=False)
class Runner:
    """What a rollout needs: the environment, the policy as two functions, the limits.

    Attributes:
        env: the environment (``autoreset=False``).
        init: ``(params, key) -> policy_state`` at the start of an episode.
        act: ``(params, obs, policy_state, key) -> (action, policy_state)``.
        max_steps: the most steps an episode runs.
        obs_norm: whether rollouts report observation statistics (``info["obs_stats"]``).
        obs_clip: clip of normalised observations.
    """

    env: Env
    init: Callable[[Any, Array], Any]
    act: Callable[[Any, Array, Any, Array], tuple[Array, Any]]
    max_steps: int
    obs_norm: bool
    obs_clip: float


def _start(r: Runner, params: Any, key: Array):
    k_reset, k_policy, k_loop = jax.random.split(key, 3)
    obs, env_state = r.env.reset(k_reset)
    return obs, env_state, r.init(params, k_policy), k_loop


def _transition(r: Runner, params, norm, obs, env_state, pstate, key_t):
    k_act, k_env = jax.random.split(key_t)
    pol_obs = obs if norm is None else norm.normalize(obs, clip=r.obs_clip)
    action, new_pstate = r.act(params, pol_obs, pstate, k_act)
    obs2, env_state2, reward, term, trunc, _ = r.env.step(k_env, env_state, action)
    return action, new_pstate, obs2, env_state2, reward, term, trunc


# carry of the early-exit loop: (t, obs, env_state, pstate, return, done, obs_stats)
def _exit_init(r: Runner, params: Any, key: Array):
    obs, env_state, pstate, k_loop = _start(r, params, key)
    stats = RunningStats.create(shape=r.env.obs_shape) if r.obs_norm else None
    zero = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32), jnp.zeros((), bool)
    return (zero[0], obs, env_state, pstate, zero[1], zero[2], stats), k_loop


def _exit_step(r: Runner, params, norm, k_loop, carry):
    t, obs, env_state, pstate, ret, _, stats = carry
    if stats is not None:
        stats = stats.add(obs)
    _, pstate, obs, env_state, reward, term, trunc = _transition(
        r, params, norm, obs, env_state, pstate, jax.random.fold_in(k_loop, t)
    )
    done = jnp.logical_or(term, trunc)
    return t + 1, obs, env_state, pstate, ret + reward, done, stats


def _running(r: Runner, carry) -> Array:
    t, *_, done, _ = carry
    return jnp.logical_and(jnp.logical_not(done), t < r.max_steps)


def _exit_result(carry) -> tuple[Array, dict[str, Any]]:
    t, *_, ret, _, stats = carry
    info: dict[str, Any] = {"episode_length": t}
    if stats is not None:
        info["obs_stats"] = stats
    return ret, info


def early_exit(r: Runner, params: Any, key: Array, norm: Any) -> tuple[Array, dict]:
    """One episode, stopping when it ends: ``(return, {"episode_length"[, "obs_stats"]})``."""
    carry, k_loop = _exit_init(r, params, key)
    body = lambda c: _exit_step(r, params, norm, k_loop, c)  # noqa: E731
    return _exit_result(jax.lax.while_loop(lambda c: _running(r, c), body, carry))


def early_exit_batch(r: Runner, params: Any, keys: Array, norm: Any) -> tuple[Array, dict]:
    """:func:`early_exit` for a batch (leading axis of ``params`` and ``keys``) that steps
    only the running members once at most a quarter of the batch is left."""
    n = keys.shape[0]
    width = max(1, n // 4)
    carry, k_loop = jax.vmap(lambda p, k: _exit_init(r, p, k))(params, keys)
    step = jax.vmap(lambda p, k, c: _exit_step(r, p, norm, k, c))
    running = jax.vmap(lambda c: _running(r, c))

    def all_members(carry):
        mask = running(carry)
        new = step(params, k_loop, carry)

        def pick(a, b):
            return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

        return jax.tree.map(pick, new, carry)

    def few_members(carry):
        (idx,) = jnp.nonzero(running(carry), size=width, fill_value=n)
        take = lambda x: x.at[idx].get(mode="clip")  # noqa: E731
        new = step(jax.tree.map(take, params), take(k_loop), jax.tree.map(take, carry))
        put = lambda x, y: x.at[idx].set(y, mode="drop")  # noqa: E731
        return jax.tree.map(put, carry, new)

    def body(carry):
        left = jnp.sum(running(carry).astype(jnp.int32))
        return jax.lax.cond(left > width, all_members, few_members, carry)

    return _exit_result(jax.lax.while_loop(lambda c: jnp.any(running(c)), body, carry))


def trajectory(r: Runner, params: Any, key: Array, norm: Any) -> tuple[Array, dict]:
    """All ``max_steps`` steps, masked after the end: ``(return, trajectory dict)``.

    The dict holds ``obs``, ``actions``, ``rewards`` (0 after the end), ``dones``,
    ``terminated``, ``truncated``, ``valid``, ``policy_states``, ``episode_length`` and,
    with ``obs_norm``, ``obs_stats``.
    """
    obs, env_state, pstate, k_loop = _start(r, params, key)

    def body(carry, t):
        obs, env_state, pstate, alive = carry
        action, new_pstate, obs2, env_state2, reward, term, trunc = _transition(
            r, params, norm, obs, env_state, pstate, jax.random.fold_in(k_loop, t)
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
    _, traj = jax.lax.scan(body, carry, jnp.arange(r.max_steps, dtype=jnp.int32))
    traj["episode_length"] = jnp.sum(traj["valid"].astype(jnp.int32))
    if r.obs_norm:
        traj["obs_stats"] = RunningStats.from_batch(traj["obs"], traj["valid"])
    return jnp.sum(traj["rewards"]), traj


def _broadcast(tree: Any, size: int) -> Any:
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (size, *x.shape)), tree)


def _batched_rule(plain: Callable, batched: Callable) -> Callable:
    """A ``custom_vmap`` rule: ``plain`` vmapped when ``norm`` is per member, else
    ``batched(params, keys, norm, axis_size)`` with params and keys broadcast to the batch."""

    def rule(axis_size, in_batched, params, keys, norm):
        p_b, k_b, d_b = (any(jax.tree.leaves(b)) for b in in_batched)
        if d_b:  # per-member task data: plain vmapped early exit
            axes = (0 if p_b else None, 0 if k_b else None, 0)
            out = jax.vmap(plain, in_axes=axes)(params, keys, norm)
        else:
            params = params if p_b else _broadcast(params, axis_size)
            keys = keys if k_b else _broadcast(keys, axis_size)
            out = batched(params, keys, norm)
        return out, jax.tree.map(lambda _: True, out)

    return rule


def _count_ops(jaxpr: Any) -> int:
    """Operations of a jaxpr, those of its sub-jaxprs (loop bodies, branches) included."""
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    n += _count_ops(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    n += _count_ops(sub)
    return n


def step_ops(r: Runner, params: Any, key: Array, norm: Any) -> int:
    """jaxpr operations of one step of one member (environment and policy): the step cost
    :func:`prefers_compact` reads. ``params`` and ``key`` are one member's (or shapes)."""
    shapes = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), t)  # noqa: E731
    carry, k_loop = jax.eval_shape(lambda p, k: _exit_init(r, p, k), params, key)
    step = lambda p, k, c, n: _exit_step(r, p, n, k, c)  # noqa: E731
    return _count_ops(jax.make_jaxpr(step)(params, k_loop, carry, shapes(norm)).jaxpr)


def prefers_compact(batch: int, ops: int) -> bool:
    """``compact="auto"``'s choice: compact a batch of ``batch`` members whose step costs
    ``ops`` operations (:func:`step_ops`)?

    >>> prefers_compact(128, 6000), prefers_compact(128, 100), prefers_compact(8, 6000)
    (True, False, False)
    """
    return batch >= AUTO_MIN_BATCH and ops >= AUTO_MIN_STEP_OPS


def _member_shapes(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), tree)


def _auto_batch(r: Runner, name: str, said: dict[int, str]) -> Callable:
    """A batch rollout choosing :func:`early_exit_batch` or the plain vmapped early exit
    by :func:`prefers_compact` at the batch's final size; records the choice per batch size
    in ``said`` and names a compacting choice once on stderr."""
    ops: list[int] = []

    def run(params, keys, norm):
        n = keys.shape[0]
        if not ops:
            ops.append(step_ops(r, _member_shapes(params), _member_shapes(keys), norm))
        compact = prefers_compact(n, ops[0])
        if n not in said:
            said[n] = "compact" if compact else "vmap"
            if compact:
                print(
                    f"realax.tasks: {name}: a batch of {n} members and a step of {ops[0]:,} "
                    "operations, so the early exit steps only the running members once few "
                    "are left (compact='auto'; compact=False forces the plain vmap)",
                    file=sys.stderr,
                )
        if compact:
            return early_exit_batch(r, params, keys, norm)
        return jax.vmap(lambda p, k: early_exit(r, p, k, norm))(params, keys)

    return run


def compacting(
    r: Runner, auto: str | None = None, said: dict[int, str] | None = None
) -> Callable[[Any, Array, Any], tuple[Array, dict]]:
    """``early_exit(r, ...)`` that, under ``jax.vmap``, runs as one :func:`early_exit_batch`
    able to skip finished members; nested vmaps are merged into one batch.

    ``auto``: a name for the note on stderr; given it (``compact="auto"``), the merged batch
    runs compacted only where :func:`prefers_compact` says so, else as a plain vmap, and
    ``said`` records each batch size's choice (``"compact"`` or ``"vmap"``).
    """

    @custom_vmap
    def member(params, key, norm):
        return early_exit(r, params, key, norm)

    @custom_vmap
    def batch(params, keys, norm):
        return plain_batch(params, keys, norm)

    def merged(params, keys, norm):  # (outer, inner) axes -> one batch and back
        outer, inner = keys.shape[:2]
        flat = lambda x: x.reshape((outer * inner, *x.shape[2:]))  # noqa: E731
        out = batch(jax.tree.map(flat, params), flat(keys), norm)
        return jax.tree.map(lambda x: x.reshape((outer, inner, *x.shape[1:])), out)

    plain_member = lambda p, k, n: early_exit(r, p, k, n)  # noqa: E731
    if auto:
        plain_batch = _auto_batch(r, auto, {} if said is None else said)
    else:
        plain_batch = lambda p, k, n: early_exit_batch(r, p, k, n)  # noqa: E731
    member.def_vmap(_batched_rule(plain_member, batch))
    batch.def_vmap(_batched_rule(plain_batch, merged))
    return member
