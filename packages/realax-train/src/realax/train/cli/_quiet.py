"""Keeping other libraries' noise out of the command's output (standard library only).

The command installs these filters before it imports JAX or a suite, so what reaches the
terminal is realax's own lines: a warning that matters to the user is shown once, as one line
``realax: warning: ...``, without the source line Python's default format adds.
"""

from __future__ import annotations

import contextlib
import logging
import netrc
import os
import sys
import warnings
from typing import Any

#: messages of other libraries that say nothing the user of the command can act on
IGNORED = (
    r".*not actively being maintained.*",  # brax's notice on import
    r".*settotalmass.*",  # mujoco, when brax scales a model's mass
    r".*Failed to import warp.*",  # mujoco's optional GPU backend
    r".*jax\.tree_util\.register_keypaths is deprecated.*",
)


def install() -> None:
    """Quiet TensorFlow-style C++ logs, drop :data:`IGNORED`, show other warnings once, briefly."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for category in (UserWarning, RuntimeWarning):
        warnings.filterwarnings("once", category=category)
    for pattern in IGNORED:
        warnings.filterwarnings("ignore", message=pattern)
    warnings.showwarning = _show
    # retries of downloads an environment needs: `realax envs` says "unavailable" instead
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)


def _show(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    del category, filename, lineno, line
    text = " ".join(str(message).split())
    if not text.startswith("realax"):
        text = f"realax: warning: {text}"
    stream = sys.stderr if file is None else file
    with contextlib.suppress(OSError, ValueError):  # a closed stream: no one to tell
        print(text, file=stream, flush=True)


def wandb_logged_in() -> bool:
    """True if wandb has credentials here (``WANDB_API_KEY`` or a netrc entry); no network."""
    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        hosts = netrc.netrc(path).hosts
    except (OSError, netrc.NetrcParseError):
        return False
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    host = base.split("://", 1)[-1].split("/", 1)[0]
    return host in hosts
