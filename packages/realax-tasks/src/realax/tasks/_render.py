"""Rendering a policy: a compiled rollout that records states, then frames drawn on the host.

:func:`render_rollout` is what :meth:`EnvTask.render` and the CLI call; it asks the suite
adapter of the environment for its ``check_render`` (before the rollout) and ``render``
(state list -> RGB frames) entries, and :func:`write_video` writes the frames as a GIF
(pillow) or an MP4 (the ffmpeg program: on PATH, or imageio-ffmpeg's).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    import numpy as np

from ._env import Env
from ._rollout import Runner, _start, _transition
from ._suites import SuiteAdapter, adapter

Array = jax.Array
SUFFIXES = (".gif", ".mp4")
DEFAULT_FPS = 30


def _adapter(env: Env) -> SuiteAdapter:
    a = adapter(env.suite)
    if a.render is None or a.check_render is None:
        raise ValueError(f"{env.suite} environments have no renderer in realax.tasks")
    return a


def check_render(env: Env, path: str | Path | None = None) -> None:
    """Raises now, before any training, if ``env`` could not be rendered to ``path``.

    Checks the suffix (``.gif`` or ``.mp4``), the renderer's packages (the error names the
    extra to install) and, for MuJoCo-rendered suites, that an OpenGL context opens (the
    error names the ``MUJOCO_GL`` value to set).

    >>> import realax.tasks as rt
    >>> rt.check_render(rt.make("CartPole-v1"), "rollout.gif")
    """
    if not isinstance(env, Env):
        raise TypeError(f"check_render: env must be a realax.tasks.Env (got {type(env).__name__})")
    if path is not None:
        _check_suffix(Path(path))
    _adapter(env).check_render(env)  # type: ignore[misc]


def _check_suffix(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"render path must end in .gif or .mp4 (got path={str(path)!r}); "
            "for example rollout.gif"
        )
    if suffix == ".mp4" and ffmpeg_program() is None:
        raise RuntimeError(
            f"writing {path.name} needs the ffmpeg program, which is not on PATH and not "
            "installed by imageio-ffmpeg: pip install \"realax-tasks[render]\" (brings "
            "imageio-ffmpeg's ffmpeg), apt-get install ffmpeg, or write a .gif"
        )


def ffmpeg_program() -> str | None:
    """The ffmpeg program: the one on PATH, else the binary imageio-ffmpeg ships (the
    ``render`` extra installs it), else None."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:  # a platform without a bundled binary
        return None


def record(r: Runner, params: Any, key: Array, norm: Any) -> tuple[Any, Array, Array]:
    """One episode of ``r`` recording the environment's own states.

    Returns:
        ``(states, rewards, valid)``: the suite states stacked over ``max_steps + 1`` (the
        first is the reset state), the rewards of the ``max_steps`` steps (0 after the end)
        and whether each step belongs to the episode. Same randomness as the tasks' rollouts.
    """
    obs, env_state, pstate, k_loop = _start(r, params, key)

    def body(carry, t):
        obs, env_state, pstate, alive = carry
        _, pstate, obs, env_state, reward, term, trunc = _transition(
            r, params, norm, obs, env_state, pstate, jax.random.fold_in(k_loop, t)
        )
        out = (env_state.inner, jnp.where(alive, reward, 0.0), alive)
        alive = jnp.logical_and(alive, jnp.logical_not(jnp.logical_or(term, trunc)))
        return (obs, env_state, pstate, alive), out

    first = env_state.inner
    carry = (obs, env_state, pstate, jnp.ones((), bool))
    steps = jnp.arange(r.max_steps, dtype=jnp.int32)
    _, (states, rewards, valid) = jax.lax.scan(body, carry, steps)
    states = jax.tree.map(
        lambda a, s: jnp.concatenate([jnp.asarray(a, s.dtype)[None], s]), first, states
    )
    return states, rewards, valid


def unstack(states: Any, n: int) -> list[Any]:
    """The first ``n`` entries of stacked states as a list of single states (numpy leaves)."""
    host = jax.device_get(states)
    return [jax.tree.map(lambda x, i=i: x[i], host) for i in range(n)]


def write_video(frames: Sequence[np.ndarray], path: str | Path, *, fps: int = DEFAULT_FPS) -> Path:
    """Writes RGB frames (``uint8``, ``(height, width, 3)``) as a looping GIF or an MP4.

    >>> import numpy as np, tempfile, os
    >>> frames = [np.full((4, 6, 3), v, np.uint8) for v in (0, 255)]
    >>> path = write_video(frames, os.path.join(tempfile.mkdtemp(), "a.gif"), fps=10)
    >>> path.name
    'a.gif'
    """
    import numpy as np

    path = Path(path)
    _check_suffix(path)
    if not frames:
        raise ValueError("write_video: no frames to write")
    if not isinstance(fps, int) or isinstance(fps, bool) or fps < 1:
        raise ValueError(f"fps must be a positive int (got fps={fps!r})")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [np.ascontiguousarray(f, dtype=np.uint8) for f in frames]
    if path.suffix.lower() == ".mp4":
        _write_mp4(arrays, path, fps)
        return path
    images = _paletted(arrays)
    duration = max(20, round(1000 / fps))  # GIF delays are in 10 ms units; browsers floor at 20
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=duration, loop=0, disposal=1
    )
    return path


