"""``uv run python -m benchmarks [--quick] [--only NAME ...]``

Runs every benchmark table, each variant in its own subprocess (so peak memory is that
variant's alone; rows sharing an ``"interleave"`` key have their warm calls paced round by
round, see ``benchmarks/_harness.run_interleaved``), records the load average at the start
and end of each table, and writes

* ``benchmarks/results/<machine>.json``: the machine, every row's configuration and raw
  timings (``<machine>.quick.json`` with ``--quick``);
* ``BENCHMARKS.md``: the generated tables between ``<!-- BEGIN name -->`` / ``<!-- END name -->``
  markers (prose outside the markers is kept); with ``--quick`` the report goes to
  ``benchmarks/results/<machine>.quick.md`` instead, so a quick run never overwrites the
  committed full report.

``--quick`` runs every table at a small size, two tables at a time, the rows of a table that
need no process of their own in one process (a smoke test of the harness; CI runs it) and
exits non-zero if a realax or hand-written variant fails. Peer libraries that cannot run
are recorded with their error, not treated as a failure.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import json
import os
import re
import sys
import time

from benchmarks import compile_summary
from benchmarks._common import load_sample
from benchmarks._harness import (
    ROOT,
    machine_info,
    machine_slug,
    run_batch,
    run_interleaved,
    run_variant,
)
from benchmarks._report import conditions, short_error

TABLES = {
    "loop": "loop_overhead",
    "neuroevolution": "neuroevolution",
    "brax": "brax_es",
    "ppo": "ppo",
    "scaling": "scaling",
    "logging": "logging_overhead",
    "startup": "startup",
    "qd": "qd",
    "offline": "offline",
    "sweep": "sweep",
    "pbt": "pbt",
    "sweep_stats": "sweep_stats",
    "render": "rendering",
    "ppo_rnn": "ppo_rnn",
    "pqn": "pqn",
    "ppo_brax": "ppo_brax",
    "offpolicy": "offpolicy",
    "suites": "suites_rollout",
}
TITLES = {
    "loop": "1. Loop overhead (no environment)",
    "neuroevolution": "2. Neuroevolution on gymnax CartPole-v1",
    "brax": "3. Brax ES (positional backend)",
    "ppo": "4. PPO on CartPole-v1 (PureJaxRL configuration)",
    "scaling": "5. Scaling: population size and CPU devices",
    "logging": "6. Logging and checkpointing overhead (realax.log)",
    "startup": "7. Start-up: `realax --help` and package imports",
    "qd": "8. Quality-diversity: QDTrainer vs qdax's MAPElites loop",
    "offline": "9. Offline RL: OfflineTrainer vs a hand-written update loop",
    "sweep": "10. Sweeps: 8 PPO configurations x 4 seeds as one program",
    "pbt": "11. Population-based training: one PBT program vs fixed runs one after another",
    "sweep_stats": "12. Sweep statistics: realax.log.stats' bootstrap and the report",
    "render": "13. Rendering a policy: Task.render per suite vs gymnax's Visualizer",
    "ppo_rnn": "14. Recurrent PPO on CartPole with the velocities hidden (PureJaxRL's PPO-RNN)",
    "pqn": "15. PQN on CartPole-v1 and PPO on Breakout-MinAtar vs rejax",
    "ppo_brax": "16. PPO with normalisation on brax inverted_pendulum vs brax's ppo.train",
    "offpolicy": "17. Off-policy RL: DQN on CartPole-v1 and SAC on Pendulum-v1 vs rejax",
    "suites": "18. Random-policy rollouts per suite (gymnax, Playground) and ES on Playground",
}


def _machine_md(info: dict, quick: bool) -> str:
    v = info["versions"]
    load = info.get("loadavg_start", (0, 0, 0))
    load_end = info.get("loadavg_end", (0, 0, 0))
    lines = [
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM, "
        f"{info['platform']} ({info['device_kind']}), Python {info['python']}",
        f"- versions: jax {v['jax']}, evosax {v['evosax']}, gymnax {v['gymnax']}, "
        f"brax {v['brax']}, flax {v['flax']}, optax {v['optax']}; peers pinned in "
        "`benchmarks/peers/*/uv.lock`",
        f"- date: {info['date']}; {'--quick' if quick else 'full'} run, "
        f"{info.get('minutes', 0):.1f} min of benchmarking",
        f"- load average (1/5/15 min) at start {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, "
        f"at end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}"
        + (
            " — the machine was shared with other jobs, so timings are noisy"
            # the benchmark itself keeps up to `cores` threads busy: only more is other work
            if max(load[0], load_end[0]) > info["cores"]
            else ""
        ),
    ]
    return "\n".join(lines)


def _splice(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip() + "\n\n" + block + "\n"


def _skeleton() -> str:
    parts = ["# realax benchmarks", "", "<!-- BEGIN machine -->\n<!-- END machine -->", ""]
    for name, title in [*TITLES.items(), (compile_summary.NAME, compile_summary.TITLE)]:
        parts += [f"## {title}", "", f"<!-- BEGIN {name} -->\n<!-- END {name} -->", ""]
    return "\n".join(parts)


def _env_key(row: dict) -> str:
    return json.dumps(row.get("env") or {}, sort_keys=True)


def _batches(module, rows: list[dict], quick: bool):
    """The rows in the order they run, as ``(how, rows)``: ``"alone"`` (one row, its own
    process), ``"paced"`` (every row of one ``"interleave"`` set, at the place of its first
    row) or, with ``--quick``, ``"batch"`` (the table's other workspace rows with the same
    ``env``, in one process: one JAX import for all; an interleave set without a peer is
    batched so too). A row with ``"alone": True`` always gets its own process."""
    seen = set()
    for row in rows:
        key = row.get("interleave")
        if key is not None:
            if key not in seen:
                seen.add(key)
                rows_of_set = [r for r in rows if r.get("interleave") == key]
                if not quick or any(r.get("peer") for r in rows_of_set):
                    yield "paced", rows_of_set  # --quick still paces the sets with a peer
                    continue
                for env in dict.fromkeys(_env_key(r) for r in rows_of_set):
                    yield "batch", [r for r in rows_of_set if _env_key(r) == env]
            continue
        alone = row.get("peer") or row.get("pending") or row.get("alone")
        alone = alone or hasattr(module, "prepare")
        if not quick or alone:
            if hasattr(module, "prepare"):  # e.g. give a peer the work a realax row just did
                module.prepare(row, rows)
            yield "alone", [row]
            continue
        env = _env_key(row)
        if ("batch", env) not in seen:
            seen.add(("batch", env))
            yield "batch", [r for r in rows if r.get("interleave") is None
                            and not (r.get("peer") or r.get("pending") or r.get("alone"))
                            and _env_key(r) == env]  # fmt: skip


def _run_table(name: str, quick: bool, timeout: float, verbose: bool):
    """Every row of table ``name``: ``(name, rows, printed lines, failed, conditions)``."""
    module = importlib.import_module(f"benchmarks.{TABLES[name]}")
    rows = module.plan(quick)
    lines, failed = [f"== {TITLES[name]}: {len(rows)} variant(s)"], []
    meta = {"load_start": load_sample()}
    for how, batch in _batches(module, rows, quick):
        if how == "paced":
            run_interleaved(batch, timeout=timeout, verbose=verbose)
        elif how == "batch" and len(batch) > 1:
            run_batch(batch, timeout=timeout, verbose=verbose)
        else:
            run_variant(batch[0], timeout=timeout, verbose=verbose)
        for row in batch:
            status = "ok" if row["ok"] else "FAILED: " + short_error(row["error"] or "", 200)
            lines.append(
                f"   {row.get('group', '')} {row['label']}: {status} ({row.get('wall_s', 0):.1f}s"
                f", {row.get('cpu_s') or 0:.1f} CPU s, peak {row.get('peak_rss_mb') or 0:.0f} MB)"
            )
            if not row["ok"] and not row.get("optional"):
                failed.append(f"{name}: {row.get('group', '')} {row['label']}")
    meta["load_end"] = load_sample()
    return name, rows, lines, failed, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    parser.add_argument("--only", nargs="+", choices=sorted(TABLES), help="run only these tables")
    parser.add_argument("--timeout", type=float, default=None, help="per-variant timeout (s)")
    parser.add_argument("--verbose", action="store_true", help="print variants' stderr")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="tables run at once (default: 2 with --quick, else 1: timed tables run alone)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the markdown report from the saved results JSON without running anything",
    )
    args = parser.parse_args(argv)

    started = time.time()
    info = machine_info()
    slug = machine_slug(info) + (".quick" if args.quick else "")
    results_dir = ROOT / "benchmarks" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{slug}.json"
    md_path = results_dir / f"{slug}.md" if args.quick else ROOT / "BENCHMARKS.md"
    timeout = args.timeout or (240.0 if args.quick else 3600.0)

    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    tables = dict(previous.get("tables", {}))
    failed = []
    if args.render_only:
        info = previous["machine"]
    names = [] if args.render_only else args.only or list(TABLES)
    # --quick is a smoke test whose timings mean nothing: its tables run two at a time (rows
    # within a table stay in order, a peer row may use the realax row before it)
    jobs = args.jobs or (2 if args.quick else 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        done = pool.map(lambda name: _run_table(name, args.quick, timeout, args.verbose), names)
        for name, rows, lines, table_failed, meta in done:
            print("\n".join(lines), flush=True)
            failed += table_failed
            tables[name] = {"rows": rows, "quick": args.quick, "date": info["date"],
                            "cpu": info["cpu"], "cores": info["cores"], **meta}  # fmt: skip

    if not args.render_only:
        info["loadavg_end"] = os.getloadavg()
        info["minutes"] = round(
            (time.time() - started) / 60
            + previous.get("machine", {}).get("minutes", 0) * bool(args.only),
            1,
        )
        json_path.write_text(json.dumps({"machine": info, "tables": tables}, indent=1, default=str))

    text = md_path.read_text() if md_path.exists() else _skeleton()
    text = _splice(text, "machine", _machine_md(info, args.quick))
    for name, data in tables.items():
        module = importlib.import_module(f"benchmarks.{TABLES[name]}")
        body = module.render(data["rows"], data["quick"])
        text = _splice(text, name, body + "\n\n" + conditions(data))
    text = _splice(text, compile_summary.NAME, compile_summary.render(tables, TABLES, TITLES))
    md_path.write_text(text)
    print(
        f"wrote {json_path.relative_to(ROOT)} and {md_path.relative_to(ROOT)} "
        f"in {(time.time() - started) / 60:.1f} min"
    )
    if failed:
        print("failed variants:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
