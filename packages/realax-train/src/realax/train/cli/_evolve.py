"""``realax evolve`` and the evolution part of ``resume`` / ``eval``."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _run
from ._common import (
    describe_env,
    draw_curves,
    returns_line,
    save_pytree,
    table,
    wandb_run_dirs,
)
from ._config import CliError, in_flag_words
from ._folders import POLICY_FILE, checkpoint_steps, write_summary
from ._run import Kind, Session, resume_from_disk, saved_policy, start
from ._schema import EvolveConfig

KIND = Kind("evolve", "generation", "--generations")
#: realax's defaults for Open_ES (evosax's own, sgd(1e-3) and std 1.0, are tuned for other
#: problem scales); with them the default `realax evolve CartPole-v1` balances the pole.
OPEN_ES_LR = 0.05
OPEN_ES_SIGMA = 0.1
PLOT_METRICS = ("fitness_max", "fitness_mean", "fitness_min", "best_fitness")


@dataclasses.dataclass
class Setup(_run.Setup):
    """Everything a run is made of, rebuilt identically from its configuration."""

    config: EvolveConfig
    env: Any
    policy: Any
    task: Any
    params_like: Any

    def saved(self, run_dir: Path) -> tuple[dict[str, Any], str]:
        """``({"params", "data"?}, source)``: policy.msgpack, else the newest checkpoint's
        search mean."""
        return saved_policy(
            self,
            run_dir,
            KIND,
            like=lambda: _policy_like(self),
            of_state=lambda s: {"params": s.mean, "data": s.data},
            part="search mean",
        )

    def header(self) -> str:
        return (
            f"realax evolve: {describe_env(self.env)}, {self.trainer.strategy_name}, "
            f"popsize {self.trainer.popsize}, {self.trainer.num_dims} parameters"
        )


def make_env(name: str) -> Any:
    """``realax.tasks.make(name)`` with command-line errors (close matches, missing extras)."""
    import realax.tasks as rt

    try:
        return rt.make(name, autoreset=False)
    except ValueError as e:
        if "does not support backend" in str(e):  # a brax env without the positional pipeline
            return rt.make(name, autoreset=False, backend="generalized")
        text = " ".join(str(e).split())
        if "realax envs" not in text:
            text += " (`realax envs` lists the environments)"
        raise CliError(text) from None
    except ImportError as e:
        raise CliError(str(e), status=1) from None


def make_policy(env: Any, config: EvolveConfig) -> Any:
    import realax.tasks as rt

    if config.policy == "gru":
        encoder = config.width if config.depth >= 2 else 0
        return rt.GRUPolicy.from_env(env, hidden_size=config.width, encoder_width=encoder)
    return rt.MLPPolicy.from_env(env, width=config.width, depth=config.depth)


def make_task(env: Any, policy: Any, config: EvolveConfig) -> Any:
    """The suite's task class (GymnaxTask / BraxTask / JumanjiTask; EnvTask for the other
    suites) around ``env``."""
    import realax.tasks as rt

    tasks = {"gymnax": rt.GymnaxTask, "brax": rt.BraxTask, "jumanji": rt.JumanjiTask}
    cls = tasks.get(env.suite, rt.EnvTask)  # the other suites (Playground, grid worlds): EnvTask
    max_steps = config.max_steps or env.max_steps
    return cls(env, policy=policy, max_steps=max_steps, obs_norm=config.obs_norm)


def strategy_kwargs(name: str, cls: type, config: EvolveConfig) -> dict[str, Any]:
    """``es_kws`` from ``--lr`` / ``--sigma`` (checked against the strategy's constructor)."""
    import optax

    params = inspect.signature(cls).parameters
    lr, sigma = config.lr, config.sigma
    if name == "Open_ES":
        lr = OPEN_ES_LR if lr is None else lr
        sigma = OPEN_ES_SIGMA if sigma is None else sigma
    kws: dict[str, Any] = {}
    if lr is not None:
        _check_applies(name, params, "--lr", "optimizer", "optimizer", "Open_ES, SNES, PGPE, ARS")
        # the rate in the optimizer's state: `realax sweep evolve --set learning_rate=...`
        kws["optimizer"] = optax.inject_hyperparams(optax.adam)(learning_rate=lr)
    if sigma is not None:
        _check_applies(name, params, "--sigma", "std_schedule", "std schedule", "Open_ES, ARS")
        kws["std_schedule"] = optax.constant_schedule(sigma)
    return kws


def _check_applies(
    strategy: str, params: Any, flag: str, argument: str, thing: str, examples: str
) -> None:
    """Refuse ``flag`` for a strategy whose constructor has no ``argument`` (its ``thing``)."""
    if argument not in params:
        raise CliError(
            f"{flag} does not apply to strategy {strategy!r} (it has no {thing}); drop {flag}, "
            f"or pick a strategy with one ({examples}, ...)"
        )


def build(config: EvolveConfig) -> Setup:
    """Environment, policy, task and trainer of an ``evolve`` configuration."""
    import realax.tasks as rt
    from realax.train import EvosaxTrainer, FitnessShaper, resolve_strategy

    try:
        name, cls = resolve_strategy(config.strategy)
    except ValueError as e:
        raise CliError(str(e)) from None
    es_kws = strategy_kwargs(name, cls, config)
    env = make_env(str(config.env))
    key = jax.random.key(config.seed)
    try:
        policy = make_policy(env, config)
        task = make_task(env, policy, config)
        example = jnp.zeros(env.obs_shape, env.spec.obs_dtype)
        params, _ = rt.make_model_factory(policy, example, jax.random.fold_in(key, 0))
        trainer = EvosaxTrainer(
            train_steps=config.generations,
            strategy=name,
            task=task,
            params_like=params,
            popsize=config.popsize,
            fitness_shaper=FitnessShaper(maximize=True, centered_rank=True),
            es_kws=es_kws,
            eval_reps=config.eval_reps,
            n_devices=config.devices,
        )
    except (ValueError, TypeError) as e:
        raise CliError(_build_error(e, name, config)) from None
    return Setup(config, trainer, key, env=env, policy=policy, task=task, params_like=params)


def _build_error(e: BaseException, strategy: str, config: EvolveConfig) -> str:
    """A trainer's error in the command's words (flags instead of argument names)."""
    text = in_flag_words(str(e))
    popsize = config.popsize
    if "even" in text and "popsize" in text.lower().replace("population size", "popsize"):
        return (
            f"{strategy} needs an even population size; use --popsize {popsize + 1} "
            "(any even popsize works)"
        )
    return text


def _candidates(state: Any) -> dict[str, Any]:
    return {"search mean": state.mean, "best member": state.best_params}


def evaluate(task: Any, params: Any, data: Any, key: jax.Array, episodes: int) -> np.ndarray:
    """Episode returns of ``params`` over ``episodes`` episodes."""
    return evaluate_many(task, [params], data, key, episodes)[0]


def evaluate_many(
    task: Any, candidates: list[Any], data: Any, key: jax.Array, episodes: int
) -> list[np.ndarray]:
    """Episode returns of several parameter sets (same structure), in one compiled call."""
    keys = jax.random.split(key, episodes)
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *candidates)
    per_params = jax.vmap(task, in_axes=(None, 0, None))
    returns, _ = jax.jit(jax.vmap(per_params, in_axes=(0, None, None)))(stacked, keys, data)
    returns = np.asarray(returns)
    return [returns[i] for i in range(len(candidates))]


