"""Quick start: evolve an MLP policy that balances gymnax CartPole-v1.

The same job as ``uv run realax evolve CartPole-v1``, written out with the library:
an environment, a policy, a task (the episode return of the policy's parameters), an
``EvosaxTrainer`` with a live progress bar, and an evaluation of the result.

    uv run python examples/quickstart.py [--quick]
"""

import argparse

import jax
import jax.numpy as jnp
import optax
import realax.tasks as rt
from realax.train import EvosaxTrainer, FitnessShaper


def main(quick: bool) -> None:
    env = rt.make("CartPole-v1")
    policy = rt.MLPPolicy.from_env(env, width=32, depth=2)  # 2 discrete actions, argmax
    task = rt.GymnaxTask("CartPole-v1", policy=policy)  # fitness = episode return
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))

    trainer = EvosaxTrainer(
        train_steps=5 if quick else 50,  # generations
        strategy="Open_ES",
        task=task,
        params_like=params,
        popsize=16 if quick else 64,
        fitness_shaper=FitnessShaper(maximize=True, centered_rank=True),  # maximise the return
        es_kws={"optimizer": optax.adam(0.05), "std_schedule": optax.constant_schedule(0.1)},
        eval_reps=2,  # episodes per member and generation
        progress_bar=True,
    )
    state, metrics = trainer.init_and_train(jax.random.key(1))
    print("mean return per generation:", [round(float(f)) for f in metrics["fitness_mean"]])

    # evaluate the mean of the search distribution on 32 fresh episodes
    keys = jax.random.split(jax.random.key(99), 32)
    returns, _ = jax.jit(jax.vmap(task, in_axes=(None, 0)))(state.mean, keys)
    print(
        f"evolved policy: mean return {float(returns.mean()):.1f} over 32 episodes "
        f"(500 is the maximum)"
    )
    if not quick and float(returns.mean()) < 475:
        raise SystemExit("CartPole was not solved")
    if float(metrics["fitness_mean"][-1]) <= float(metrics["fitness_mean"][0]):
        raise SystemExit("the mean return did not improve")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few generations only")
    main(parser.parse_args().quick)
