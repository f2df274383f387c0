"""The logging of a sweep: a ``config`` column in the metrics file, one wandb run per
configuration in a group or one run with a table, and ``sweep.json`` in the run folder.

A sweep's logged values carry leading axes ``(n_configs, n_seeds)`` (two nested vmaps) or
one axis of ``n_configs * n_seeds`` members, configuration-major (member ``i`` is
configuration ``i // n_seeds``, seed ``i % n_seeds``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._sinks import LoggedStep, WandbSink, wandb_value

WANDB_LAYOUTS = ("per_config", "table")
SWEEP_FILE = "sweep.json"


@dataclasses.dataclass(frozen=True)
class SweepLayout:
    """Which configuration and seed each vmapped member of a logged step is."""

    configs: tuple[dict[str, Any], ...]

    def members(self, step: LoggedStep) -> list[tuple[tuple[int, ...], int, Any]]:
        """``(index into the values, config, seed)`` for each member of ``step``."""
        shape = step.step.shape[: step.seed_dims]
        n = len(self.configs)
        if step.seed_dims == 0:
            return [((), 0, 0)] if n == 1 else self._mismatch(shape)
        if step.seed_dims == 1:
            if shape[0] % n:
                return self._mismatch(shape)
            per = shape[0] // n
            return [((i,), i // per, i % per) for i in range(shape[0])]
        if shape[0] != n:
            return self._mismatch(shape)
        out = []
        for idx in np.ndindex(*shape):
            seed = idx[1] if len(idx) == 2 else list(idx[1:])
            out.append((idx, idx[0], seed))
        return out

    def _mismatch(self, shape: tuple[int, ...]) -> Any:
        raise ValueError(
            f"Logger(sweep_configs=...) has {len(self.configs)} configurations, but the "
            f"logged values have leading (vmapped) axes {shape}; expected (n_configs, "
            "n_seeds) or (n_configs * n_seeds,), configuration-major"
        )

    def rows(self, step: LoggedStep) -> list[dict[str, Any]]:
        """Metrics-file rows: ``step``, ``config``, ``seed`` and the numeric values."""
        out = []
        for idx, config, seed in self.members(step):
            row: dict[str, Any] = {"step": int(step.step[idx]), "config": config, "seed": seed}
            row |= step.numbers(idx)
            out.append(row)
        return out


def check_sweep(configs: Any, wandb: Any) -> SweepLayout | None:
    """``Logger``'s ``sweep_configs`` and ``sweep_wandb``, checked."""
    if wandb not in WANDB_LAYOUTS:
        raise ValueError(
            f"sweep_wandb must be one of {WANDB_LAYOUTS} (got sweep_wandb={wandb!r}); "
            "'per_config' starts one wandb run per configuration in a group, 'table' one run"
        )
    if configs is None:
        return None
    if isinstance(configs, Mapping | str) or not isinstance(configs, Sequence) or not configs:
        raise ValueError(
            "sweep_configs must be a non-empty list of dicts (one per configuration, in "
            f"sweep order), got {configs!r}; e.g. [{{'learning_rate': 1e-3}}, ...]"
        )
    for i, c in enumerate(configs):
        if not isinstance(c, Mapping):
            raise TypeError(f"sweep_configs[{i}] must be a dict, got {type(c).__name__}")
    return SweepLayout(tuple(dict(c) for c in configs))


def write_sweep_file(run_dir: Path, layout: SweepLayout) -> None:
    """``sweep.json``: the configurations (and, once the report's metric is known, which)."""
    path = run_dir / SWEEP_FILE
    old = json.loads(path.read_text()) if path.exists() else {}
    doc = {**old, "configs": list(layout.configs)}
    path.write_text(json.dumps(doc, indent=1, default=_plain) + "\n")


def _plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, np.generic | np.ndarray) else repr(v)


class SweepWandbSink(WandbSink):
    """wandb for a sweep: ``"per_config"`` starts one run per configuration (in one group;
    the run's config is the common config plus the configuration's values, keys
    ``seed<j>/<name>``); ``"table"`` one run with keys ``config<i>/seed<j>/<name>`` and, at
    the end, a ``sweep`` table of each configuration and seed's last values."""

    def __init__(self, layout: SweepLayout, mode: str) -> None:
        super().__init__()
        self.layout, self.mode = layout, mode
        self.runs: list[Any] = []
        self._last: dict[tuple[int, Any], dict[str, Any]] = {}

    def start(self, project: str | None, config: Any, **kwargs: Any) -> None:
        from . import _wandb

        self.close()
        if self.mode == "table":
            super().start(project, config, **kwargs)
            self.runs = [self.run]
            return
        base, name = dict(config or {}), kwargs.pop("name", None)
        group = kwargs.pop("group", None) or name or f"sweep-{np.random.randint(1 << 30):08x}"
        for i, c in enumerate(self.layout.configs):
            self.runs.append(
                _wandb.start_run(
                    project=project,
                    config={**base, **c, "sweep_config": i},
                    group=group,
                    name=f"{name or group}-c{i}",
                    **kwargs,
                )
            )
        self.run = self.runs[0]

    def write(self, steps: list[LoggedStep]) -> None:
        if self.run is None:
            super().write(steps)  # warns once that init was not called
            return
        for s in steps:
            payloads: dict[int, dict[str, Any]] = {}
            for idx, config, seed in self.layout.members(s):
                values = {
                    k: wandb_value(v[idx]) for k, v in s.values.items() if isinstance(v, np.ndarray)
                }
                self._last[(config, str(seed))] = values
                target = 0 if self.mode == "table" else config
                prefix = f"config{config}/" if self.mode == "table" else ""
                payload = payloads.setdefault(target, {})
                payload |= {f"{prefix}seed{seed}/{k}": v for k, v in values.items()}
            for target, payload in payloads.items():
                if self.runs[target] is not None and self.sends(s):
                    self.runs[target].log(payload, step=int(s.step.max()))

    def _table(self) -> Any:
        import wandb

        names = sorted({k for v in self._last.values() for k in v})
        keys = sorted({k for c in self.layout.configs for k in c})
        table = wandb.Table(columns=["config", "seed", *keys, *names])
        for (config, seed), values in sorted(self._last.items()):
            hp = self.layout.configs[config]
            table.add_data(
                config, seed, *(hp.get(k) for k in keys), *(values.get(n) for n in names)
            )
        return table

    def close(self) -> None:
        from . import _wandb

        if self.mode == "table" and self.run is not None and self._last:
            self.run.log({"sweep": self._table()})
        runs, self.runs, self.run = self.runs, [], None
        for run in runs:
            if run is not None:
                _wandb.finish_run(run)
        self._last = {}
        self.initialized = False


def wandb_sink(layout: SweepLayout | None, mode: str) -> WandbSink:
    """The Logger's wandb sink: a :class:`SweepWandbSink` for a sweep."""
    return WandbSink() if layout is None else SweepWandbSink(layout, mode)
