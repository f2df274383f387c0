"""Table 10 -- rendering a policy: the cost of ``Task.render`` per frame, by suite.

Each row renders one episode of a random MLP policy (width 8, one hidden layer) with
``EnvTask.render``'s two phases timed apart: the compiled rollout that records the states
(compile and run), then the host side (drawing the frames, writing the GIF). The episode is
``frames - 1`` steps long or shorter (it ends where the environment ends it), so the per-frame
figures divide by the frames actually drawn.

The "gymnax Visualizer" rows draw the same kind of states with gymnax's own ``Visualizer``
(what the brief measured at ~1.3 s a frame for the classic-control environments, which build
a gymnasium environment per frame and need pygame): the reason realax draws CartPole,
Pendulum and MinAtar itself.
"""

from __future__ import annotations

import time
from typing import Any

ROWS = (
    # (env, how, env kwargs, optional)
    ("CartPole-v1", "realax", {}, False),
    ("CartPole-v1", "gymnax Visualizer", {}, True),  # needs pygame (gymnax[visualize])
    ("Breakout-MinAtar", "realax", {}, False),
    ("Breakout-MinAtar", "gymnax Visualizer", {}, True),
    ("Snake-v1", "jumanji animate", {"num_rows": 6, "num_cols": 6}, False),
    ("inverted_pendulum", "brax Env.render (MuJoCo)", {}, False),
)


def plan(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for env, how, kwargs, optional in ROWS:
        if quick and (env, how) != ("CartPole-v1", "realax"):
            continue  # --quick: one row (each row is a subprocess importing its suite)
        frames = 8 if quick else 200
        if how == "gymnax Visualizer":
            frames = 20  # seconds a frame for the gymnasium-based ones
        rows.append(
            {
                "group": env,
                "label": how,
                "module": "rendering",
                "func": "visualizer" if how == "gymnax Visualizer" else "draw",
                "cfg": {"env": env, "env_kwargs": kwargs, "frames": frames},
                "realax": how != "gymnax Visualizer",
                "optional": optional,
                "env": {"MUJOCO_GL": "egl", "SDL_AUDIODRIVER": "dummy", "MPLBACKEND": "Agg"},
            }
        )
    return rows


def _task(cfg: dict[str, Any]) -> tuple[Any, Any]:
    import jax
    import jax.numpy as jnp
    import realax.tasks as rt

    env = rt.make(cfg["env"], autoreset=False, **cfg["env_kwargs"])
    policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
    task = rt.EnvTask(env, policy=policy, max_steps=cfg["frames"] - 1)
    key = jax.random.key(0)
    params = policy.init(key, jnp.zeros(env.obs_shape), policy.initialize(key), key)
    return task, params


def _record(task: Any, params: Any) -> tuple[Any, list[Any], dict[str, float]]:
    import jax
    import numpy as np
    from realax.tasks._render import record, unstack

    from benchmarks._common import compile_seconds

    run = jax.jit(lambda p, k: record(task._runner, p, k, None))
    key = jax.random.key(1)
    c0, t0 = compile_seconds(), time.perf_counter()
    states, _, valid = jax.block_until_ready(run(params, key))
    first = time.perf_counter() - t0
    compiled = compile_seconds() - c0  # a delta: --quick may run other rows in this process
    t0 = time.perf_counter()
    states, _, valid = jax.block_until_ready(run(params, key))
    run_s = time.perf_counter() - t0
    n = 1 + int(np.sum(np.asarray(valid)))
    return task.env, unstack(states, n), {"compile_s": compiled, "first_call_s": first,
                                          "record_s": run_s, "frames": n}  # fmt: skip


def draw(cfg: dict[str, Any]) -> dict[str, Any]:
    import tempfile
    from pathlib import Path

    from realax.tasks._render import progress_bar, write_video
    from realax.tasks._suites import adapter

    task, params = _task(cfg)
    env, states, result = _record(task, params)
    draw = adapter(env.suite).render
    assert draw is not None
    t0 = time.perf_counter()
    frames = draw(env, states)
    result["draw_ms_per_frame"] = 1000 * (time.perf_counter() - t0) / len(frames)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = write_video(progress_bar(frames), Path(tmp) / "rollout.gif")
        result["gif_ms_per_frame"] = 1000 * (time.perf_counter() - t0) / len(frames)
        result["gif_kb"] = path.stat().st_size / 1024
    result["size"] = list(frames[0].shape[:2])
    return result


def visualizer(cfg: dict[str, Any]) -> dict[str, Any]:
    from gymnax.visualize import Visualizer
    from realax.tasks._frames import grab_animation

    task, params = _task(cfg)
    env, states, result = _record(task, params)
    t0 = time.perf_counter()
    vis = Visualizer(env.unwrapped, env.env_params, states)
    frames = grab_animation(vis.fig, vis.update, len(states), init=vis.init)
    result["draw_ms_per_frame"] = 1000 * (time.perf_counter() - t0) / len(frames)
    result["size"] = list(frames[0].shape[:2])
    return result


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_s, short_error, table

    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["group"], r["label"], "not run", "", "", "", "", "",
                         short_error(r.get("error") or "", 160)])  # fmt: skip
            continue
        gif = res.get("gif_ms_per_frame")
        body.append(
            [
                r["group"],
                r["label"],
                str(res["frames"]),
                fmt_s(res["compile_s"]),
                f"{1000 * res['record_s']:.1f}",
                f"{res['draw_ms_per_frame']:.2f}",
                "" if gif is None else f"{gif:.2f}",
                fmt_mem(r.get("peak_rss_mb")),
                "x".join(str(d) for d in res["size"][::-1]) + " px",
            ]
        )
    header = [
        "environment",
        "frames drawn by",
        "frames",
        "compile rollout (s)",
        "record run (ms)",
        "draw (ms/frame)",
        "GIF write (ms/frame)",
        "peak RSS",
        "note",
    ]
    intro = (
        "One episode of a random MLP policy rendered with `EnvTask.render`'s two phases timed "
        "apart: the compiled rollout recording the states, then drawing and writing on the host "
        f"({'--quick: 8 frames' if quick else 'up to 200 frames; gymnax Visualizer rows 20'})."
    )
    return intro + "\n\n" + table(header, body)
