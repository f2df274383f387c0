"""realax.log: wandb logging from inside compiled JAX loops, packed checkpoints, exact resume.

The names are imported on first use (``import realax.log`` itself loads nothing heavy; jax
comes with ``Logger``, wandb with the first wandb run, orbax only to read a checkpoint of
realax-log 0.1).

Example:
    >>> import realax.log as rlog
    >>> logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_es_metrics,
    ...                      ckpt_dir="runs/es", ckpt_freq=50)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import _stats as stats  # noqa: F401  (the module, public as realax.log.stats)
    from ._checkpoint import all_steps as all_steps
    from ._checkpoint import latest_step as latest_step
    from ._checkpoint import read_metadata as read_metadata
    from ._checkpoint import restore as restore
    from ._interrupt import InterruptGuard as InterruptGuard
    from ._interrupt import Terminated as Terminated
    from ._logger import Logger as Logger
    from ._metrics import default_es_metrics as default_es_metrics
    from ._metrics import default_grad_metrics as default_grad_metrics
    from ._metrics_file import read_metrics as read_metrics
    from ._plot import plot as plot
    from ._qd_plot import plot_repertoire as plot_repertoire
    from ._report import Report as Report
    from ._report import read_sweep as read_sweep
    from ._report import report as report
    from ._sinks import Sink as Sink
    from ._video import log_video as log_video
    from ._wandb import default_wandb_config as default_wandb_config
    from ._wandb import setup_wandb as setup_wandb
    from ._wandb_reader import read_wandb_config as read_wandb_config
    from ._wandb_reader import read_wandb_history as read_wandb_history

__version__ = "0.1.0"

#: public name -> the module that defines it
_WHERE = {
    "InterruptGuard": "_interrupt",
    "Logger": "_logger",
    "Sink": "_sinks",
    "Terminated": "_interrupt",
    "all_steps": "_checkpoint",
    "default_es_metrics": "_metrics",
    "default_grad_metrics": "_metrics",
    "default_wandb_config": "_wandb",
    "latest_step": "_checkpoint",
    "log_video": "_video",
    "plot": "_plot",
    "plot_repertoire": "_qd_plot",
    "read_metadata": "_checkpoint",
    "read_metrics": "_metrics_file",
    "read_wandb_config": "_wandb_reader",
    "read_wandb_history": "_wandb_reader",
    "read_sweep": "_report",
    "Report": "_report",
    "report": "_report",
    "restore": "_checkpoint",
    "setup_wandb": "_wandb",
    "stats": "",  # the module realax.log._stats itself
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'realax.log' has no attribute {name!r}")
    if name == "stats":
        value = importlib.import_module(f"{__name__}._stats")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