def _fitness_row(state: Any, config: EvolveConfig) -> tuple[str, str]:
    reps = config.eval_reps
    episodes = "one episode" if reps == 1 else f"the mean of {reps} episodes"
    return (
        "best fitness",
        f"{float(state.best_fitness):.4g}, one noisy evaluation ({episodes}) of the best member "
        "so far",
    )


def _policy_row(results: dict[str, np.ndarray], chosen: str, episodes: int) -> tuple[str, str]:
    returns = results[chosen]
    what = {
        "search mean": "the centre of the search distribution",
        "best member": "the member behind the best fitness",
    }[chosen]
    other = ", ".join(f"{k} {v.mean():.1f}" for k, v in results.items() if k != chosen)
    return (
        "policy",
        f"the {chosen} ({what}), saved as {POLICY_FILE}: mean return {returns.mean():.1f} +- "
        f"{returns.std():.1f} over {episodes} fresh episodes ({other})",
    )


def finish(setup: Setup, run_dir: Path, session: Session) -> int:
    """Final evaluation, policy file, summary, learning curves and the summary table."""
    import realax.log as rlog

    config, state = setup.config, session.state
    episodes = config.eval_episodes
    key = jax.random.fold_in(setup.key, 2)
    candidates = _candidates(state)
    evaluated = evaluate_many(setup.task, list(candidates.values()), state.data, key, episodes)
    results = dict(zip(candidates, evaluated, strict=True))
    chosen = max(results, key=lambda k: float(results[k].mean()))
    returns = results[chosen]
    payload = {"params": candidates[chosen]}
    if state.data is not None:
        payload["data"] = state.data
    save_pytree(run_dir / POLICY_FILE, payload)
    rows = rlog.read_metrics(run_dir)
    best_row = max(rows, key=lambda r: r.get("fitness_max") or -np.inf) if rows else {}
    title = f"{setup.env.name}: {setup.trainer.strategy_name}"
    png = draw_curves(run_dir, [m for m in PLOT_METRICS if rows and m in rows[-1]], title)
    wandb_dirs = wandb_run_dirs(run_dir)
    total = int(state.step)
    summary = {
        "command": "evolve",
        "env": setup.env.name,
        "suite": setup.env.suite,
        "strategy": setup.trainer.strategy_name,
        "generations": total,
        "requested": config.generations,
        "session_start": session.start,
        "popsize": setup.trainer.popsize,
        "num_params": setup.trainer.num_dims,
        "best_fitness": float(state.best_fitness),
        "best_generation": best_row.get("step"),
        "final_fitness_mean": rows[-1].get("fitness_mean") if rows else None,
        "policy": chosen,
        "eval_episodes": episodes,
        "eval_return_mean": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_returns": {k: float(v.mean()) for k, v in results.items()},
        "seconds": round(session.seconds, 2),
        "checkpoints": checkpoint_steps(run_dir),
        "wandb_run": str(wandb_dirs[-1]) if wandb_dirs else None,
    }
    write_summary(run_dir, summary)
    final_mean = summary["final_fitness_mean"]
    print(
        table(
            [
                ("environment", describe_env(setup.env)),
                (
                    "strategy",
                    f"{summary['strategy']}, popsize {summary['popsize']}, "
                    f"{summary['num_params']} parameters",
                ),
                ("generations", session.describe(total, "generation")),
                _fitness_row(state, config),
                (
                    "max fitness",
                    f"peaked at generation {summary['best_generation']}; final mean fitness "
                    + (f"{final_mean:.4g}" if final_mean is not None else "-"),
                ),
                _policy_row(results, chosen, episodes),
                (
                    "run folder",
                    f"{run_dir} (config.toml, metrics.jsonl, checkpoints "
                    f"{summary['checkpoints']}, {POLICY_FILE}, summary.json)",
                ),
                ("wandb run", summary["wandb_run"] or "off"),
                ("curves", str(png) if png else "-"),
            ],
            title="realax evolve: done",
        )
    )
    return 0


