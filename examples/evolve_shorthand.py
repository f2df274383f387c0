"""``evolve``: the one-call shorthand of ``EvosaxTrainer``.

uv run python examples/evolve_shorthand.py [--quick]
"""

import argparse

import jax.numpy as jnp
import jax.random as jr
from realax.train import evolve


def rastrigin(x, key=None, data=None):
    x = jnp.clip(x, -5.12, 5.12)
    n = x.shape[0]
    a = 10.0
    y = a * n + jnp.sum(jnp.square(x) - a * jnp.cos(2 * jnp.pi * x))
    return y, dict()


def main(quick: bool) -> None:
    prms = jnp.full((2,), 2.5)
    evolved_prms, final_es_state, data = evolve(
        prms,
        rastrigin,
        jr.key(1),
        popsize=32,
        strategy="DES",
        steps=20 if quick else 200,
    )
    start, end = float(rastrigin(prms)[0]), float(final_es_state.best_fitness)
    print(f"evolved parameters {evolved_prms}: rastrigin {start:.3f} -> {end:.4f}")
    print(f"mean of the search distribution: {final_es_state.mean}")
    print(f"{data['best_fitness'].shape[0]} generations of metrics: {sorted(data)}")
    if not end < start:
        raise SystemExit("evolve did not improve on the starting point")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few generations only")
    main(parser.parse_args().quick)
