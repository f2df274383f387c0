"""rejax side of table 10 (run by ``python -m benchmarks`` with this project's own Python):
rejax 0.1.3's PQN on CartPole-v1 and PPO on Breakout-MinAtar, configurations in
``benchmarks/pqn.py``.

Usage: ``.venv/bin/python pqn.py rejax_pqn|rejax_ppo_minatar '<json config>'``; prints one
result line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rejax import PPO, PQN  # noqa: E402

from benchmarks._common import emit, measure  # noqa: E402


def _run(algo, cfg):
    train = jax.jit(algo.train)
    key = jax.random.key(cfg["seed"])
    res = measure(lambda: jax.block_until_ready(train(key)), 1)
    _, (lengths, returns) = res["out"]
    res["env_steps"] = cfg["total_timesteps"]
    res["final_return"] = float(jnp.mean(returns[-1]))
    return res


def rejax_pqn(cfg):
    algo = PQN.create(
        env=cfg["env"], num_envs=cfg["num_envs"], num_steps=cfg["num_steps"],
        num_epochs=cfg["num_epochs"], num_minibatches=cfg["num_minibatches"],
        total_timesteps=cfg["total_timesteps"], eval_freq=cfg["total_timesteps"],
        skip_initial_evaluation=True, learning_rate=cfg["lr"], gamma=cfg["gamma"],
        td_lambda=cfg["td_lambda"], eps_start=1.0, eps_end=0.05,
        exploration_fraction=cfg["eps_fraction"], max_grad_norm=cfg["max_grad_norm"],
    )  # fmt: skip
    return _run(algo, cfg)


def rejax_ppo_minatar(cfg):
    algo = PPO.create(
        env=cfg["env"], num_envs=cfg["num_envs"], num_steps=cfg["num_steps"],
        num_epochs=cfg["num_epochs"], num_minibatches=cfg["num_minibatches"],
        total_timesteps=cfg["total_timesteps"], eval_freq=cfg["total_timesteps"],
        skip_initial_evaluation=True, learning_rate=cfg["lr"], gamma=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"], clip_eps=cfg["clip_eps"], ent_coef=cfg["ent_coef"],
        vf_coef=cfg["vf_coef"], max_grad_norm=cfg["max_grad_norm"],
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
    )  # fmt: skip
    return _run(algo, cfg)


if __name__ == "__main__":
    func, cfg = sys.argv[1], json.loads(sys.argv[2])
    emit(globals()[func](cfg))
