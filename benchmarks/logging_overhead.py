"""Cost of realax.log.Logger inside a compiled ES loop, against the same run without a logger.

One ``EvosaxTrainer`` configuration (Open_ES, MLPPolicy on a gymnax task, or a cheap
Rastrigin task to expose the fixed per-step cost), run side by side in one process with:

* ``no logger``;
* ``log every step, one callback per step``: the Logger behind an object without its block
  methods, so the loop calls ``logger.log`` every step (realax-log 0.1's hand-over);
* ``log every step``: ``Logger(wandb_log=False)`` -> metrics.jsonl each generation, the rows
  handed over in blocks (automatic block size; the mean rows per hand-over is shown);
* ``log every step, block 16``: ``Logger(log_block=16)``;
* ``log + wandb offline``: blocks plus an offline wandb run; ``..., every 10th row``: the same
  with ``Logger(wandb_every=10)`` (metrics.jsonl keeps every row);
* wandb's own ``run.log`` cost per row, measured alone (no training), beside the table;
* ``log + ckpt every N``: blocks, and a packed checkpoint of the whole ``EvoState`` every N
  generations (N from ``--ckpt-freq``).

Reported per variant:

* compile time: first ``train`` call minus the median steady-state call (jit + lowering);
* loop time: median over ``--repeats`` calls of ``trainer.train(state)`` continued from the
  previous state, until the result is ready and every host callback has run
  (``jax.effects_barrier``); generations/s and the ratio to ``no logger``;
* drain: what ``logger.finish()`` still waits for after the loop (pending checkpoint writes,
  wandb). A small loop ratio with a non-zero drain means checkpoints are written in the
  background without stalling the loop;
* checkpoints on disk against those requested: when saves cannot keep up, realax.log skips
  the oldest waiting ones (never the newest).

Variants are interleaved (repeat r of every variant before repeat r+1) so that load from
other processes affects all of them alike; each variant's ratio is also given per repeat
(against the no-logger call of the same repeat: min-max), with the load average
(``os.getloadavg()``) before and after the table.

Part of ``python -m benchmarks`` (table 6: all variants in one subprocess, interleaved);
standalone: ``uv run python benchmarks/logging_overhead.py [--task cartpole|rastrigin]
[--steps 200] [--repeats 5] [--ckpt-freq 10 50]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import realax.log as rlog
from realax.train import EvosaxTrainer, FitnessShaper


def make_task(name: str):
    if name == "rastrigin":

        def rastrigin(x, key=None, data=None):
            x = jnp.clip(x, -5.12, 5.12)
            return 10.0 * x.size + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x)), {}

        return rastrigin, jnp.zeros((256,)), FitnessShaper(maximize=False)
    import realax.tasks as rt

    env = rt.make("CartPole-v1")
    policy = rt.MLPPolicy.from_env(env, width=32, depth=2)
    task = rt.GymnaxTask("CartPole-v1", policy=policy, max_steps=200, obs_norm=True)
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))
    return task, params, FitnessShaper(maximize=True)


def plan(quick: bool) -> list[dict]:
    cfg = {
        "task": "cartpole",
        "steps": 20 if quick else 200,
        "popsize": 64,
        "repeats": 3 if quick else 5,
        "ckpt_freq": [10] if quick else [10, 50],
        "quick": quick,
    }
    return [
        {
            "group": "cartpole",
            "label": "EvosaxTrainer, Open_ES, CartPole (max 200 steps)",
            "module": "logging_overhead",
            "func": "run_all",
            "cfg": cfg,
            "realax": True,
        }
    ]


class PerStep:
    """A Logger behind an object without the block methods: the loops call ``log`` every
    step (one host callback per step)."""

    def __init__(self, inner):
        self.inner = inner

    def log(self, state, metrics):
        self.inner.log(state, metrics)

    def save_on_interrupt(self):
        return self.inner.save_on_interrupt()

    def on_run_end(self, state):
        self.inner.on_run_end(state)


class CountingLogger(rlog.Logger):
    """The Logger, counting its block hand-overs and their rows (for the table)."""

    handovers = 0
    rows = 0

    def _on_rows(self, seed_dims, log_tree, capacity, count, *args, **kwargs):
        self.handovers += 1
        self.rows += int(count)
        return super()._on_rows(seed_dims, log_tree, capacity, count, *args, **kwargs)


def run_all(cfg: dict) -> dict:
    """Every logger variant side by side in this process; returns per-variant timings."""
    load_before = os.getloadavg()
    task, params, shaper = make_task(cfg["task"])
    root = Path(tempfile.mkdtemp(prefix="realax_log_bench_"))
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ["WANDB_DIR"] = str(root)
    steps, repeats = cfg["steps"], cfg["repeats"]

    def logger_for(name: str):
        if name == "no logger":
            return None
        if name.startswith("log every step"):
            block = 16 if name.endswith("block 16") else None
            lg = CountingLogger(
                wandb_log=False,
                metrics_fn=rlog.default_es_metrics,
                log_dir=root / name.replace(" ", "_").replace(",", ""),
                log_block=block,
            )
            return PerStep(lg) if name.endswith("per step") else lg
        if name.startswith("log + wandb offline"):
            every = 10 if name.endswith("every 10th row") else 1
            lg = CountingLogger(
                wandb_log=True,
                metrics_fn=rlog.default_es_metrics,
                log_dir=root / f"wandb_log{every}",
                mode="offline",
                wandb_every=every,
            )
            lg.init(project="realax-log-bench", config={"popsize": cfg["popsize"]})
            return lg
        freq = int(name.rsplit(" ", 1)[1])
        (root / f"ckpt{freq}").mkdir(parents=True, exist_ok=True)
        return CountingLogger(
            wandb_log=False,
            metrics_fn=rlog.default_es_metrics,
            ckpt_dir=root / f"ckpt{freq}",
            ckpt_freq=freq,
        )

    fixed = [] if cfg.get("quick") else ["log every step, block 16"]
    names = [
        "no logger",
        "log every step, one callback per step",
        "log every step",
        *fixed,
        "log + wandb offline",
        "log + wandb offline, every 10th row",
    ] + [f"log + ckpt every {f}" for f in cfg["ckpt_freq"]]
    runs = {}
    for name in names:
        logger = logger_for(name)
        trainer = EvosaxTrainer(
            train_steps=steps,
            strategy="Open_ES",
            task=task,
            params_like=params,
            popsize=cfg["popsize"],
            fitness_shaper=shaper,
            logger=logger,
        )
        state = trainer.initialize(jax.random.key(0))
        t0 = time.perf_counter()
        state, _ = trainer.train(state)
        jax.block_until_ready(state)
        jax.effects_barrier()
        first = time.perf_counter() - t0
        runs[name] = {
            "trainer": trainer,
            "logger": logger,
            "state": state,
            "first": first,
            "times": [],
            "cpu": [],
        }

    # interleaved: repeat r of every variant before repeat r+1
    for _ in range(repeats):
        for name in names:
            r = runs[name]
            t0, c0 = time.perf_counter(), time.process_time()
            state, _ = r["trainer"].train(r["state"])
            jax.block_until_ready(state)
            jax.effects_barrier()
            r["times"].append(time.perf_counter() - t0)
            r["cpu"].append(time.process_time() - c0)  # every thread of this process
            r["state"] = state

    for name in names:
        r = runs[name]
        lg = getattr(r["logger"], "inner", r["logger"])
        t0 = time.perf_counter()
        if lg is not None:
            lg.finish()
        r["drain"] = time.perf_counter() - t0
        blocks = isinstance(r["logger"], CountingLogger) and lg.handovers
        r["rows_per_handover"] = lg.rows / lg.handovers if blocks else None

    wandb_alone = _wandb_row_cost(root, n=200 if cfg.get("quick") else 2000)
    state_bytes = sum(
        x.size * x.dtype.itemsize
        for x in jax.tree_util.tree_leaves(runs["no logger"]["state"])
        if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    )
    base = statistics.median(runs["no logger"]["times"])
    base_cpu = runs["no logger"]["cpu"]
    variants = []
    for name in names:
        r = runs[name]
        med = statistics.median(r["times"])
        per_repeat = [t / b for t, b in zip(r["times"], runs["no logger"]["times"], strict=True)]
        variants.append(
            {
                "name": name,
                "compile_s": max(r["first"] - med, 0.0),
                "run_s": med,
                "run_times_s": r["times"],
                "gens_per_s": steps / med,
                "ratio": med / base,
                "ratio_min": min(per_repeat),
                "ratio_max": max(per_repeat),
                "rows_per_handover": r["rows_per_handover"],
                "cpu_ratio": statistics.median(r["cpu"]) / statistics.median(base_cpu),
                "drain_s": r["drain"],
            }
        )
    ckpts = {f: rlog.all_steps(root / f"ckpt{f}") for f in cfg["ckpt_freq"]}
    return {
        "variants": variants,
        "state_kib": state_bytes / 1024,
        "checkpoints": {str(f): [len(v), v[-1] if v else None] for f, v in ckpts.items()},
        "wandb_row": wandb_alone,
        "compile_s": variants[0]["compile_s"],
        "run_s": base,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
    }


def _wandb_row_cost(root: Path, n: int) -> dict:
    """wandb's own cost of one row, without training: ``n`` ``run.log`` calls of rows like
    the table's (seven numbers) in an offline run, wall and process CPU microseconds each."""
    import wandb

    run = wandb.init(project="realax-log-bench", dir=str(root), mode="offline", reinit=True)
    names = ["generation", "fitness_min", "fitness_mean", "fitness_max", "fitness_std"]
    row = {name: 1.5 for name in [*names, "best_fitness", "n_nonfinite"]}
    for i in range(50):  # warm-up
        run.log(row, step=i)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(50, 50 + n):
        run.log(row, step=i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    run.finish()
    return {"n": n, "wall_us": 1e6 * wall / n, "cpu_us": 1e6 * cpu / n}


def render(rows: list[dict], quick: bool) -> str:
    from benchmarks._report import fmt_s, short_error, table

    if not rows:
        return ""
    r = rows[0]
    cfg = r["cfg"]
    if not r.get("ok"):
        return f"not run: {short_error(r['error'])}"
    res = r["result"]
    out = [
        f"{r['label']}, population {cfg['popsize']}, {cfg['steps']} generations per `train` "
        f"call, median of {cfg['repeats']} interleaved calls continuing the same run; "
        f"EvoState {res['state_kib']:.1f} KiB. Compile = first call minus the median call; "
        "spread = the ratio of each repeat to the no-logger call of the same repeat (min-max); "
        "CPU time = the process's CPU seconds (all threads: XLA, writer, checkpoints) per call, "
        "median, against no logger (steadier than wall time on a shared machine); "
        "rows/hand-over = the mean block of rows per host transfer (blocks, automatic size "
        "unless named); drain = what `logger.finish()` still waits for after the last call "
        "(checkpoint writes, wandb). Peak RSS of the process (all variants): "
        f"{r.get('peak_rss_mb', 0):,.0f} MB. {_load(res)}",
        "",
    ]
    body = [
        [
            v["name"],
            fmt_s(v["compile_s"]),
            fmt_s(v["run_s"]),
            f"{v['gens_per_s']:,.0f}",
            f"{v['ratio']:.3f}",
            f"{v['ratio_min']:.2f}-{v['ratio_max']:.2f}" if "ratio_min" in v else "",
            f"{v['cpu_ratio']:.3f}" if "cpu_ratio" in v else "",
            f"{v['rows_per_handover']:.1f}" if v.get("rows_per_handover") else "",
            fmt_s(v["drain_s"]),
        ]
        for v in res["variants"]
    ]
    out.append(
        table(
            [
                "variant",
                "compile (s)",
                "loop (s)",
                "generations/s",
                "time vs no logger",
                "spread",
                "CPU time vs no logger",
                "rows/hand-over",
                "drain (s)",
            ],
            body,
        )
    )
    total = cfg["steps"] * (cfg["repeats"] + 1)
    ck = ", ".join(
        f"every {f}: {n} of {total // int(f)} requested on disk (last step {last})"
        for f, (n, last) in res["checkpoints"].items()
    )
    wb = res.get("wandb_row")
    if wb:
        step_us = 1e6 * res["run_s"] / cfg["steps"]
        out += [
            "",
            f"wandb's own cost, measured alone (no training, {wb['n']} `run.log` calls of a "
            f"seven-number row in an offline run): {wb['wall_us']:.0f} us wall and "
            f"{wb['cpu_us']:.0f} us of CPU per row, {wb['cpu_us'] / step_us:.1%} of a "
            f"no-logger generation ({step_us:.0f} us): the floor of the wandb-offline ratio "
            "while every row goes to wandb, which the writer thread can hide only on an idle "
            "core.",
        ]
    out += [
        "",
        f"Checkpoints written: {ck}. realax.log skips the oldest waiting checkpoint when more "
        "than 16 wait to be written (the newest is always saved).",
    ]
    return "\n".join(out)


def _load(res: dict) -> str:
    if "load_before" not in res:
        return ""
    fmt = lambda xs: "/".join(f"{x:.2f}" for x in xs)  # noqa: E731
    return (
        f"Load average (1/5/15 min) before the table {fmt(res['load_before'])}, after "
        f"{fmt(res['load_after'])}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["cartpole", "rastrigin"], default="cartpole")
    parser.add_argument("--steps", type=int, default=200, help="generations per train call")
    parser.add_argument("--popsize", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ckpt-freq", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args()
    cfg = {
        "task": args.task,
        "steps": args.steps,
        "popsize": args.popsize,
        "repeats": args.repeats,
        "ckpt_freq": args.ckpt_freq,
    }
    res = run_all(cfg)
    print(
        f"task={args.task} popsize={args.popsize} steps/call={args.steps} "
        f"repeats={args.repeats} EvoState={res['state_kib']:.1f} KiB "
        f"backend={jax.default_backend()} devices={jax.device_count()}"
    )
    header = (
        f"{'variant':<38} {'compile s':>9} {'loop s':>8} {'gen/s':>7} {'x no-log':>8} "
        f"{'spread':>10} {'x cpu':>6} {'rows/h':>6} {'drain s':>8}"
    )
    print(header)
    print("-" * len(header))
    for v in res["variants"]:
        spread = f"{v['ratio_min']:.2f}-{v['ratio_max']:.2f}"
        rows = f"{v['rows_per_handover']:.1f}" if v["rows_per_handover"] else ""
        print(
            f"{v['name']:<38} {v['compile_s']:9.2f} {v['run_s']:8.3f} {v['gens_per_s']:7.0f} "
            f"{v['ratio']:8.3f} {spread:>10} {v['cpu_ratio']:6.3f} {rows:>6} {v['drain_s']:8.2f}"
        )
    print(_load(res))
    for f, (n, last) in res["checkpoints"].items():
        print(f"ckpt every {f}: {n} checkpoints on disk (last step {last})")


if __name__ == "__main__":
    main()
