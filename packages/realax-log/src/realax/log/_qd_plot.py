"""A QD repertoire as a heat map of elite fitness over descriptor space (the ``plot`` extra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._plot import _import_matplotlib

__all__ = ["plot_repertoire"]

#: pixels per side of the rasterised Voronoi diagram of a 2-D repertoire
_RESOLUTION = 256


def _arrays(repertoire: Any, fitnesses: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(centroids (n, d), fitnesses (n,))`` of a repertoire object or of two arrays."""
    if fitnesses is None:
        if not (hasattr(repertoire, "centroids") and hasattr(repertoire, "fitnesses")):
            raise TypeError(
                f"plot_repertoire needs a repertoire with centroids and fitnesses (got "
                f"{type(repertoire).__name__}); pass state.repertoire, or centroids and "
                "fitnesses=..."
            )
        repertoire, fitnesses = repertoire.centroids, repertoire.fitnesses
    centroids = np.asarray(repertoire, np.float64)
    fits = np.asarray(fitnesses, np.float64).reshape(-1)
    if centroids.ndim == 1:
        centroids = centroids[:, None]
    if centroids.ndim != 2 or centroids.shape[0] != fits.shape[0]:
        raise ValueError(
            f"plot_repertoire expects centroids (n, d) and fitnesses (n,) or (n, 1) (got "
            f"shapes {centroids.shape} and {np.shape(fitnesses)}); pass one run's repertoire, "
            "e.g. jax.tree.map(lambda x: x[0], state.repertoire) for the first seed."
        )
    return centroids, fits


def _bounds(centroids: np.ndarray, bounds: Any, dims: tuple[int, ...]) -> tuple:
    if bounds is None:
        lo, hi = centroids.min(0), centroids.max(0)
        pad = np.where(hi > lo, (hi - lo) / max(2 * round(len(centroids) ** 0.5), 2), 0.5)
        return lo - pad, hi + pad
    lo = np.broadcast_to(np.asarray(bounds[0], np.float64), centroids.shape[1:])
    hi = np.broadcast_to(np.asarray(bounds[1], np.float64), centroids.shape[1:])
    return lo[list(dims)], hi[list(dims)]


def _nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    out = np.empty(len(points), np.int64)
    for i in range(0, len(points), 8192):  # bounded memory: 8192 x n distances at a time
        chunk = points[i : i + 8192]
        d = ((chunk[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
        out[i : i + 8192] = d.argmin(1)
    return out


def plot_repertoire(
    repertoire: Any,
    out: str | Path,
    *,
    fitnesses: Any = None,
    descriptor_bounds: Any = None,
    descriptor_names: Sequence[str] | None = None,
    dims: tuple[int, int] = (0, 1),
    title: str | None = None,
    segments: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Draw a repertoire as a heat map: each cell coloured by its elite's fitness.

    A 2-D repertoire is drawn as its Voronoi cells (rasterised: each pixel takes the colour
    of its nearest centroid), so Euclidean grids and CVT tessellations look alike; empty cells
    are light grey. A 1-D repertoire is a strip; with more descriptors, the centroids are
    projected on ``dims`` and drawn as points (the fittest on top).

    Args:
        repertoire: an object with ``centroids (n, d)`` and ``fitnesses (n,)`` or ``(n, 1)``
            (a qdax ``MapElitesRepertoire``, ``QDState.repertoire``), or the centroids
            themselves with ``fitnesses=``. ``-inf`` fitness marks an empty cell.
        out: PNG path to write.
        descriptor_bounds: ``(minval, maxval)`` of the axes (default: around the centroids).
        descriptor_names: axis labels (default ``descriptor 0``, ...).
        dims: the two descriptors drawn when there are more than two.
        title: the figure's title (default: coverage and max fitness).
        segments: line segments ``(x0, y0, x1, y1)`` drawn over a 2-D map, e.g. a maze's walls.

    Returns:
        Path of the written PNG.

    Example:
        >>> import os, tempfile, numpy as np, realax.log as rlog
        >>> xs = np.linspace(0.05, 0.95, 10)
        >>> centroids = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
        >>> fits = np.where(centroids[:, 0] > 0.5, -np.sum(centroids**2, 1), -np.inf)
        >>> png = rlog.plot_repertoire(centroids, os.path.join(tempfile.mkdtemp(), "rep.png"),
        ...                           fitnesses=fits)
        >>> png.name
        'rep.png'
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    centroids, fits = _arrays(repertoire, fitnesses)
    n, d = centroids.shape
    filled = np.isfinite(fits) & (fits > -np.inf)
    drawn = (0,) if d == 1 else tuple(int(i) for i in dims)
    if any(not 0 <= i < d for i in drawn) or len(set(drawn)) != len(drawn):
        raise ValueError(f"dims must name two different descriptors of {d} (got dims={dims})")
    dims = (drawn[0], drawn[-1])
    cols = list(drawn)
    names = list(descriptor_names or [f"descriptor {i}" for i in range(d)])
    lo, hi = _bounds(centroids, descriptor_bounds, drawn)
    vmin, vmax = (fits[filled].min(), fits[filled].max()) if filled.any() else (0.0, 1.0)

    fig = Figure(figsize=(5.6, 4.6) if d > 1 else (6.0, 2.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor("#e6e6e6")  # empty cells
    kw = {"cmap": "viridis", "vmin": vmin, "vmax": vmax}
    if d <= 2:
        xs = np.linspace(lo[0], hi[0], _RESOLUTION)
        ys = np.linspace(lo[1], hi[1], _RESOLUTION) if d == 2 else np.zeros(1)
        gx, gy = np.meshgrid(xs, ys)
        pts = np.stack([gx.ravel(), gy.ravel()], -1)[:, :d]
        cell = _nearest(pts, centroids[:, cols]).reshape(gx.shape)
        image = np.ma.masked_invalid(np.where(filled[cell], fits[cell], np.nan))
        extent = (lo[0], hi[0], lo[1], hi[1]) if d == 2 else (lo[0], hi[0], 0.0, 1.0)
        mappable = ax.imshow(image, origin="lower", extent=extent, aspect="auto", **kw)
        if d == 1:
            ax.set_yticks([])
    else:
        order = np.argsort(np.where(filled, fits, -np.inf))
        order = order[filled[order]]
        pts = centroids[order][:, cols]
        mappable = ax.scatter(pts[:, 0], pts[:, 1], c=fits[order], s=12, **kw)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    for x0, y0, x1, y1 in segments or ():
        ax.plot([x0, x1], [y0, y1], color="black", lw=2.5, solid_capstyle="butt")
    ax.set_xlabel(names[dims[0]])
    if d > 1:
        ax.set_ylabel(names[dims[1]])
    fig.colorbar(mappable, ax=ax, label="fitness")
    if title is None:
        best = f"{vmax:.4g}" if filled.any() else "-"
        title = f"{filled.sum()}/{n} cells ({100 * filled.mean():.1f} %), max fitness {best}"
    ax.set_title(title, fontsize="medium")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