def _write_mp4(arrays: list[Any], path: Path, fps: int) -> None:
    """H.264 through the ffmpeg program: raw RGB frames on its stdin (even sizes padded)."""
    h, w = arrays[0].shape[:2]
    command = [
        ffmpeg_program() or "ffmpeg",
        "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    data = b"".join(a.tobytes() for a in arrays)
    done = subprocess.run(command, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path}: {done.stderr.decode()[-500:]}")


def _paletted(arrays: list[np.ndarray]) -> list[Any]:
    """The frames as palette images sharing one palette, made from up to 8 frames spread
    over the episode (several times faster to write than letting pillow quantize each)."""
    import numpy as np
    from PIL import Image

    picks = np.linspace(0, len(arrays) - 1, min(8, len(arrays))).round().astype(int)
    sample = Image.fromarray(np.concatenate([arrays[i] for i in picks], axis=0))
    palette = sample.quantize(colors=255, dither=Image.Dither.NONE)
    return [Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE) for a in arrays]


def render_rollout(
    env: Env,
    act: Callable[[Any, Array, Any, Array], tuple[Array, Any]],
    params: Any,
    key: Array,
    path: str | Path,
    *,
    init: Callable[[Any, Array], Any] | None = None,
    max_steps: int | None = None,
    fps: int = DEFAULT_FPS,
    norm: Any = None,
    obs_clip: float = 10.0,
) -> Path:
    """Rolls out a policy once and writes the episode as a video.

    The rollout is compiled (a ``lax.scan`` recording the states); the frames are drawn
    afterwards on the host by the suite's renderer, one per state: the reset state and the
    state after every step of the episode, so an episode of ``T`` steps gives ``T + 1``
    frames (jumanji: the frames its ``animate`` draws from them, ``T`` for Snake and the
    environments that animate pairs of states), each with a progress bar along its bottom
    edge (:func:`progress_bar`).

    Args:
        env: the environment (any autoreset setting; the episode is not reset).
        act: ``(params, obs, policy_state, key) -> (action, policy_state)``.
        params: the policy's parameters, passed to ``act``.
        key: the PRNG key of the episode.
        path: where to write it; ``.gif`` (pillow) or ``.mp4`` (ffmpeg: on PATH, or the one
            imageio-ffmpeg ships with the ``render`` extra).
        init: ``(params, key) -> policy_state`` at the start (default: ``None`` state).
        max_steps: step limit (default: the environment's ``max_steps``).
        fps: frames per second of the video.
        norm: a :class:`RunningStats` to normalise observations with (``obs_norm`` tasks).
        obs_clip: clip of normalised observations.

    Returns:
        The path written.
    """
    import numpy as np

    path = Path(path)
    check_render(env, path)
    env = env.replace(autoreset=False) if env.autoreset else env
    steps = env.max_steps if max_steps is None else max_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"max_steps must be a positive int (got max_steps={max_steps!r})")
    runner = Runner(
        env=env,
        init=init if init is not None else (lambda p, k: None),
        act=act,
        max_steps=steps,
        obs_norm=False,
        obs_clip=obs_clip,
    )
    states, _, valid = jax.jit(lambda p, k, n: record(runner, p, k, n))(params, key, norm)
    n = 1 + int(np.sum(np.asarray(valid)))
    frames = _adapter(env).render(env, unstack(states, n))  # type: ignore[misc]
    return write_video(progress_bar(frames), path, fps=fps)


def progress_bar(frames: Sequence[np.ndarray], color=(230, 80, 40)) -> list[np.ndarray]:
    """The frames with a 2-pixel bar along the bottom that grows to the full width at the
    last frame: it shows how far into the episode a frame is, and keeps consecutive
    frames distinct (a GIF merges identical consecutive frames into one) while there are
    at most as many frames as pixel columns.

    >>> import numpy as np
    >>> [f[-1, :, 0].tolist() for f in progress_bar([np.zeros((3, 2, 3), np.uint8)] * 2)]
    [[230, 0], [230, 230]]
    """
    import numpy as np

    out = []
    for i, frame in enumerate(frames):
        frame = np.array(frame, dtype=np.uint8)
        width = frame.shape[1]
        frame[-2:, : -(-width * (i + 1) // len(frames))] = color
        out.append(frame)
    return out
