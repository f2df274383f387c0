"""rejax side of table 17, SAC (run by ``python -m benchmarks`` with this project's own Python).

rejax 0.1.3's SAC on gymnax Pendulum-v1 with the configuration of ``benchmarks/offpolicy.py``
(``sac_cfg``): ``num_envs`` environments step once per iteration, then ``num_epochs``
updates (actor, twin critics, temperature) on minibatches of ``batch_size``; ReLU MLPs 64x64,
one Adam learning rate, Polyak target ``1 - tau`` after every iteration. One greedy
evaluation (128 episodes) at the end, inside the timed program.

Usage: ``.venv/bin/python sac.py rejax_sac '<json config>'``; prints one result line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rejax import SAC  # noqa: E402

from benchmarks._common import emit  # noqa: E402
from benchmarks.offpolicy import timed  # noqa: E402


def rejax_sac(cfg):
    algo = SAC.create(
        env="Pendulum-v1",
        num_envs=cfg["num_envs"],
        num_epochs=cfg["updates_per_iteration"],
        batch_size=cfg["batch_size"],
        buffer_size=cfg["buffer_size"],
        fill_buffer=cfg["learning_starts"],
        total_timesteps=cfg["total_timesteps"],
        eval_freq=cfg["total_timesteps"],
        skip_initial_evaluation=True,
        learning_rate=cfg["lr"],
        gamma=cfg["gamma"],
        polyak=1.0 - cfg["tau"],
        target_update_freq=cfg["num_envs"],
        hidden_layer_sizes=tuple(cfg["hidden"]),
        agent_kwargs={"activation": "relu"},
    )
    train = jax.jit(algo.train)
    key = jax.random.key(cfg["seed"])
    res = timed(lambda: jax.block_until_ready(train(key)), cfg["repeats"])
    _, (lengths, returns) = res["out"]
    res["env_steps"] = cfg["total_timesteps"]
    res["final_return"] = float(jnp.mean(returns[-1]))
    res["note"] = "sampling without replacement over the whole buffer; actor step first"
    return res


if __name__ == "__main__":
    func, cfg = sys.argv[1], json.loads(sys.argv[2])
    emit(globals()[func](cfg))
