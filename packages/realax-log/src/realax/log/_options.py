"""The checks of ``Logger(...)``'s arguments: each error names the argument, what was
expected and what was given, before anything is compiled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import _wandb


def positive_int(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """``value``, checked: an int >= 1 (numpy's too; not a bool), or None where allowed."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        what = "a positive int or None" if allow_none else "a positive int"
        raise ValueError(f"{name} must be {what} (got {name}={value!r}); e.g. {name}=100")
    return value


def flag(name: str, value: Any) -> bool:
    """``value`` as a bool, checked: True or False (numpy's too)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {name}={value!r}")
    return bool(value)


def wandb_log_flag(wandb_log: Any) -> bool:
    """``wandb_log`` as a bool, checked like :func:`flag` (its message shows the value only)."""
    if not isinstance(wandb_log, bool | np.bool_):
        raise TypeError(f"wandb_log must be True or False, got {wandb_log!r}")
    return bool(wandb_log)


def wandb_mode(mode: str | None) -> str | None:
    """The wandb mode resolved (``None``: decided at init)."""
    return None if mode is None else _wandb.resolve_mode(mode)


def check_resume_or_overwrite(resume: bool, overwrite: bool) -> None:
    if resume and overwrite:
        raise ValueError(
            "resume=True and overwrite=True contradict each other; pass resume=True to "
            "continue the run in ckpt_dir or overwrite=True to replace it"
        )


def check_functions(metrics_fn: Any, host_log_transform: Any) -> None:
    if not callable(metrics_fn):
        raise TypeError(
            "metrics_fn must be a function (state, data) -> (log_data, ckpt_data, step), "
            f"got {type(metrics_fn).__name__}; e.g. realax.log.default_es_metrics"
        )
    if host_log_transform is not None and not callable(host_log_transform):
        raise TypeError(
            f"host_log_transform must be callable or None, got {type(host_log_transform)}"
        )


def ckpt_dir_of(ckpt_dir: Any, ckpt_file: Any) -> Path | None:
    """The checkpoint directory, resolved (``ckpt_file`` is its old name)."""
    if ckpt_file is not None:
        if ckpt_dir is not None and Path(ckpt_dir) != Path(ckpt_file):
            raise ValueError(
                f"ckpt_file is an alias of ckpt_dir; got both (ckpt_dir={str(ckpt_dir)!r}, "
                f"ckpt_file={str(ckpt_file)!r}); pass only ckpt_dir"
            )
        ckpt_dir = ckpt_file
    return None if ckpt_dir is None else Path(ckpt_dir).expanduser().resolve()


def step_of(state: Any, step: Any, ckpt_dir: Path | None) -> Any:
    """``checkpoint_now``'s step: the argument, else ``state.step`` (with a ``ckpt_dir``)."""
    if ckpt_dir is None:
        raise ValueError("checkpoint_now needs a Logger with a ckpt_dir (got ckpt_dir=None)")
    if step is not None:
        return step
    if not hasattr(state, "step"):
        raise TypeError(
            f"checkpoint_now(state) needs state.step or an explicit step (got a "
            f"{type(state).__name__} without a step field); pass step=..."
        )
    return state.step
