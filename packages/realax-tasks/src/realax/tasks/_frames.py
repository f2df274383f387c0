"""Per-suite frame drawing: recorded environment states -> RGB frames, on the host.

Each suite adapter's ``render`` entry is one of the ``*_frames`` functions below and its
``check_render`` entry the matching ``check_*``. A frames function takes the :class:`Env` and
the list of the suite's own states (one per frame) and returns ``uint8`` arrays of shape
``(height, width, 3)``. Nothing here runs inside a compiled loop; the renderer libraries
(pillow, matplotlib, pygame, MuJoCo's GL context) are imported only when called.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_SIZE = (240, 160)  # width, height of the frames drawn with pillow
_MINATAR_SCALE = 16  # pixels per MinAtar cell
_JUMANJI_DPI = 50  # jumanji's figures are 10 x 10 inches: 500 x 500 pixels at this dpi


def missing(package: str, extra: str, purpose: str) -> ImportError:
    """The error for a renderer dependency that is not installed, naming what installs it."""
    return ImportError(
        f"{purpose} needs the package {package!r}, which is not installed. Install it with: "
        f'pip install "realax-tasks[{extra}]"'
    )


def _require(module: str, package: str, extra: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise missing(package, extra, purpose) from error


# ---------------------------------------------------------------------------- gymnax
def _cartpole(state: Any, params: Any) -> np.ndarray:
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = _SIZE
    image = Image.new("RGB", _SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    scale = w / (2 * float(params.x_threshold) * 1.2)
    ground = int(h * 0.7)
    draw.line([(0, ground), (w, ground)], fill=(0, 0, 0))
    cx = w / 2 + float(state.x) * scale
    draw.rectangle([cx - 20, ground - 8, cx + 20, ground + 8], fill=(40, 40, 40))
    pole = 2 * float(params.length) * scale
    angle = float(state.theta)
    tip = (cx + pole * math.sin(angle), ground - pole * math.cos(angle))
    draw.line([(cx, ground), tip], fill=(202, 152, 101), width=6)
    draw.ellipse([cx - 3, ground - 3, cx + 3, ground + 3], fill=(129, 132, 203))
    return np.asarray(image)


def _pendulum(state: Any, params: Any) -> np.ndarray:
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = _SIZE
    image = Image.new("RGB", _SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    cx, cy, length = w / 2, h / 2, 0.4 * h
    angle = float(state.theta)  # 0: upright
    tip = (cx + length * math.sin(angle), cy - length * math.cos(angle))
    draw.line([(cx, cy), tip], fill=(204, 77, 77), width=8)
    draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(0, 0, 0))
    return np.asarray(image)


def _minatar(env: Any, states: list[Any], params: Any) -> list[np.ndarray]:
    """MinAtar frames: each cell coloured by the highest of its observation channels."""
    import jax
    import numpy as np

    stacked = jax.tree.map(lambda *xs: np.stack(xs), *states)
    observe = jax.jit(jax.vmap(lambda s: env.get_obs(s, params)))  # one call for all frames
    grids = np.asarray(observe(stacked), np.float32)  # (frames, rows, cols, channels)
    channels = grids.shape[-1]
    hue = np.linspace(0.0, 1.0, channels, endpoint=False)
    palette = np.stack(
        [0.5 + 0.5 * np.cos(2 * np.pi * (hue + s)) for s in (0.0, 1 / 3, 2 / 3)], axis=-1
    )
    palette = np.concatenate([np.zeros((1, 3)), palette]) * 255  # 0: empty cell, black
    index = np.max(grids * (np.arange(channels) + 1), axis=-1).astype(np.int64)
    cells = palette[index].astype(np.uint8)
    block = np.ones((1, _MINATAR_SCALE, _MINATAR_SCALE, 1), np.uint8)
    return list(np.kron(cells, block))


_DRAWN = {"CartPole-v1": _cartpole, "Pendulum-v1": _pendulum}
# gymnax's own Visualizer draws these (matplotlib; the classic-control ones need pygame)
_VISUALIZED = ("Catch-bsuite", "PointRobot-misc", "MetaMaze-misc", "FourRooms-misc")
_PYGAME = ("Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0")


def _gymnax_kind(env: Any) -> str:
    name = env.spec.name
    if name in _DRAWN:
        return "pillow"
    if name.endswith("-MinAtar"):
        return "minatar"
    if name in _VISUALIZED:
        return "visualizer"
    if name in _PYGAME:
        return "pygame"
    raise ValueError(
        f"gymnax environment {name!r} has no renderer: gymnax's visualizer draws "
        f"{sorted((*_DRAWN, *_VISUALIZED, *_PYGAME))} and the MinAtar games"
    )


def check_gymnax(env: Any) -> None:
    """Raises before any rollout if ``env`` cannot be rendered here (and why)."""
    kind = _gymnax_kind(env)
    what = f"rendering gymnax {env.spec.name!r}"
    _require("PIL", "pillow", "render", what)
    if kind in ("visualizer", "pygame"):
        _require("matplotlib", "matplotlib", "render", what)
        _require("seaborn", "seaborn", "gymnax", what)
    if kind == "pygame":
        _require("pygame", "pygame", "gymnax-render", what)
        _require("gymnasium", "gymnasium", "gymnax-render", what)


def gymnax_frames(env: Any, states: list[Any]) -> list[np.ndarray]:
    """Frames of gymnax states: CartPole, Pendulum and MinAtar drawn here with pillow and
    numpy (about a millisecond a frame); the others by gymnax's ``Visualizer`` (matplotlib;
    Acrobot and MountainCar through gymnasium and pygame, about a second a frame)."""
    kind = _gymnax_kind(env)
    params = env.env_params
    if kind == "pillow":
        return [_DRAWN[env.spec.name](s, params) for s in states]
    if kind == "minatar":
        return _minatar(env.unwrapped, states, params)
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from gymnax.visualize import Visualizer

    vis = Visualizer(env.unwrapped, params, states)
    return grab_animation(vis.fig, vis.update, len(states), init=vis.init)


# ---------------------------------------------------------------------------- matplotlib
def figure_rgb(fig: Any) -> np.ndarray:
    """The matplotlib figure drawn as an RGB array (through an Agg canvas, whatever the
    figure's own canvas is)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def grab_animation(fig: Any, update: Any, n: int, *, init: Any = None) -> list[np.ndarray]:
    """Draws ``update(i)`` for ``i < n`` on the matplotlib figure ``fig`` and returns the
    canvas as RGB arrays (then closes the figure)."""
    import matplotlib.pyplot as plt

    frames = []
    try:
        if init is not None:
            init()
        for i in range(n):
            update(i)
            frames.append(figure_rgb(fig))
    finally:
        plt.close(fig)
    return frames


# ---------------------------------------------------------------------------- jumanji
def check_jumanji(env: Any) -> None:
    """Raises if jumanji's ``animate`` cannot run here (it draws with matplotlib)."""
    what = f"rendering jumanji {env.spec.name!r}"
    _require("matplotlib", "matplotlib", "render", what)
    _require("PIL", "pillow", "render", what)
    if not callable(getattr(env.unwrapped, "animate", None)):
        raise ValueError(f"jumanji environment {env.spec.name!r} has no animate method")


def jumanji_frames(env: Any, states: list[Any]) -> list[np.ndarray]:
    """Frames of jumanji states, drawn by the environment's own ``animate``."""
    animation = env.unwrapped.animate(states, interval=100)
    fig = animation._fig  # FuncAnimation keeps its figure here (no public accessor)
    fig.set_dpi(_JUMANJI_DPI)
    frames: list[np.ndarray] = []
    animation.save("unused.gif", writer=_grabber(frames), dpi=_JUMANJI_DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return frames


def _grabber(frames: list[np.ndarray]) -> Any:
    """A matplotlib movie writer that keeps the frames in memory instead of writing them."""
    from matplotlib.animation import AbstractMovieWriter

    class Grabber(AbstractMovieWriter):
        def setup(self, fig: Any, outfile: Any, dpi: Any = None) -> None:
            self.fig, self.outfile, self.dpi = fig, outfile, dpi

        def grab_frame(self, **savefig_kwargs: Any) -> None:
            frames.append(figure_rgb(self.fig))

        def finish(self) -> None:
            pass

    return Grabber()


# ---------------------------------------------------------------------------- brax
def check_brax(env: Any) -> None:
    """Opens (and closes) a tiny MuJoCo renderer: fails here, before any training, if no
    OpenGL backend works, with the ``MUJOCO_GL`` value to set."""
    del env
    mujoco = _require("mujoco", "mujoco", "brax", "rendering brax environments")
    _require("PIL", "pillow", "render", "rendering brax environments")
    try:
        renderer = mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8)
    except Exception as error:  # mujoco raises FatalError / ImportError / RuntimeError
        value = os.environ.get("MUJOCO_GL")
        raise RuntimeError(
            f"MuJoCo's renderer cannot open an OpenGL context (MUJOCO_GL={value!r}: "
            f"{type(error).__name__}: {error}). Set MUJOCO_GL=egl (or MUJOCO_GL=osmesa after "
            "`apt-get install libosmesa6`) in the environment before Python starts"
        ) from error
    renderer.close()


def brax_frames(env: Any, states: list[Any]) -> list[np.ndarray]:
    """Frames of brax states, drawn by brax's ``Env.render`` (MuJoCo's renderer)."""
    import numpy as np

    pipeline = [s.pipeline_state for s in states]
    return [np.asarray(f) for f in env.unwrapped.render(pipeline, height=240, width=320)]
