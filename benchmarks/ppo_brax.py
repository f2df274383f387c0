"""Table 10 -- PPO with observation normalisation on brax inverted_pendulum: realax against
brax's own trainer (``brax.training.agents.ppo.train``) on the same configuration.

16 environments x 64 steps per update (brax: ``num_envs=16, unroll_length=64, batch_size=4,
num_minibatches=4``: the same 1,024 transitions per update in 4 minibatches of 256),
4 epochs, Adam 3e-4 with gradient-norm clip 0.5, gamma 0.99, GAE lambda 0.95, clip 0.2,
entropy 0.01, advantages normalised, tanh MLPs 32x32 for actor and critic, the positional
backend, 1,000-step episodes, running observation statistics (brax's
``normalize_observations=True``, realax's ``normalize_obs=True``; brax has no reward
scaling by the return's variance, so realax runs without it here). Differences that remain:
brax's policy is a tanh-squashed Gaussian, realax's a Gaussian clipped to the bounds; brax
bootstraps every truncation the same way (``bootstrap_on_timeout=True``).

* ``realax``: ``OnPolicyTrainer`` compiled with ``trainer.run`` (compile timed apart), run
  without in-loop evaluation, then ``evaluate(trainer.policy(state), ...)``;
* ``brax``: ``ppo.train`` (with ``jax.device_put_replicated``, removed in jax 0.10, put back
  by a three-line shim) with ``num_evals=3``: two equal training epochs; env-steps/s is the
  second epoch's, its time net of the JAX compilation that happened inside it (JAX's
  compile-time events, by host time), compile time the compilation inside both epochs.

Rows alternate realax / brax (``repeats`` pairs, each in its own process) so that load on a
shared machine hits both alike; the table reports medians.
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def base_cfg(quick: bool) -> dict[str, Any]:
    return {
        "num_envs": 16,
        "num_steps": 64,
        "num_epochs": 4,
        "num_minibatches": 4,
        "train_steps": 4 if quick else 100,
        "lr": 3e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_eps": 0.2,
        "ent_coef": 0.01,
        "max_grad_norm": 0.5,
        "hidden": 32,
        "eval_episodes": 16,
        "backend": "positional",
        "seed": 0,
        "repeats": 1 if quick else 3,
    }


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = base_cfg(quick)
    rows = []
    for r in range(cfg["repeats"]):
        for lib in ("realax", "brax"):
            rows.append(
                {
                    "group": "inverted_pendulum",
                    "label": f"{lib} #{r + 1}",
                    "module": "ppo_brax",
                    "func": f"{lib}_ppo",
                    "cfg": cfg,
                    "realax": lib == "realax",
                    "optional": lib == "brax",
                }
            )
    return rows


def realax_ppo(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer, evaluate

    trainer = OnPolicyTrainer(
        PPO,
        "inverted_pendulum",
        num_envs=cfg["num_envs"],
        num_steps=cfg["num_steps"],
        train_steps=cfg["train_steps"],
        normalize_obs=True,
        env_kwargs={"backend": cfg["backend"]},
        eval_episodes=0,
        agent_kwargs={
            "learning_rate": cfg["lr"],
            "update_epochs": cfg["num_epochs"],
            "num_minibatches": cfg["num_minibatches"],
            "discount": cfg["gamma"],
            "gae_lambda": cfg["gae_lambda"],
            "clip_eps": cfg["clip_eps"],
            "ent_coef": cfg["ent_coef"],
            "max_grad_norm": cfg["max_grad_norm"],
            "hidden_dims": (cfg["hidden"],) * 2,
            "activation": "tanh",
        },
    )
    state, _, timing = trainer.run(jax.random.key(cfg["seed"]))
    returns, _ = evaluate(
        trainer.policy(state), trainer.env, jax.random.key(cfg["seed"] + 1),
        episodes=cfg["eval_episodes"], action_fn=trainer.env_action,
    )  # fmt: skip
    return {
        "compile_s": timing["compile_seconds"],
        "run_s": timing["train_seconds"],
        "env_steps": timing["env_steps"],
        "sps": timing["env_steps_per_second"],
        "final_return": float(returns.mean()),
    }


def _shim_device_put_replicated() -> None:
    """brax 0.14.2's trainer calls ``jax.device_put_replicated``, which jax 0.10 removed
    (``AttributeError``): give it back (a copy per device, as a pmap output)."""
    import jax
    import jax.numpy as jnp

    def device_put_replicated(x: Any, devices: Any) -> Any:
        # a pmap output: the sharding the trainer's pmapped epoch returns itself
        return jax.pmap(lambda _: x, devices=list(devices))(jnp.arange(len(devices)))

    jax.device_put_replicated = device_put_replicated  # type: ignore[attr-defined]


def brax_ppo(cfg: dict[str, Any]) -> dict[str, Any]:
    import functools

    _shim_device_put_replicated()
    from brax import envs
    from brax.training.agents.ppo import networks, train
    from flax import linen

    per_update = cfg["num_envs"] * cfg["num_steps"]
    epochs: list[dict[str, float]] = []

    import jax

    from benchmarks._common import _COMPILE_EVENTS

    compiles: list[tuple[float, float]] = []  # (host time at the end, seconds)

    def on_event(event: str, duration: float, **kwargs: Any) -> None:
        if event in _COMPILE_EVENTS:
            compiles.append((time.perf_counter(), duration))

    jax.monitoring.register_event_duration_secs_listener(on_event)

    def progress(step: int, metrics: dict) -> None:
        epochs.append(
            {
                "at": time.perf_counter(),
                "walltime": float(metrics.get("training/walltime", 0.0)),
                "return": float(metrics["eval/episode_reward"]),
            }
        )

    def compiled_in_epoch(i: int) -> tuple[float, float]:
        """Epoch ``i``'s time and the compilation inside it: epoch ``i`` runs right after the
        progress call ``i - 1``, before its own evaluation."""
        length = epochs[i]["walltime"] - epochs[i - 1]["walltime"]
        start = epochs[i - 1]["at"]
        inside = sum(d for t, d in compiles if start <= t <= start + length)
        return length, inside

    env = envs.get_environment("inverted_pendulum", backend=cfg["backend"])
    t0 = time.perf_counter()
    train.train(
        environment=env,
        num_timesteps=cfg["train_steps"] * per_update,
        episode_length=1000,
        num_envs=cfg["num_envs"],
        unroll_length=cfg["num_steps"],
        batch_size=cfg["num_envs"] // cfg["num_minibatches"],
        num_minibatches=cfg["num_minibatches"],
        num_updates_per_batch=cfg["num_epochs"],
        learning_rate=cfg["lr"],
        entropy_cost=cfg["ent_coef"],
        discounting=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"],
        clipping_epsilon=cfg["clip_eps"],
        max_grad_norm=cfg["max_grad_norm"],
        normalize_observations=True,
        normalize_advantage=True,
        reward_scaling=1.0,
        num_evals=3,
        num_eval_envs=cfg["eval_episodes"],
        deterministic_eval=True,
        seed=cfg["seed"],
        network_factory=functools.partial(
            networks.make_ppo_networks,
            policy_hidden_layer_sizes=(cfg["hidden"],) * 2,
            value_hidden_layer_sizes=(cfg["hidden"],) * 2,
            activation=linen.tanh,
        ),
        progress_fn=progress,
    )
    wall = time.perf_counter() - t0
    (_, compile_1), (second, compile_2) = compiled_in_epoch(1), compiled_in_epoch(2)
    warm = second - compile_2
    warm_sps = (cfg["train_steps"] // 2) * per_update / warm
    return {
        "compile_s": compile_1 + compile_2,
        "second_epoch_compile_s": compile_2,
        "run_s": cfg["train_steps"] * per_update / warm_sps,
        "env_steps": cfg["train_steps"] * per_update,
        "sps": warm_sps,
        "final_return": epochs[-1]["return"],
        "wall_s_total": wall,
    }


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_rate, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else base_cfg(quick)
    out = [
        f"{cfg['num_envs']} envs x {cfg['num_steps']} steps, {cfg['num_epochs']} epochs x "
        f"{cfg['num_minibatches']} minibatches, {cfg['train_steps']} updates "
        f"({cfg['train_steps'] * cfg['num_envs'] * cfg['num_steps']:,} env-steps), "
        f"observation normalisation on, seed {cfg['seed']}; median of {cfg['repeats']} "
        "interleaved run(s) per library, each in its own process.",
        "",
    ]
    by_lib: dict[str, list[dict[str, Any]]] = {"realax": [], "brax": []}
    errors = []
    for r in rows:
        lib = "realax" if r["realax"] else "brax"
        if r.get("ok"):
            by_lib[lib].append(r["result"])
        else:
            errors.append(f"{r['label']}: {short_error(r.get('error', ''), 200)}")
    med = {
        lib: {k: statistics.median(x[k] for x in res) for k in ("compile_s", "sps", "final_return")}
        for lib, res in by_lib.items()
        if res
    }
    body = []
    for lib, label in (("realax", "realax OnPolicyTrainer + PPO"), ("brax", "brax ppo.train")):
        if lib not in med:
            body.append([label, "not run", "", "", ""])
            continue
        m = med[lib]
        ratio = f"{m['sps'] / med['brax']['sps']:.2f}" if lib == "realax" and "brax" in med else ""
        body.append(
            [label, fmt_s(m["compile_s"]), fmt_rate(m["sps"]), f"{m['final_return']:.1f}", ratio]
        )
    headers = ["variant", "compile (s)", "env-steps/s", "final return", "env-steps/s realax/brax"]
    out.append(table(headers, body))
    if errors:
        out += ["", *errors]
    return "\n".join(out)