# --------------------------------------------------------------------------- commands


def _metrics_fn() -> Any:
    import realax.log as rlog

    return rlog.default_es_metrics


def evolve(config: EvolveConfig) -> int:
    """``realax evolve``: a new run."""
    return start(config, config.strategy, build, kind=KIND, metrics_fn=_metrics_fn, finish=finish)


def resume(config: EvolveConfig, run_dir: Path) -> int:
    """``realax resume`` of an evolve run."""
    return resume_from_disk(
        build(config), run_dir, kind=KIND, metrics_fn=_metrics_fn(), finish=finish
    )


def _policy_like(setup: Setup) -> dict[str, Any]:
    """The structure of the policy file: the parameters, and the task data if it has any."""
    like = {"params": setup.params_like}
    data_like = setup.task.init_data(jax.random.key(0))
    if data_like is not None:
        like["data"] = data_like
    return like


def eval_policy(config: EvolveConfig, run_dir: Path, episodes: int, seed: int) -> int:
    """``realax eval`` of an evolve run: the saved policy (else the latest checkpoint's mean)."""
    setup = build(config.replace(devices=1))  # evaluation needs no population split
    saved, source = setup.saved(run_dir)
    params, data = saved["params"], saved.get("data")
    returns = evaluate(setup.task, params, data, jax.random.key(seed), episodes)
    print(returns_line(setup.env.name, returns, episodes, source))
    return 0
