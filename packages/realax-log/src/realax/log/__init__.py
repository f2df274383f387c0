"""realax.log: wandb logging from inside compiled JAX loops, orbax checkpoints, exact resume.

Example:
    >>> import realax.log as rlog
    >>> logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_es_metrics,
    ...                      ckpt_dir="runs/es", ckpt_freq=50)  # doctest: +SKIP
"""

from ._checkpoint import all_steps as all_steps
from ._checkpoint import latest_step as latest_step
from ._checkpoint import read_metadata as read_metadata
from ._checkpoint import restore as restore
from ._logger import Logger as Logger
from ._logger import Terminated as Terminated
from ._metrics import default_es_metrics as default_es_metrics
from ._metrics import default_grad_metrics as default_grad_metrics
from ._metrics_file import read_metrics as read_metrics
from ._plot import plot as plot
from ._wandb import default_wandb_config as default_wandb_config
from ._wandb import setup_wandb as setup_wandb
from ._wandb_reader import read_wandb_config as read_wandb_config
from ._wandb_reader import read_wandb_history as read_wandb_history

__version__ = "0.1.0"

__all__ = [
    "Logger",
    "Terminated",
    "all_steps",
    "default_es_metrics",
    "default_grad_metrics",
    "default_wandb_config",
    "latest_step",
    "plot",
    "read_metadata",
    "read_metrics",
    "read_wandb_config",
    "read_wandb_history",
    "restore",
    "setup_wandb",
]
