"""DQN on gymnax CartPole-v1: a replay buffer and epsilon-greedy exploration inside the loop.

10 environments, a 10k-transition replay buffer in JAX arrays, one update of 128 samples
per vector step after 10k warm-up steps, a hard target update every 50 updates, epsilon
1 -> 0.05 over the first 37.5k steps, 1.5e5 environment steps.

    uv run python examples/dqn_cartpole.py [--quick]
"""

import argparse

import jax
import numpy as np
import optax
from realax.agents import DQN
from realax.train.rl import OffPolicyTrainer


def main(quick: bool) -> None:
    total = 20_000 if quick else 150_000
    trainer = OffPolicyTrainer(
        DQN,
        "CartPole-v1",
        buffer_size=10_000,
        batch_size=128,
        learning_starts=2_000 if quick else 10_000,
        train_freq=1,
        gradient_steps=1,
        num_envs=10,
        total_env_steps=total,
        epsilon=optax.linear_schedule(1.0, 0.05, total // 4),
        agent_kwargs=dict(
            learning_rate=2.5e-4, hidden_dims=(120, 84), target_update_period=50, loss="mse"
        ),
        eval_episodes=16,
        progress_bar=True,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[trainer.eval_freq - 1 :: trainer.eval_freq]
    print("greedy evaluation returns during training:", [round(float(x), 1) for x in evals])
    print(
        f"replay buffer: {int(state.buffer.size):,} transitions; {timing['env_steps']:,} env "
        f"steps in {timing['train_seconds']:.1f} s ({timing['env_steps_per_second']:,.0f}/s)"
    )
    if evals[-1] <= evals[0]:
        raise SystemExit("the greedy return did not improve")
    if not quick and float(state.eval_return) < 475:
        raise SystemExit("CartPole was not solved")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 30 s)")
    main(parser.parse_args().quick)
