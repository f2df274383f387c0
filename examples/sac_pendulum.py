"""SAC on gymnax Pendulum-v1: continuous actions rescaled to the torque bounds.

One environment, one update of 128 samples per step after 1000 random steps, 12k
environment steps; the deterministic policy is evaluated on 8 fresh episodes every 1000
steps inside the compiled loop (the pendulum is swung up and held at about -150).

    uv run python examples/sac_pendulum.py [--quick]
"""

import argparse

import jax
import numpy as np
from realax.agents import SAC
from realax.train.rl import OffPolicyTrainer


def main(quick: bool) -> None:
    trainer = OffPolicyTrainer(
        SAC,
        "Pendulum-v1",
        buffer_size=20_000,
        batch_size=128,
        learning_starts=1_000,
        train_freq=1,
        gradient_steps=1,
        total_env_steps=3_000 if quick else 12_000,
        agent_kwargs=dict(hidden_dims=(64, 64)),
        eval_freq=1_000,
        eval_episodes=8,
        progress_bar=True,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[trainer.eval_freq - 1 :: trainer.eval_freq]
    print("deterministic evaluation returns:", [round(float(x), 1) for x in evals])
    print(
        f"{timing['env_steps']:,} env steps in {timing['train_seconds']:.1f} s; "
        f"temperature {float(metrics['temperature'][-1]):.3f}"
    )
    if not np.all(np.isfinite(metrics["critic_loss"][trainer.learning_starts :])):
        raise SystemExit("non-finite critic loss")
    if not quick and float(state.eval_return) <= -250:
        raise SystemExit("Pendulum was not solved (mean return <= -250)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 30 s)")
    main(parser.parse_args().quick)
