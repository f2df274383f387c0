"""The training loops: free functions over any :class:`Algorithm`, jitted on their arguments.

Traced loops (``_scan_loop``, ``_fori_loop``, ``_seeds_loop``) take the algorithm, the logger
and the progress flag as static arguments, so a new logger or progress bar compiles a new
program and is never silently ignored. The host drivers (:func:`run`, :func:`run_seeds`,
:func:`run_python`) strip weak types from the entering state, open the progress bar, run
inside the logger's ``save_on_interrupt()`` and call its ``on_run_end(final_state)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._algorithm import Algorithm
from ._progress import ProgressBar
from ._protocols import BlockLogger, Logger, RunEndLogger, SavesOnInterrupt
from ._step_data import nest
from ._validate import strong_types

__all__ = ["Prepared", "init", "lower", "prepare", "run", "run_python", "run_seeds", "step"]

#: steps whose keys the fori loop derives at once (memory: a few bytes per step and key)
KEY_BLOCK = 256


class _Static:
    """A static jit argument compared by identity (a logger need not be hashable)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and other.value is self.value


# ----------------------------------------------------------------------------- metrics


def _pack_metrics(metrics: dict) -> tuple[dict, list]:
    """Scalar metrics stacked into one array per dtype (one write per step and dtype in a
    scan, instead of one per metric); other metrics pass through. Returns ``(packed, layout)``.
    """
    groups: dict[str, list] = {}
    layout: list[tuple[str, str | None, int | None]] = []
    for name, value in metrics.items():
        if not isinstance(value, jax.Array | np.ndarray | np.generic | int | float):
            # a pytree (per-step data, ``_step_data``): stacked as it is
            layout.append((name, None, None))
            continue
        value = jnp.asarray(value)
        if value.ndim == 0:
            group = groups.setdefault(str(value.dtype), [])
            layout.append((name, str(value.dtype), len(group)))
            group.append(value)
        else:
            layout.append((name, None, None))
    packed = {f"__{dtype}": jnp.stack(values) for dtype, values in groups.items()}
    packed.update({name: metrics[name] for name, dtype, _ in layout if dtype is None})
    return packed, layout


def _unpack_metrics(packed: dict, layout: list) -> dict:
    """Inverse of :func:`_pack_metrics` on stacked outputs (leading axis = steps)."""
    return {
        name: packed[name] if dtype is None else packed[f"__{dtype}"][..., i]
        for name, dtype, i in layout
    }


# ----------------------------------------------------------------------------- traced loops


def _keys_for_steps(alg: Algorithm, state: Any, n_steps: int) -> Any:
    """``alg.step_keys(fold_in(state.key, t))`` for the next ``n_steps`` steps, stacked."""
    assert alg.step_keys is not None
    step_keys = alg.step_keys
    steps = state.step + jnp.arange(n_steps, dtype=jnp.asarray(state.step).dtype)
    return jax.vmap(lambda t: step_keys(jax.random.fold_in(state.key, t)))(steps)


def _hooked(alg, logger, progress, token, carry, data, consts, keys):
    """One step and its logging; ``carry`` is ``(state, rows)``, ``rows`` the block of a
    :class:`BlockLogger` (``None`` for other loggers, which get ``log`` every step)."""
    state, rows = carry
    state, metrics = alg.step(state, data, consts, keys)
    if rows is not None:
        rows = logger.value.log_to_block(rows, state, metrics)
    elif logger.value is not None:
        logger.value.log(state, metrics)
    if progress:
        ProgressBar.report(token, state.step, metrics.get(alg.progress_metric))
    return (state, rows), metrics


def _open_rows(alg, logger, n_steps, state, data, consts, keyed: bool):
    """The block of a :class:`BlockLogger` for this loop (``None`` for other loggers); the
    shapes of a step's metrics come from ``jax.eval_shape`` (no operation is added)."""
    lg = logger.value
    if not isinstance(lg, BlockLogger) or n_steps < 1:
        return None

    def metrics(s, d, c):
        k = jax.tree.map(lambda x: x[0], _keys_for_steps(alg, s, 1)) if keyed else None
        return alg.step(s, d, c, k)[1]

    return lg.open_block(state, jax.eval_shape(metrics, state, data, consts))


def _close_rows(logger, rows) -> None:
    if rows is not None:
        logger.value.close_block(rows)


