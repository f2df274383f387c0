"""Evolution strategies on the rastrigin function with ``EvosaxTrainer``.

The first example of the original realax README, on evosax 0.3: a fitness function, the
structure of the parameters, a trainer, then ``init_and_train`` (``lax.scan``, per-generation
metrics) or ``init_and_train_`` (``lax.fori_loop``, memory flat in the number of generations).

    uv run python examples/es_rastrigin.py [--quick]
"""

import argparse

import jax
import jax.numpy as jnp
import jax.random as jr
from realax.train import EvosaxTrainer, FitnessShaper


# 1. the fitness function: (params, key, data) -> (fitness, info)
def rastrigin(x, key=None, data=None):
    x = jnp.clip(x, -5.12, 5.12)
    n = x.shape[0]
    a = 10.0
    y = a * n + jnp.sum(jnp.square(x) - a * jnp.cos(2 * jnp.pi * x))
    return y, dict()


def main(quick: bool) -> None:
    # 2. the structure of the parameters (and the starting point of the search)
    dims = 2
    prms = jnp.full((dims,), 2.5)

    # 3. the trainer
    trainer = EvosaxTrainer(
        train_steps=16 if quick else 64,  # generations
        strategy="CMA_ES",  # any evosax 0.3 name (or a pre-0.2 alias), or an algorithm instance
        task=rastrigin,
        params_like=prms,  # structure and starting value of the parameters
        fitness_shaper=FitnessShaper(maximize=False),  # rastrigin is minimised
        popsize=32,
        eval_reps=1,  # evaluations per member (their mean is the member's fitness)
        n_devices=1,  # split the population over devices
    )

    # 4. run it: scan gives per-generation metrics ...
    state, metrics = trainer.init_and_train(jr.key(1))
    start = rastrigin(prms)[0]
    print(f"rastrigin at the start: {float(start):.3f}")
    print("best fitness per generation:", [round(float(f), 3) for f in metrics["best_fitness"]])
    print(f"best member {state.best_params} with fitness {float(state.best_fitness):.4f}")

    # ... and fori_loop only the final state, with memory flat in the number of generations
    state_ = trainer.init_and_train_(jr.key(1))
    print(f"fori_loop run: best fitness {float(state_.best_fitness):.4f}")
    if not float(state.best_fitness) < float(start):
        raise SystemExit("the evolution did not improve on the starting point")
    jax.block_until_ready(state_)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few generations only")
    main(parser.parse_args().quick)
