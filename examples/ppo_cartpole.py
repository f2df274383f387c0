"""PPO on gymnax CartPole-v1 with PureJaxRL's configuration, several seeds in one program.

4 environments x 128 steps per update, 4 epochs x 4 minibatches, learning rate 2.5e-4
annealed to zero, 5e5 environment steps per seed. The whole run (environment steps, updates
and periodic greedy evaluations) is one compiled program, vmapped over the seeds. With
``--logdir`` the run is logged through realax.log (metrics file, orbax checkpoints, wandb
offline unless WANDB_MODE says otherwise).

    uv run python examples/ppo_cartpole.py [--quick] [--seeds 8] [--logdir runs/ppo]
"""

import argparse

import jax
import numpy as np
from realax.agents import PPO
from realax.train.rl import OnPolicyTrainer, default_rl_metrics


def main(quick: bool, seeds: int, logdir: str | None) -> None:
    logger = None
    if logdir is not None:
        import realax.log as rlog

        logger = rlog.Logger(
            wandb_log=False, metrics_fn=default_rl_metrics, ckpt_dir=logdir, ckpt_freq=100
        )
        logger.init(config={"env": "CartPole-v1", "agent": "PPO", "seeds": seeds})
    trainer = OnPolicyTrainer(
        PPO,
        "CartPole-v1",
        num_envs=4,
        num_steps=128,
        total_env_steps=20_480 if quick else 500_000,
        anneal_lr=True,
        agent_kwargs=dict(learning_rate=2.5e-4, update_epochs=4, num_minibatches=4),
        eval_freq=10 if quick else 100,
        eval_episodes=16,
        logger=logger,
        progress_bar=seeds == 1,
    )
    key = jax.random.key(0)
    states, metrics, timing = trainer.run(jax.random.split(key, seeds) if seeds > 1 else key)
    if logger is not None:
        logger.finish()
    final = np.atleast_1d(np.asarray(states.eval_return))
    per_seed = [round(float(x), 1) for x in final]
    print(f"greedy evaluation return per seed (500 is the maximum): {per_seed}")
    print(
        f"{timing['env_steps']:,} env steps in {timing['train_seconds']:.1f} s "
        f"({timing['env_steps_per_second']:,.0f} steps/s; compiled in "
        f"{timing['compile_seconds']:.1f} s)"
    )
    early = np.nanmean(np.asarray(metrics["episode_return"])[..., :3])
    late = np.nanmean(np.asarray(metrics["episode_return"])[..., -3:])
    if late <= early:
        raise SystemExit(f"the training return did not improve ({early:.1f} -> {late:.1f})")
    if not quick and np.median(final) < 475:
        raise SystemExit("CartPole was not solved")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 30 s)")
    parser.add_argument("--seeds", type=int, default=8, help="independent runs in one program")
    parser.add_argument("--logdir", default=None, help="log metrics and checkpoints here")
    args = parser.parse_args()
    main(args.quick, args.seeds, args.logdir)
