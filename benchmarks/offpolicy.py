"""Table 17 -- off-policy RL: DQN on CartPole-v1 and SAC on Pendulum-v1 against rejax 0.1.3.

Both libraries run the same configuration, one that rejax can express: every iteration,
``num_envs`` environments take one step each (realax: ``train_freq=1``), the transitions go
into a replay buffer of ``buffer_size`` rows, and once ``learning_starts`` environment steps
were collected, ``updates_per_iteration`` gradient steps (rejax: ``num_epochs``; realax:
``gradient_steps``) use minibatches of ``batch_size``. Networks: ReLU MLPs 64x64, Adam, no
gradient clipping, Polyak target rate ``tau`` once per iteration. DQN is double DQN with
epsilon linear from 1.0 to ``eps_end`` over ``exploration_fraction`` of the run. The whole run
is one jitted function of a key in both libraries, and each ends with one greedy evaluation of
128 episodes inside the timed program.

* ``realax``: ``realax.train.rl.OffPolicyTrainer`` with ``realax.agents.DQN`` / ``SAC``;
* ``rejax``: rejax 0.1.3's ``DQN`` / ``SAC`` in its own environment (``benchmarks/peers/rejax``).

Each library runs in its own process (rejax in its venv); after both cold calls (compile
time from JAX's monitoring events, reported apart) the harness paces their warm calls round
by round (``interleave`` rows), so load that changes during the table moves both alike; the
ratio is taken per round and its spread over the rounds reported, in wall and in CPU time,
with the load average beside each run.

Known differences that remain: rejax samples minibatches without replacement, weighting the
whole buffer (``jax.random.choice(..., p=)``: work proportional to ``buffer_size`` per
minibatch); realax samples ``batch_size`` indices with replacement among the filled rows.
rejax's DQN treats a time-limit truncation as a termination, realax bootstraps it. rejax's
SAC updates the actor before the critics, realax after.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def dqn_cfg(quick: bool) -> dict[str, Any]:
    return {
        "algo": "dqn",
        "env": "CartPole-v1",
        "num_envs": 4,
        "updates_per_iteration": 2,
        "batch_size": 64,
        "buffer_size": 50_000,
        "learning_starts": 1_000,
        "total_timesteps": 4_000 if quick else 100_000,
        "lr": 1e-3,
        "gamma": 0.99,
        "tau": 0.01,
        "eps_end": 0.05,
        "exploration_fraction": 0.2,
        "hidden": [64, 64],
        "seed": 0,
        "repeats": 1,
    }


def sac_cfg(quick: bool) -> dict[str, Any]:
    return {
        "algo": "sac",
        "env": "Pendulum-v1",
        "num_envs": 1,
        "updates_per_iteration": 1,
        "batch_size": 256,
        "buffer_size": 30_000,
        "learning_starts": 1_000,
        "total_timesteps": 2_000 if quick else 20_000,
        "lr": 1e-3,
        "gamma": 0.99,
        "tau": 0.005,
        "hidden": [64, 64],
        "seed": 0,
        "repeats": 1,
    }


def realax_available() -> bool:
    try:
        if importlib.util.find_spec("realax.train.rl") is None:
            return False
        from realax.train.rl import OffPolicyTrainer  # noqa: F401
    except ImportError:
        return False
    return True


def plan(quick: bool) -> list[dict[str, Any]]:
    rounds = 2 if quick else 5
    rows = []
    for cfg in (dqn_cfg(quick), sac_cfg(quick)):
        algo = cfg["algo"]
        common = {"group": cfg["env"], "cfg": {**cfg, "repeats": rounds}, "interleave": algo}
        rows.append(
            {
                **common,
                "label": f"realax OffPolicyTrainer + {algo.upper()}",
                "module": "offpolicy",
                "func": "realax_run",
                "realax": True,
            }
        )
        rows.append(
            {
                **common,
                "label": f"rejax 0.1.3 {algo.upper()}",
                "peer": "rejax",
                "script": f"{algo}.py",
                "func": f"rejax_{algo}",
                "realax": False,
                "optional": True,
            }
        )
    if not realax_available():
        for row in rows:
            if row["realax"]:
                row["pending"] = "pending: realax.train.rl was not in this checkout"
                row["optional"] = True
    return rows


def timed(call: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """``benchmarks._common.measure`` plus the process's CPU time of each warm call
    (``run_cpu_s``, median): all threads' work, which other jobs on a loaded machine move
    far less than wall time. Also records the load average after the runs."""
    from benchmarks._common import measure

    cpu: list[float] = []

    def counted() -> Any:
        t0 = time.process_time()
        out = call()
        cpu.append(time.process_time() - t0)
        return out

    res = measure(counted, repeats)
    res["run_cpu_times_s"] = cpu[1:] or cpu
    res["run_cpu_s"] = statistics.median(res["run_cpu_times_s"])
    res["loadavg"] = os.getloadavg()
    return res


def realax_trainer(cfg: dict[str, Any]) -> Any:
    """The `OffPolicyTrainer` of ``cfg`` (``dqn_cfg`` / ``sac_cfg``)."""
    import optax
    from realax.agents import DQN, SAC
    from realax.train.rl import OffPolicyTrainer

    n, g = cfg["num_envs"], cfg["updates_per_iteration"]
    train_steps = cfg["total_timesteps"] // n
    hidden = tuple(cfg["hidden"])
    if cfg["algo"] == "dqn":
        agent: Any = DQN
        # rejax's Polyak step follows all updates of an iteration: one target update per phase
        agent_kwargs = {"learning_rate": cfg["lr"], "discount": cfg["gamma"], "tau": cfg["tau"],
                        "target_update_period": g, "hidden_dims": hidden, "activation": "relu",
                        "max_grad_norm": None, "double_q": True}  # fmt: skip
        decay = int(cfg["exploration_fraction"] * cfg["total_timesteps"])
        extra = {"epsilon": optax.linear_schedule(1.0, cfg["eps_end"], max(decay, 1))}
    else:
        agent = SAC
        lr = cfg["lr"]
        agent_kwargs = {"actor_lr": lr, "critic_lr": lr, "temperature_lr": lr,
                        "discount": cfg["gamma"], "tau": cfg["tau"], "hidden_dims": hidden,
                        "activation": "relu"}  # fmt: skip
        extra = {}
    return OffPolicyTrainer(
        agent,
        cfg["env"],
        buffer_size=cfg["buffer_size"],
        batch_size=cfg["batch_size"],
        learning_starts=cfg["learning_starts"],
        train_freq=1,
        gradient_steps=g,
        train_steps=train_steps,
        num_envs=n,
        agent_kwargs=agent_kwargs,
        eval_freq=train_steps,
        eval_episodes=128,
        **extra,
    )


def realax_run(cfg):
    import jax

    trainer = realax_trainer(cfg)
    state0 = trainer.initialize(jax.random.key(cfg["seed"]))
    res = timed(lambda: jax.block_until_ready(trainer.train(state0)), cfg["repeats"])
    state, metrics = res["out"]
    res["env_steps"] = int(state.env_steps) - int(state0.env_steps)
    res["final_return"] = float(metrics["eval_return"][-1])
    res["note"] = "return = mean of 128 greedy eval episodes"
    return res


def _speed_ratio(rows: list[dict[str, Any]], group: str, key: str) -> dict[str, Any] | None:
    """realax's env-steps/s over rejax's from the warm calls made round by round (``key``:
    ``run_times_s`` wall or ``run_cpu_times_s`` CPU); both do the same env-steps."""
    from benchmarks._common import ratio_stats

    found = {r["realax"]: r["result"].get(key) for r in rows if r["group"] == group and r.get("ok")}
    if not found.get(True) or not found.get(False):
        return None
    return ratio_stats(found[False], found[True])  # rejax time / realax time = speed ratio


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, short_error, table

    dqn, sac = dqn_cfg(quick), sac_cfg(quick)
    rounds = rows[0]["cfg"]["repeats"] if rows else plan(quick)[0]["cfg"]["repeats"]
    out = []
    for cfg in (dqn, sac):
        out.append(
            f"- {cfg['algo'].upper()} on {cfg['env']}: {cfg['num_envs']} env(s) x 1 step, then "
            f"{cfg['updates_per_iteration']} update(s) on minibatches of {cfg['batch_size']}; "
            f"buffer {cfg['buffer_size']:,}, learning starts at {cfg['learning_starts']:,}, "
            f"{cfg['total_timesteps']:,} env-steps, lr {cfg['lr']}, tau {cfg['tau']}, "
            f"MLP {'x'.join(map(str, cfg['hidden']))}"
        )
    out += [
        f"- one process per library; after the cold call (compile), {rounds} warm "
        "runs of the whole jitted training, paced round by round (realax, rejax; rejax, "
        "realax; ...): run = median, timed in wall and in the process's CPU seconds (all "
        "threads; far less moved by other jobs on a loaded machine); load = 1-minute load "
        "average after the runs",
        "",
    ]
    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["group"], r["label"], "not run", "", "", "", "", "", "", "",
                         short_error(r.get("error") or "", 200)])  # fmt: skip
            continue
        load = res.get("loadavg")
        body.append(
            [
                r["group"],
                r["label"],
                fmt_s(res["compile_s"]),
                fmt_s(res["run_s"]),
                fmt_rate(res["env_steps"] / res["run_s"]),
                fmt_s(res.get("run_cpu_s")),
                fmt_rate(res["env_steps"] / res["run_cpu_s"]) if "run_cpu_s" in res else "-",
                f"{res['final_return']:.1f}",
                fmt_mem(r.get("peak_rss_mb")),
                f"{load[0]:.1f}" if load else "-",
                res.get("note", ""),
            ]
        )
    header = ["env", "variant", "compile (s)", "run (s)", "env-steps/s", "run CPU (s)",
              "env-steps per CPU-s", "final return", "peak RSS", "load", "note"]  # fmt: skip
    out.append(table(header, body))
    out.append("")
    from benchmarks._report import fmt_ratio

    for group in (dqn["env"], sac["env"]):
        for key, what in (("run_times_s", "wall"), ("run_cpu_times_s", "CPU")):
            stats = _speed_ratio(rows, group, key)
            if stats:
                out.append(
                    f"- {group}: realax / rejax env-steps per {what} second, median (min-max) "
                    f"over the rounds **{fmt_ratio(stats)}** (target >= 1.0)"
                )
    return "\n".join(out)
