"""Gradient descent on the rastrigin function with ``OptaxTrainer`` and ``optimize``.

The gradient example of the original realax README: the same fitness function used as a
loss, an initializer for the parameters, an optax optimiser by name.

    uv run python examples/grad_rastrigin.py [--quick]
"""

import argparse

import jax.numpy as jnp
import jax.random as jr
from realax.train import OptaxTrainer, optimize


# 1. the loss function: (params, key, data) -> (loss, info)
def rastrigin(x, key=None, data=None):
    x = jnp.clip(x, -5.12, 5.12)
    n = x.shape[0]
    a = 10.0
    y = a * n + jnp.sum(jnp.square(x) - a * jnp.cos(2 * jnp.pi * x))
    return y, dict()


# 2. the model constructor: key -> params
def initializer(key):
    return jr.normal(key, (2,))


def main(quick: bool) -> None:
    epochs = 16 if quick else 64
    # 3. the trainer: any optax alias by name (or an optax optimiser instance)
    trainer = OptaxTrainer(
        epochs=epochs,
        optimizer="adamw",
        initializer=initializer,
        loss_fn=rastrigin,
        learning_rate=1e-2,
    )
    # 4. optimise
    final_state, metrics = trainer.init_and_train(jr.key(2))
    losses = metrics["loss"]
    print(
        f"OptaxTrainer: loss {float(losses[0]):.4f} -> {float(losses[-1]):.4f} in {epochs} "
        f"epochs; best {float(final_state.best_loss):.4f}"
    )

    # the shorthand: start from given parameters
    params, state, data = optimize(
        initializer(jr.key(1)),
        rastrigin,
        jr.key(2),
        optimizer="adamw",
        steps=epochs,
        learning_rate=1e-2,
    )
    print(f"optimize: params {params}, loss {float(data['loss'][-1]):.4f}")
    if not float(losses[-1]) < float(losses[0]):
        raise SystemExit("the loss did not decrease")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs only")
    main(parser.parse_args().quick)
