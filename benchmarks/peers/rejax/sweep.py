"""rejax side of table 10 (run by ``python -m benchmarks`` with this project's own Python).

rejax 0.1.3's PPO on gymnax CartPole-v1, the configurations of ``benchmarks/sweep.py``: the
learning rate and clip (pytree leaves of rejax's agent) ``vmap``-ped over the configurations,
the seeds ``vmap``-ped inside, all in one jitted call.

Usage: ``.venv/bin/python sweep.py rejax_sweep '<json config>'``; prints one result line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rejax import PPO  # noqa: E402

from benchmarks._common import compile_seconds, emit  # noqa: E402


def rejax_sweep(cfg):
    total = cfg["train_steps"] * cfg["num_envs"] * cfg["num_steps"]
    algo = PPO.create(
        env="CartPole-v1", num_envs=cfg["num_envs"], num_steps=cfg["num_steps"],
        num_epochs=cfg["num_epochs"], num_minibatches=cfg["num_minibatches"],
        total_timesteps=total, eval_freq=total, skip_initial_evaluation=True,
        agent_kwargs={"activation": "tanh", "hidden_layer_sizes": tuple(cfg["hidden"])},
    )  # fmt: skip
    pairs = [(lr, clip) for lr in cfg["rates"] for clip in cfg["clips"]]
    lrs = jnp.asarray([p[0] for p in pairs], jnp.float32)
    clips = jnp.asarray([p[1] for p in pairs], jnp.float32)
    keys = jax.random.split(jax.random.key(0), cfg["seeds"])

    def one(lr, clip, key):  # learning_rate and clip_eps are pytree leaves of rejax's PPO
        return algo.replace(learning_rate=lr, clip_eps=clip).train(key)

    train = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, None, 0)), in_axes=(0, 0, None)))
    compile_seconds()
    c0, t0 = compile_seconds(), time.perf_counter()
    _, (lengths, returns) = jax.block_until_ready(train(lrs, clips, keys))
    wall = time.perf_counter() - t0
    compile_s = compile_seconds() - c0
    members = len(pairs) * cfg["seeds"]
    late = float(jnp.mean(returns[..., -1, :]))
    return {"compile_s": compile_s, "run_s": wall - compile_s, "wall_s": wall,
            "env_steps": total * members, "return": late}  # fmt: skip


if __name__ == "__main__":
    func, cfg = sys.argv[1], json.loads(sys.argv[2])
    emit(globals()[func](cfg))
