"""rejax side of table 4 (run by ``python -m benchmarks`` with this project's own Python).

rejax's PPO on gymnax CartPole-v1 with PureJaxRL's CartPole configuration: 4 environments x
128 steps per update, 4 epochs x 4 minibatches, 5e5 env-steps, Adam 2.5e-4, gamma 0.99,
GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5, gradient norm 0.5, tanh MLP 64x64.
rejax has no learning-rate annealing (PureJaxRL anneals linearly to 0).

Usage: ``.venv/bin/python ppo.py rejax_ppo '<json config>'``; prints one result line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rejax import PPO  # noqa: E402

from benchmarks._common import emit, measure  # noqa: E402


def rejax_ppo(cfg):
    algo = PPO.create(
        env="CartPole-v1",
        num_envs=cfg["num_envs"],
        num_steps=cfg["num_steps"],
        num_epochs=cfg["num_epochs"],
        num_minibatches=cfg["num_minibatches"],
        total_timesteps=cfg["total_timesteps"],
        eval_freq=cfg["total_timesteps"],
        skip_initial_evaluation=True,
        learning_rate=cfg["lr"],
        gamma=cfg["gamma"],
        gae_lambda=cfg["gae_lambda"],
        clip_eps=cfg["clip_eps"],
        ent_coef=cfg["ent_coef"],
        vf_coef=cfg["vf_coef"],
        max_grad_norm=cfg["max_grad_norm"],
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
    )
    train = jax.jit(algo.train)
    key = jax.random.key(cfg["seed"]) if hasattr(jax.random, "key") else None
    res = measure(lambda: jax.block_until_ready(train(key)), cfg["repeats"])
    _, (lengths, returns) = res["out"]
    res["env_steps"] = cfg["total_timesteps"]
    res["final_return"] = float(jnp.mean(returns[-1]))
    res["eval_episodes"] = int(returns[-1].size)
    res["note"] = "no LR annealing in rejax; return = mean of rejax's 128 greedy eval episodes"
    return res


if __name__ == "__main__":
    func, cfg = sys.argv[1], json.loads(sys.argv[2])
    emit(globals()[func](cfg))
