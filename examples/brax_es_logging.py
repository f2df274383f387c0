"""Evolution strategies on a brax task, logged with ``realax.log.Logger``.

The logging example of the original realax README: an MLP policy evolved on a brax
environment with ``evolve``, metrics sent to Weights & Biases (offline here, unless
``--wandb online``) and to ``metrics.jsonl``, orbax checkpoints every ``--ckpt-freq``
generations, and the learning curves drawn at the end.

    uv run python examples/brax_es_logging.py [--quick] [--env reacher] [--out ckpts_ex/es]

``--quick`` runs three generations of ten-step episodes on inverted_pendulum.
"""

import argparse
import os

import jax
import jax.numpy as jnp
import jax.random as jr
import realax.log as rlog
import realax.tasks as rt
from realax.train import FitnessShaper, evolve


def main(args: argparse.Namespace) -> None:
    # --quick: the smallest brax model (fastest to compile) unless --env is given
    env_name = args.env or ("inverted_pendulum" if args.quick else "reacher")
    obs_dims, action_dims, _ = rt.get_env_dimensions(env_name)
    steps = 10 if args.quick else 500  # env steps per episode
    generations = 3 if args.quick else 256
    popsize = 8 if args.quick else 32

    mlp_width, mlp_depth = 32, 2
    policy = rt.MLPPolicy(action_dims=action_dims, width=mlp_width, depth=mlp_depth)
    params, _ = rt.make_model_factory(policy, jnp.zeros(obs_dims), jr.key(1))
    task = rt.BraxTask(env_name, steps, policy=policy)

    logger = rlog.Logger(
        wandb_log=args.wandb != "off",  # log to wandb too
        metrics_fn=rlog.default_es_metrics,  # fitness min/mean/max, best; checkpoints the state
        ckpt_dir=args.out,
        ckpt_freq=args.ckpt_freq,
        mode=None if args.wandb == "off" else args.wandb,
    )
    config = {"mlp_width": mlp_width, "mlp_depth": mlp_depth, "env": env_name}
    logger.init(project="es_brax_example", config=config)
    evolved, state = evolve(
        params,
        task,
        key=jr.key(2),
        strategy="DES",
        popsize=popsize,
        eval_reps=2 if args.quick else 3,  # episodes per member
        steps=generations,
        use_scan=False,  # fori_loop: memory flat in the number of generations
        fitness_shaper=FitnessShaper(maximize=True),  # brax rewards: higher is better
        logger=logger,
    )
    logger.finish()

    rows = rlog.read_metrics(args.out)
    print(f"{env_name}: {len(rows)} generations, best fitness {float(state.best_fitness):.3f}")
    print(f"checkpoints at generations {rlog.all_steps(args.out)} in {args.out}")
    print(f"learning curves: {rlog.plot(args.out, metrics=['fitness_max', 'best_fitness'])}")
    restored = rlog.restore(args.out, like=state)
    print(f"restored the checkpoint of generation {int(restored.step)}")
    if len(rows) != generations or jax.tree.structure(evolved) != jax.tree.structure(params):
        raise SystemExit("the run did not log every generation")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny episodes, three generations")
    parser.add_argument("--env", default=None, help="brax environment (default: reacher)")
    parser.add_argument("--out", default="ckpts_ex/es", help="checkpoint and metrics folder")
    parser.add_argument("--ckpt-freq", type=int, default=None, help="checkpoint every N gens")
    parser.add_argument(
        "--wandb",
        choices=("online", "offline", "off"),
        default=os.environ.get("WANDB_MODE", "offline"),
    )
    args = parser.parse_args()
    if args.ckpt_freq is None:
        args.ckpt_freq = 1 if args.quick else 50
    main(args)
