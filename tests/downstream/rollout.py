"""A downstream user's script: a CartPole rollout through realax-tasks, and nothing else of realax.

``.ci/run`` installs this project (``pyproject.toml`` beside it: ``realax-tasks[gymnax]`` by
path) into a fresh virtual environment and runs this file with that environment's python.
"""

from __future__ import annotations

import importlib.metadata
import sys

import jax
import jax.numpy as jnp
from realax.tasks import GymnaxTask, MLPPolicy


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"downstream check failed: {message}")


installed = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
check("realax-tasks" in installed, f"realax-tasks is not installed: {sorted(installed)}")
check("gymnax" in installed, "the gymnax extra did not install gymnax")
unexpected = installed & {"realax-agents", "realax-train", "realax-log", "wandb", "evosax", "brax"}
check(not unexpected, f"realax-tasks[gymnax] pulled in {sorted(unexpected)}")

policy = MLPPolicy(action_dims=2, width=16, depth=1, discrete=True)
task = GymnaxTask(env="CartPole-v1", policy=policy)
init_key = jax.random.key(0)
params = policy.init(init_key, jnp.zeros(4), policy.initialize(init_key), init_key)

# One episode, compiled. CartPole pays +1 per step until the pole falls or 500 steps pass,
# so the return is a whole number between 1 and 500 and equals the episode length.
fitness, info = jax.jit(task)(params, jax.random.key(1))
check(fitness.shape == () and fitness.dtype == jnp.float32, f"fitness {fitness!r}")
check(1.0 <= float(fitness) <= 500.0, f"CartPole return {float(fitness)} outside [1, 500]")
check(float(fitness) == float(info["episode_length"]), f"return {fitness} != length {info}")

# Two episodes at once: vmap over keys, and over two different parameter sets.
keys = jax.random.split(jax.random.key(2), 2)
batched, batched_info = jax.jit(jax.vmap(task, in_axes=(None, 0)))(params, keys)
check(batched.shape == (2,), f"vmapped fitness has shape {batched.shape}")
for i in range(2):
    single, _ = task(params, keys[i])
    check(float(single) == float(batched[i]), f"vmapped return {batched[i]} != single {single}")
check(bool(jnp.all(batched == batched_info["episode_length"])), "vmapped return != length")

pop = jax.vmap(lambda k: policy.init(k, jnp.zeros(4), policy.initialize(k), k))(keys)
pop_fitness, _ = jax.jit(jax.vmap(task, in_axes=(0, None)))(pop, jax.random.key(3))
check(pop_fitness.shape == (2,), f"population fitness has shape {pop_fitness.shape}")
check(bool(jnp.all((pop_fitness >= 1) & (pop_fitness <= 500))), f"returns {pop_fitness}")

print(
    f"downstream OK: CartPole-v1 return {float(fitness):.0f}, "
    f"vmapped over keys {batched.tolist()}, over params {pop_fitness.tolist()}"
)
