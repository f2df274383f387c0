"""Table 10 -- recurrent PPO on CartPole-v1 with the velocities hidden, PureJaxRL's PPO-RNN
configuration.

The task: gymnax CartPole-v1 observing only the cart position and the pole angle (entries 0
and 2; ``realax.tasks.mask_observation``). The configuration is that of PureJaxRL's
``ppo_rnn.py``: 4 environments x 128 steps per update, 4 epochs x 4 minibatches (of one
environment's whole sequence each), 5e5 env-steps, Adam 2.5e-4 annealed linearly, gamma 0.99,
GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5, gradient norm 0.5; a 128-unit ReLU
embedding, a 128-unit GRU, 128-unit ReLU actor and critic heads.

* ``realax``: ``OnPolicyTrainer`` with ``realax.agents.RecurrentPPO`` (one greedy
  evaluation of 128 episodes at the end, inside the timed program);
* ``hand-written loop``: the same algorithm written here in plain JAX / flax / optax after
  reading PureJaxRL's script (a reset of the hidden state before the step after an episode
  end, GAE that treats every episode end as terminal, as PureJaxRL does), evaluated
  afterwards, outside the timing, on 128 greedy episodes.

Both programs run in one process, compiled first (compile time reported separately), then
interleaved: warm run r of realax, then warm run r of the loop, so load from other processes
falls on both alike. Env-steps/s = steps / median warm run time.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

KEEP = (0, 2)


def base_cfg(quick: bool) -> dict[str, Any]:
    return {
        "num_envs": 4,
        "num_steps": 128,
        "num_epochs": 4,
        "num_minibatches": 4,
        "total_timesteps": 4_096 if quick else 500_000,
        "lr": 2.5e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_eps": 0.2,
        "ent_coef": 0.01,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
        "width": 32 if quick else 128,
        "seed": 0,
        "repeats": 1 if quick else 3,
    }


def plan(quick: bool) -> list[dict[str, Any]]:
    return [
        {
            "group": "CartPole-v1 (obs 0, 2)",
            "label": "realax RecurrentPPO vs a hand-written PPO-RNN loop",
            "module": "ppo_rnn",
            "func": "compare",
            "cfg": base_cfg(quick),
            "realax": True,
        }
    ]


# --------------------------------------------------------------------------- realax


def realax_trainer(cfg: dict[str, Any]) -> Any:
    import realax.tasks as rt
    from realax.agents import RecurrentPPO
    from realax.train.rl import OnPolicyTrainer

    width = cfg["width"]
    steps = cfg["total_timesteps"] // (cfg["num_envs"] * cfg["num_steps"])
    return OnPolicyTrainer(
        RecurrentPPO,
        rt.mask_observation(rt.make("CartPole-v1"), keep=list(KEEP)),
        num_envs=cfg["num_envs"],
        num_steps=cfg["num_steps"],
        train_steps=steps,
        anneal_lr=True,
        agent_kwargs={
            "learning_rate": cfg["lr"],
            "update_epochs": cfg["num_epochs"],
            "num_minibatches": cfg["num_minibatches"],
            "discount": cfg["gamma"],
            "gae_lambda": cfg["gae_lambda"],
            "clip_eps": cfg["clip_eps"],
            "vf_coef": cfg["vf_coef"],
            "ent_coef": cfg["ent_coef"],
            "max_grad_norm": cfg["max_grad_norm"],
            "hidden_size": width,
            "hidden_dims": (width,),
            "head_dims": (width,),
        },
        eval_freq=steps,
        eval_episodes=128,
    )


# --------------------------------------------------------------------------- the loop


def make_loop(cfg: dict[str, Any]) -> tuple[Any, Any]:
    """``(train(key) -> params, evaluate(params, key) -> mean greedy return)``."""
    import flax.linen as nn
    import gymnax
    import jax
    import jax.numpy as jnp
    import optax

    env, env_params = gymnax.make("CartPole-v1")
    n_envs, n_steps, width = cfg["num_envs"], cfg["num_steps"], cfg["width"]
    n_mb, epochs = cfg["num_minibatches"], cfg["num_epochs"]
    updates = cfg["total_timesteps"] // (n_envs * n_steps)
    keep = jnp.asarray(KEEP)
    ortho = nn.initializers.orthogonal

    class Net(nn.Module):
        @nn.compact
        def __call__(self, h, obs):
            x = nn.relu(nn.Dense(width, kernel_init=ortho(2**0.5))(obs))
            h, y = nn.GRUCell(features=width)(h, x)
            pi = nn.relu(nn.Dense(width, kernel_init=ortho(2.0))(y))
            logits = nn.Dense(2, kernel_init=ortho(0.01))(pi)
            v = nn.relu(nn.Dense(width, kernel_init=ortho(2.0))(y))
            return h, logits, nn.Dense(1, kernel_init=ortho(1.0))(v)[..., 0]

    net = Net()
    sched = optax.linear_schedule(cfg["lr"], 0.0, updates * epochs * n_mb)
    tx = optax.chain(optax.clip_by_global_norm(cfg["max_grad_norm"]), optax.adam(sched, eps=1e-5))
    zeros = jnp.zeros((n_envs, width))

    def observe(o):
        return o[..., keep]

    def env_step(carry, key):
        params, state, obs, done, h = carry
        k_act, k_env = jax.random.split(key)
        h = jnp.where(done[:, None], 0.0, h)  # a new episode starts from zeros
        h_new, logits, value = net.apply(params, h, obs)
        action = jax.random.categorical(k_act, logits)
        logp = jax.nn.log_softmax(logits)[jnp.arange(n_envs), action]
        obs2, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n_envs), state, action, env_params
        )
        done2 = term | trunc  # gymnax 1.0 splits PureJaxRL's `done`
        row = (obs, done, action, logp, value, reward, done2)
        return (params, state, observe(obs2), done2, h_new), row

    def advantages(values, rewards, dones_after, last_value):
        def back(carry, x):
            gae, next_v = carry
            v, r, d = x
            nonterminal = 1.0 - d
            delta = r + cfg["gamma"] * next_v * nonterminal - v
            gae = delta + cfg["gamma"] * cfg["gae_lambda"] * nonterminal * gae
            return (gae, v), gae

        init = (jnp.zeros_like(last_value), last_value)
        _, adv = jax.lax.scan(back, init, (values, rewards, dones_after), reverse=True)
        return adv, adv + values

    def loss(params, h0, batch):
        obs, starts, action, logp_old, v_old, adv, ret = batch

        def step(h, x):
            o, s = x
            h = jnp.where(s[:, None], 0.0, h)
            h, logits, v = net.apply(params, h, o)
            return h, (logits, v)

        _, (logits, v) = jax.lax.scan(step, h0, (obs, starts))
        logps = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logps, action[..., None], -1)[..., 0]
        ratio = jnp.exp(logp - logp_old)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        eps = cfg["clip_eps"]
        actor = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - eps, 1 + eps) * adv).mean()
        v_clip = v_old + jnp.clip(v - v_old, -eps, eps)
        critic = 0.5 * jnp.maximum((v - ret) ** 2, (v_clip - ret) ** 2).mean()
        entropy = -(jnp.exp(logps) * logps).sum(-1).mean()
        return actor + cfg["vf_coef"] * critic - cfg["ent_coef"] * entropy

    def update(carry, key):
        params, opt, state, obs, done, h = carry
        h_start, k_roll, k_perm = h, *jax.random.split(key)
        carry2, rows = jax.lax.scan(
            env_step, (params, state, obs, done, h), jax.random.split(k_roll, n_steps)
        )
        _, state, obs, done, h = carry2
        obs_t, starts, action, logp, value, reward, done_after = rows
        _, _, last_v = net.apply(params, jnp.where(done[:, None], 0.0, h), obs)
        adv, ret = advantages(value, reward, done_after, jnp.where(done, 0.0, last_v))
        data = (obs_t, starts, action, logp, value, adv, ret)

        def epoch(po, k):
            perm = jax.random.permutation(k, n_envs).reshape(n_mb, -1)

            def minibatch(po, idx):
                p, o = po
                batch = jax.tree.map(lambda x: x[:, idx], data)
                g = jax.grad(loss)(p, h_start[idx], batch)
                upd, o = tx.update(g, o, p)
                return (optax.apply_updates(p, upd), o), None

            return jax.lax.scan(minibatch, po, perm)[0], None

        (params, opt), _ = jax.lax.scan(epoch, (params, opt), jax.random.split(k_perm, epochs))
        return (params, opt, state, obs, done, h), None

    def train(key):
        k_init, k_env, k_run = jax.random.split(key, 3)
        params = net.init(k_init, zeros, jnp.zeros((n_envs, len(KEEP))))
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_env, n_envs), env_params
        )
        carry = (params, tx.init(params), state, observe(obs), jnp.zeros(n_envs, bool), zeros)
        carry, _ = jax.lax.scan(update, carry, jax.random.split(k_run, updates))
        return carry[0]

    def evaluate(params, key, episodes=128):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, episodes), env_params
        )

        def step(carry, k):
            state, obs, h, alive, ret = carry
            h, logits, _ = net.apply(params, h, observe(obs))
            obs, state, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k, episodes), state, logits.argmax(-1), env_params
            )
            return (state, obs, h, alive & ~(term | trunc), ret + r * alive), None

        init = (state, obs, jnp.zeros((episodes, width)), jnp.ones(episodes, bool),
                jnp.zeros(episodes))  # fmt: skip
        carry, _ = jax.lax.scan(step, init, jax.random.split(k_run, 500))
        return carry[-1].mean()

    return jax.jit(train), jax.jit(evaluate)


# --------------------------------------------------------------------------- compare


def compare(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax

    from benchmarks._common import compile_seconds

    trainer = realax_trainer(cfg)
    state0 = trainer.initialize(jax.random.key(cfg["seed"]))
    train, evaluate = make_loop(cfg)
    key = jax.random.key(cfg["seed"])
    runs = {
        "realax": lambda: jax.block_until_ready(trainer.train(state0)),
        "loop": lambda: jax.block_until_ready(train(key)),
    }
    compile_seconds()
    out, compile_s, times = {}, {}, {name: [] for name in runs}
    for name, call in runs.items():
        c0 = compile_seconds()
        out[name] = call()
        compile_s[name] = compile_seconds() - c0
    for _ in range(cfg["repeats"]):  # interleaved warm runs
        for name, call in runs.items():
            c0, t0 = compile_seconds(), time.perf_counter()
            out[name] = call()
            times[name].append(time.perf_counter() - t0 - (compile_seconds() - c0))
    state, metrics = out["realax"]
    env_steps = int(state.env_steps) - int(state0.env_steps)
    loop_return = float(evaluate(out["loop"], jax.random.key(cfg["seed"] + 1)))
    run = {name: statistics.median(t) for name, t in times.items()}
    return {
        "env_steps": env_steps,
        "variants": [
            {
                "name": "realax OnPolicyTrainer + RecurrentPPO",
                "compile_s": compile_s["realax"],
                "run_s": run["realax"],
                "run_times_s": times["realax"],
                "final_return": float(metrics["eval_return"][-1]),
            },
            {
                "name": "hand-written PPO-RNN loop (PureJaxRL's configuration)",
                "compile_s": compile_s["loop"],
                "run_s": run["loop"],
                "run_times_s": times["loop"],
                "final_return": loop_return,
            },
        ],
        "compile_s": compile_s["realax"],
        "run_s": run["realax"],
    }


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else base_cfg(quick)
    out = [
        f"CartPole-v1 observing entries {list(KEEP)} (position, angle); {cfg['num_envs']} envs x "
        f"{cfg['num_steps']} steps, {cfg['num_epochs']} epochs x {cfg['num_minibatches']} "
        f"minibatches of whole sequences, GRU {cfg['width']}, {cfg['total_timesteps']:,} "
        f"env-steps, one seed; run = median of {cfg['repeats']} interleaved warm run(s).",
        "",
    ]
    r = rows[0] if rows else None
    if r is None or not r.get("ok"):
        return "\n".join([*out, "not run: " + short_error((r or {}).get("error") or "", 300)])
    res = r["result"]
    base = res["variants"][1]["run_s"]
    body = [
        [
            v["name"],
            fmt_s(v["compile_s"]),
            fmt_s(v["run_s"]),
            fmt_rate(res["env_steps"] / v["run_s"]),
            f"{v['final_return']:.1f}",
            f"{v['run_s'] / base:.2f}",
        ]
        for v in res["variants"]
    ]
    header = ["variant", "compile (s)", "run (s)", "env-steps/s", "final return", "run / loop"]
    out.append(table(header, body))
    out.append("")
    out.append(f"Peak RSS of the process (both programs): {fmt_mem(r.get('peak_rss_mb'))}.")
    return "\n".join(out)
