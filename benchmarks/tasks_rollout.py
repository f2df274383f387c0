"""Rollout throughput of realax.tasks.GymnaxTask against hand-written lax.scan rollouts.

Same policy (MLPPolicy, width 32, depth 2), same population of parameters, same keys; each
variant evaluates every member for one episode under ``jax.vmap``. Reported:

* compile time (``jit(...).lower(...).compile()``), separately from run time;
* run time: median over ``--repeats`` runs of the compiled function;
* valid env-steps/s: steps that belong to an episode (up to and including the first
  terminated/truncated step) per second of run time, and the ratio to the hand-written scan
  doing the same work.

Variants:

* ``hand scan (step_env)``: a hand-written ``lax.scan`` over ``max_steps`` steps calling
  gymnax ``step_env`` + ``is_truncated`` with a latched reward mask -- the same work as
  the task's trajectory mode;
* ``hand scan (env.step)``: the loop most users write, with gymnax's auto-resetting
  ``env.step`` (it also computes a reset every step);
* ``GymnaxTask.rollout``: the task's full-trajectory mode (``lax.scan``);
* ``GymnaxTask.evaluate``: the task's early-exit mode (``lax.while_loop``, the default);
* ``GymnaxTask(compact=True).evaluate``: early exit that steps only the running members once
  at most a quarter of the batch is left.

Run: ``uv run python benchmarks/tasks_rollout.py [--popsize 256] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnax
import jax
import jax.numpy as jnp
import realax.tasks as rt


def hand_scan(env, env_params, policy, max_steps, autoreset_step):
    """A hand-written scan rollout returning (return, episode_length)."""

    def rollout(params, key):
        k_reset, _, k_loop = jax.random.split(key, 3)
        obs, state = env.reset_env(k_reset, env_params)

        def body(carry, t):
            obs, state, alive, ret = carry
            k_act, k_env = jax.random.split(jax.random.fold_in(k_loop, t))
            action, _ = policy.apply(params, obs, None, k_act)
            if autoreset_step:
                obs, state, reward, term, trunc, _ = env.step(k_env, state, action, env_params)
            else:
                k_step, _ = jax.random.split(k_env)
                obs, state, reward, term, _ = env.step_env(k_step, state, action, env_params)
                trunc = env.is_truncated(state, env_params)
            ret = ret + jnp.where(alive, reward, 0.0)
            length_inc = alive.astype(jnp.int32)
            alive = alive & ~(term | trunc)
            return (obs, state, alive, ret), length_inc

        init = (obs, state, jnp.ones((), bool), jnp.zeros(()))
        (_, _, _, ret), inc = jax.lax.scan(body, init, jnp.arange(max_steps))
        return ret, jnp.sum(inc)

    return rollout


def task_fn(method):
    def rollout(params, key):
        fitness, info = method(params, key)
        return fitness, info["episode_length"]

    return rollout


def measure(fn, pop, keys, repeats):
    jitted = jax.jit(jax.vmap(fn))
    t0 = time.perf_counter()
    compiled = jitted.lower(pop, keys).compile()
    compile_s = time.perf_counter() - t0
    out = jax.block_until_ready(compiled(pop, keys))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(pop, keys))
        times.append(time.perf_counter() - t0)
    return compile_s, statistics.median(times), out


def bench_env(name, popsize, repeats, param_scale):
    env, env_params = gymnax.make(name)
    wrapped = rt.make(name)
    policy = rt.MLPPolicy.from_env(wrapped, width=32, depth=2)
    example = jnp.zeros(wrapped.obs_shape)
    pop = jax.vmap(lambda k: rt.make_model_factory(policy, example, k)[0])(
        jax.random.split(jax.random.key(0), popsize)
    )
    pop = jax.tree.map(lambda x: param_scale * x, pop)
    keys = jax.random.split(jax.random.key(1), popsize)
    task = rt.GymnaxTask(name, policy=policy)
    compact = rt.GymnaxTask(name, policy=policy, compact=True)
    max_steps = task.max_steps
    variants = [
        ("hand scan (step_env)", hand_scan(env, env_params, policy, max_steps, False)),
        ("hand scan (env.step)", hand_scan(env, env_params, policy, max_steps, True)),
        ("GymnaxTask.rollout", task_fn(task.rollout)),
        ("GymnaxTask.evaluate", task_fn(task.evaluate)),
        ("GymnaxTask(compact=True).evaluate", task_fn(compact.evaluate)),
    ]
    rows = []
    for label, fn in variants:
        compile_s, run_s, (ret, length) = measure(fn, pop, keys, repeats)
        valid = int(jnp.sum(length))
        rows.append((label, compile_s, run_s, valid, float(jnp.mean(ret))))
    base = rows[0][3] / rows[0][2]
    print(
        f"\n{name}: popsize={popsize}, max_steps={max_steps}, "
        f"mean episode length={rows[0][3] / popsize:.1f}"
    )
    print(
        f"| variant | compile (s) | run (ms, median of {repeats}) | valid steps | "
        "valid env-steps/s | vs hand scan (step_env) | mean return |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, compile_s, run_s, valid, mean_ret in rows:
        sps = valid / run_s
        print(
            f"| {label} | {compile_s:.2f} | {1e3 * run_s:.1f} | {valid} | {sps:,.0f} | "
            f"{sps / base:.2f}x | {mean_ret:.1f} |"
        )
    returns = {r[0]: r[4] for r in rows}
    assert len({round(v, 3) for k, v in returns.items() if "env.step" not in k}) == 1, returns


def bench_early_exit(popsizes, repeats):
    """Early exit vs full length as a function of the batch: a vmapped while_loop runs until
    the longest episode of the batch ends."""
    name = "CartPole-v1"
    wrapped = rt.make(name)
    policy = rt.MLPPolicy.from_env(wrapped, width=32, depth=2)
    task = rt.GymnaxTask(name, policy=policy)
    compact = rt.GymnaxTask(name, policy=policy, compact=True)
    example = jnp.zeros(wrapped.obs_shape)
    print(f"\n{name}, early exit vs full length by batch size (random parameters)")
    print(
        "| popsize | longest episode | mean episode | evaluate (ms) | compact (ms) | "
        "rollout (ms) | speed-up of early exit | of compact |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for popsize in popsizes:
        pop = jax.vmap(lambda k: rt.make_model_factory(policy, example, k)[0])(
            jax.random.split(jax.random.key(2), popsize)
        )
        keys = jax.random.split(jax.random.key(3), popsize)
        _, t_exit, (_, length) = measure(task_fn(task.evaluate), pop, keys, repeats)
        _, t_compact, _ = measure(task_fn(compact.evaluate), pop, keys, repeats)
        _, t_full, _ = measure(task_fn(task.rollout), pop, keys, repeats)
        print(
            f"| {popsize} | {int(length.max())} | {float(length.mean()):.1f} | "
            f"{1e3 * t_exit:.2f} | {1e3 * t_compact:.2f} | {1e3 * t_full:.2f} | "
            f"{t_full / t_exit:.1f}x | {t_full / t_compact:.1f}x |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--popsize", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    # CartPole with random parameters: episodes end early (early exit pays off).
    bench_env("CartPole-v1", args.popsize, args.repeats, 1.0)
    # Pendulum never terminates: every episode runs all 200 steps (pure loop overhead).
    bench_env("Pendulum-v1", args.popsize, args.repeats, 1.0)
    bench_early_exit((1, 8, 64, 256), args.repeats)


if __name__ == "__main__":
    main()
