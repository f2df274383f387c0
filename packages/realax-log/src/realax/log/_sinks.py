"""Where logged steps go: the metrics file, the wandb run, the console, behind one Protocol.

The writer thread (:mod:`._writer`) turns the buffered host-callback payloads into
:class:`LoggedStep` records and hands each batch to every sink, in order; a sink that fails
does not stop the others.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import _metrics_file
from ._console import say

_NUMBER = (np.ndarray, np.generic, int, float, bool)


@dataclasses.dataclass(frozen=True)
class LoggedStep:
    """One call of ``Logger.log`` on the host: numpy values, leading ``seed_dims`` axes when
    the loop was vmapped (one entry per seed)."""

    step: np.ndarray
    seed_dims: int
    values: dict[str, Any]
    #: a sweep's layout (``realax.log._sweep_log.SweepLayout``): rows get a ``config`` column
    layout: Any = None

    def numbers(self, idx: tuple[int, ...]) -> dict[str, Any]:
        """The numeric values of the member at ``idx`` of the seed axes, as JSON values."""
        return {
            k: _metrics_file.to_json_value(np.asarray(v)[idx])
            for k, v in self.values.items()
            if isinstance(v, _NUMBER)
        }

    @functools.cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Metrics-file rows, one per seed: ``step`` (, ``config``, ``seed``) and the numeric
        values."""
        if self.layout is not None:
            return self.layout.rows(self)
        out = []
        for idx in np.ndindex(*self.step.shape[: self.seed_dims]):
            row: dict[str, Any] = {"step": int(self.step[idx])}
            if self.seed_dims:
                row["seed"] = idx[0] if self.seed_dims == 1 else list(idx)
            out.append(row | self.numbers(idx))
        return out


@runtime_checkable
class Sink(Protocol):
    """A destination of logged steps.

    ``durable`` sinks are also written when a second signal stops the process at once (see
    :class:`realax.log.InterruptGuard`); they must be quick and local.
    """

    durable: bool

    def write(self, steps: list[LoggedStep]) -> None:
        """Write a batch of steps, oldest first (called from the writer thread)."""
        ...

    def close(self) -> None:
        """Release files and connections (called once, by ``Logger.finish``)."""
        ...


class MetricsFileSink:
    """``metrics.jsonl``: one strict-JSON row per step and seed."""

    durable = True

    def __init__(self, run_dir: Path, *, resume: bool):
        self.file = _metrics_file.MetricsFile(run_dir, resume=resume)

    def write(self, steps: list[LoggedStep]) -> None:
        self.file.write_lines([row for s in steps for row in s.rows])

    def close(self) -> None:
        self.file.close()


class ConsoleSink:
    """``verbose=True``: one line per step and seed on stdout (a closed pipe is ignored)."""

    durable = False

    def write(self, steps: list[LoggedStep]) -> None:
        for s in steps:
            for row in s.rows:
                shown = " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in row.items()
                    if not isinstance(v, list)
                )
                say(f"[realax.log] {shown}")

    def close(self) -> None:
        pass


def _seed_label(idx: tuple[int, ...]) -> str:
    return "seed" + "_".join(str(i) for i in idx)


def wandb_value(v: Any) -> Any:
    if isinstance(v, np.ndarray | np.generic):
        a = np.asarray(v)
        return a.item() if a.ndim == 0 else a
    return v


class WandbSink:
    """The wandb run of ``Logger.init``: keys ``<name>``, or ``seed<i>/<name>`` per seed.

    Until ``init`` is called the steps go nowhere, with one warning.
    """

    durable = False

    def __init__(self) -> None:
        self.run: Any = None
        self.initialized = False
        self._warned = False
        #: ``Logger(wandb_every=k)``: only rows whose step is a multiple of k go to wandb
        self.every = 1

    def sends(self, step: LoggedStep) -> bool:
        """Whether this row goes to wandb (every row unless ``wandb_every`` thins them)."""
        return self.every == 1 or int(step.step.max()) % self.every == 0

    def start(self, project: str | None, config: Any, **kwargs: Any) -> None:
        """Start (or restart) the run: ``wandb.init`` with a fallback to offline mode."""
        from . import _wandb

        if self.run is not None:
            _wandb.finish_run(self.run)
        self.run = _wandb.start_run(project=project, config=config, **kwargs)

    def write(self, steps: list[LoggedStep]) -> None:
        if self.run is None:
            if not self.initialized and not self._warned:
                self._warned = True
                warnings.warn(
                    "realax.log: Logger(wandb_log=True) is logging but Logger.init(...) was "
                    "not called; metrics go to metrics.jsonl only. Call "
                    "logger.init(project=..., config=...) before training.",
                    RuntimeWarning,
                    stacklevel=1,
                )
            return
        for s in steps:
            if not self.sends(s):
                continue
            if s.seed_dims == 0:
                payload = {k: wandb_value(v) for k, v in s.values.items()}
            else:
                payload = {
                    f"{_seed_label(idx)}/{k}": wandb_value(v[idx])
                    for idx in np.ndindex(*s.step.shape[: s.seed_dims])
                    for k, v in s.values.items()
                    if isinstance(v, np.ndarray)
                }
            self.run.log(payload, step=int(s.step.max()))

    def close(self) -> None:
        if self.run is not None:
            from . import _wandb

            run, self.run = self.run, None
            _wandb.finish_run(run)
        self.initialized = False


def run_sinks(run_dir: Path, resume: bool, wandb: WandbSink | None, console: bool) -> list[Sink]:
    """A Logger's sinks: ``metrics.jsonl`` in ``run_dir``, the wandb run, the console."""
    sinks: list[Sink] = [MetricsFileSink(run_dir, resume=resume)]
    if wandb is not None:
        sinks.append(wandb)
    if console:
        sinks.append(ConsoleSink())
    return sinks
