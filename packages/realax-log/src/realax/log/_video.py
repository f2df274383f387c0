"""Videos (a rendered rollout of the policy) in a wandb run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

VIDEO_SUFFIXES = (".gif", ".mp4")


def log_video(run: Any, path: str | Path, *, key: str = "rollout") -> bool:
    """Logs a GIF or MP4 file into an open wandb run as a ``wandb.Video``.

    Host side only (never from compiled code). The file is copied into the run's media, so
    it may be deleted afterwards; the frame rate is the file's own.

    Args:
        run: an open wandb run (``Logger.run``), or ``None``: nothing is logged.
        path: the ``.gif`` or ``.mp4`` file.
        key: the name of the logged value.

    Returns:
        Whether it was logged (``False`` without a run).

    >>> log_video(None, "rollout.gif")
    False
    """
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"log_video: path must be a .gif or .mp4 file (got path={str(path)!r})")
    if run is None:
        return False
    if not path.is_file():
        raise FileNotFoundError(f"log_video: no such file {str(path)!r}")
    import wandb

    video_format: Literal["gif", "mp4"] = "gif" if path.suffix.lower() == ".gif" else "mp4"
    run.log({key: wandb.Video(str(path), format=video_format)})
    return True