def _scan_loop(alg, logger, progress, n_steps, state, data, consts, token):
    layout: list = []  # how the step's metrics are packed (filled in while tracing the body)

    def body(carry, keys):
        carry, metrics = _hooked(alg, logger, progress, token, carry, data, consts, keys)
        packed, layout[:] = _pack_metrics(metrics)
        return carry, packed

    keys = None
    if alg.step_keys is not None and n_steps > 0:
        # every step's keys in one batched call before the loop (the same bits)
        keys = _keys_for_steps(alg, state, n_steps)
    rows = _open_rows(alg, logger, n_steps, state, data, consts, keys is not None)
    (state, rows), packed = lax.scan(body, (state, rows), keys, length=n_steps)
    _close_rows(logger, rows)
    return state, _unpack_metrics(packed, layout)


def _fori_loop(alg, logger, progress, n_steps, state, data, consts, token):
    if alg.step_keys is None or n_steps <= 1:
        rows = _open_rows(alg, logger, n_steps, state, data, consts, False)

        def body(_, c):
            return _hooked(alg, logger, progress, token, c, data, consts, None)[0]

        state, rows = lax.fori_loop(0, n_steps, body, (state, rows))
        _close_rows(logger, rows)
        return state
    # Steps in blocks of at most KEY_BLOCK: each block derives its steps' keys in one batched
    # call (as the scan does for all steps), and memory stays flat in n_steps.
    block = min(n_steps, KEY_BLOCK)
    n_blocks = -(-n_steps // block)
    rows = _open_rows(alg, logger, n_steps, state, data, consts, True)

    def run_block(b, carry):
        keys = _keys_for_steps(alg, carry[0], block)
        n = jnp.minimum(block, n_steps - b * block)  # the last block may be shorter

        def body(i, c):
            k = jax.tree.map(lambda x: x[i], keys)
            return _hooked(alg, logger, progress, token, c, data, consts, k)[0]

        return lax.fori_loop(0, n, body, carry)

    if n_blocks == 1:
        state, rows = run_block(0, (state, rows))
    else:
        state, rows = lax.fori_loop(0, n_blocks, run_block, (state, rows))
    _close_rows(logger, rows)
    return state


def _seeds_loop(alg, logger, progress, n_steps, use_scan, keys, data, consts, token):
    # Seeds are initialised one after another (lax.map), then trained together (vmap).
    # A vmapped initialiser batches its linear algebra (e.g. the QR factorisations of
    # orthogonal initialisers), and jaxlib's batched CPU LAPACK kernels wait on the same
    # thread pool they run on: on a 2-core host, two of them at once never finish.
    states = lax.map(lambda key: alg.init(key, data), keys)
    loop = _scan_loop if use_scan else _fori_loop
    return jax.vmap(lambda s: loop(alg, logger, progress, n_steps, s, None, consts, token))(states)


def _initialize(alg, key, data):
    return alg.init(key, data)


def _step(alg, state, data, consts):
    return alg.step(state, data, consts, None)


_JIT = {
    "scan": jax.jit(_scan_loop, static_argnums=(0, 1, 2, 3)),
    "fori": jax.jit(_fori_loop, static_argnums=(0, 1, 2, 3)),
    "seeds": jax.jit(_seeds_loop, static_argnums=(0, 1, 2, 3, 4)),
}
_init_jit = jax.jit(_initialize, static_argnums=0)
_step_jit = jax.jit(_step, static_argnums=0)


def init(alg: Algorithm, key: jax.Array, data: Any = None) -> Any:
    """``alg.init(key, data)``, compiled (one program per algorithm)."""
    return _init_jit(alg, key, data)


def step(alg: Algorithm, state: Any, data: Any = None, consts: Any = None) -> tuple[Any, dict]:
    """One compiled step ``alg.step(state, data, consts, None)``."""
    return _step_jit(alg, state, data, consts)


def lower(alg: Algorithm, state: Any, *, n_steps: int, data: Any = None, consts: Any = None):
    """The scan loop lowered for ``state`` (``.as_text()``, ``.compile()``), without a logger."""
    args = (alg, _Static(None), False, n_steps, strong_types(state), data, consts)
    return _JIT["scan"].lower(*args, ProgressBar.token_array(0))


# ----------------------------------------------------------------------------- host drivers


@contextlib.contextmanager
def _guarded(logger: Logger | None) -> Iterator[bool]:
    """Inside the logger's ``save_on_interrupt()`` (Ctrl-C saves a checkpoint), if it has one."""
    if isinstance(logger, SavesOnInterrupt):
        with logger.save_on_interrupt():
            yield True
    else:
        yield False


class Prepared(NamedTuple):
    """A compiled loop with its arguments, ready to run (``prepare(...)()``)."""

    fn: Callable
    args: tuple
    logger: Logger | None
    progress: bool
    total: int
    start: int
    metric: str
    n_static: int
    #: the loop returns ``(state, metrics)`` (scan), not the state alone (fori)
    with_metrics: bool

    def compile(self) -> Prepared:
        """The same run with its program compiled now (so running it times the loop only)."""
        lowered = self.fn.lower(*self.args, ProgressBar.token_array(0))  # type: ignore[attr-defined]
        # the compiled executable takes the dynamic arguments only
        return self._replace(fn=lowered.compile(), args=self.args[self.n_static :], n_static=0)

    def __call__(self) -> Any:
        """Run it: progress bar, the logger's interrupt guard, then ``on_run_end``."""
        logger = self.logger
        with (
            ProgressBar.maybe(self.progress, self.total, self.start, self.metric) as token,
            _guarded(logger) as guarded,
        ):
            out = self.fn(*self.args, ProgressBar.token_array(token))
            ends = isinstance(logger, RunEndLogger)
            if self.progress or guarded or ends:
                # wait inside the guard: a Ctrl-C during the run is handled by the logger
                jax.block_until_ready(out)
                jax.effects_barrier()
            if isinstance(logger, RunEndLogger):
                logger.on_run_end(out[0] if self.with_metrics else out)
        if self.with_metrics:  # per-step data: the scalars also under "metrics" (no copy)
            out = (out[0], nest(out[1]))
        return out


def prepare(
    alg: Algorithm,
    state: Any,
    *,
    n_steps: int,
    data: Any = None,
    consts: Any = None,
    scan: bool = True,
    seeds: bool = False,
    logger: Logger | None = None,
    progress_bar: bool = False,
) -> Prepared:
    """The run of :func:`run` (``seeds=False``; ``state`` is a state) or :func:`run_seeds`
    (``seeds=True``; ``state`` is a batch of keys), not started yet."""
    static: tuple = (alg, _Static(logger), bool(progress_bar), int(n_steps))
    if seeds:
        static = (*static, bool(scan))
        fn, args, start = _JIT["seeds"], (*static, state, data, consts), 0
    else:
        state = strong_types(state)  # one program for fresh, trained and restored states
        fn, args = _JIT["scan" if scan else "fori"], (*static, state, data, consts)
        start = int(np.max(np.asarray(state.step)))
    return Prepared(
        fn=fn,
        args=args,
        logger=logger,
        progress=bool(progress_bar),
        total=int(n_steps),
        start=start,
        metric=alg.progress_metric,
        n_static=len(static),
        with_metrics=bool(scan),
    )


def run(alg: Algorithm, state: Any, **options: Any) -> Any:
    """Run ``n_steps`` steps of ``alg`` from ``state`` in one compiled program; ``options``
    are those of :func:`prepare` (``n_steps`` required, ``data``, ``consts``, ``scan``,
    ``logger``, ``progress_bar``).

    Returns ``(state, metrics)`` with ``scan=True`` (``lax.scan``, metrics stacked over steps),
    else the final state (``lax.fori_loop``, memory flat in ``n_steps``).
    """
    return prepare(alg, state, seeds=False, **options)()


def run_seeds(alg: Algorithm, keys: jax.Array, **options: Any) -> Any:
    """Initialise one run per key and train them together (``vmap``) in one program; every
    result has a leading seed axis. ``options`` as in :func:`run`."""
    return prepare(alg, keys, seeds=True, **options)()


def run_python(
    step_fn: Callable[[Any, Any], tuple[Any, dict]],
    state: Any,
    *,
    n_steps: int,
    data: Any = None,
    logger: Logger | None = None,
    progress_bar: bool = False,
    metric: str = "loss",
) -> tuple[Any, dict]:
    """Run ``n_steps`` calls of ``step_fn(state, data) -> (state, metrics)`` from Python.

    Returns ``(final_state, metrics)`` with metrics stacked over steps as numpy arrays.
    """
    state = strong_types(state)
    history = []
    start = int(np.asarray(state.step))
    with ProgressBar.maybe(progress_bar, n_steps, start, metric) as token, _guarded(logger):
        for _ in range(n_steps):
            state, metrics = step_fn(state, data)
            if logger is not None:
                logger.log(state, metrics)
            if progress_bar:
                ProgressBar.host_update(token, np.asarray(state.step), metrics.get(metric))
            history.append(jax.device_get(metrics))
        if isinstance(logger, RunEndLogger):
            jax.effects_barrier()
            logger.on_run_end(state)
    return state, nest(_stack_history(history))


def _stack_history(history: list[dict]) -> dict:
    """Host metrics of every step stacked over steps (nested per-step data leaf by leaf)."""
    if not history:
        return {}
    return {k: jax.tree.map(lambda *xs: np.stack(xs), *[h[k] for h in history]) for k in history[0]}
