"""BaseTrainer: the compiled training loops shared by every realax trainer."""

from __future__ import annotations

import contextlib
import inspect
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._progress import ProgressBar

__all__ = ["BaseTrainer"]


# ----------------------------------------------------------------------------- helpers


def _is_typed_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def as_typed_key(key: Any, *, name: str = "key") -> jax.Array:
    """Return ``key`` as a typed PRNG key (accepts typed keys and raw uint32 keys)."""
    if isinstance(key, numbers.Integral) or key is None:
        raise TypeError(
            f"{name} must be a JAX PRNG key (got {key!r}); create one with "
            f"jax.random.key(seed)."
        )
    if _is_typed_key(key):
        return key
    arr = jnp.asarray(key)
    if arr.dtype == jnp.uint32 and arr.ndim >= 1 and arr.shape[-1] == 2:
        return jax.random.wrap_key_data(arr)
    raise TypeError(
        f"{name} must be a JAX PRNG key (got an array of dtype {arr.dtype} and shape "
        f"{arr.shape}); create one with jax.random.key(seed)."
    )


def key_batch_size(key: Any) -> int | None:
    """Number of keys if ``key`` is a batch of keys (``jax.random.split(key, n)``), else None."""
    key = as_typed_key(key)
    if key.ndim == 0:
        return None
    if key.ndim == 1:
        return int(key.shape[0])
    raise ValueError(
        f"key must be a single PRNG key or a 1-D batch of keys (got key shape {key.shape}); "
        "use jax.random.split(key, n_seeds)."
    )


def check_positive_int(value: Any, name: str, fix: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be a positive int (got {value!r} of type {type(value).__name__})"
            + (f"; {fix}" if fix else "")
        )
    if value <= 0:
        raise ValueError(
            f"{name} must be a positive int (got {name}={value})" + (f"; {fix}" if fix else "")
        )
    return int(value)


def check_logger(logger: Any) -> Any:
    if logger is not None and not callable(getattr(logger, "log", None)):
        raise TypeError(
            f"logger must be None or an object with a log(state, metrics) method "
            f"(got {type(logger).__name__} without a callable log); pass e.g. a realax.log.Logger."
        )
    return logger


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False (got {value!r})")
    return bool(value)


def check_n_devices(n_devices: Any) -> int:
    n = check_positive_int(n_devices, "n_devices")
    available = jax.device_count()
    if n > available:
        raise ValueError(
            f"n_devices={n} but only {available} JAX device(s) are available; use "
            f"n_devices<={available} (on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count"
            f"={n} before importing jax)."
        )
    if 1 < n < available and jax.process_count() > 1:
        raise ValueError(
            f"n_devices={n} in a run of {jax.process_count()} processes would leave some "
            f"processes without devices; use n_devices=jax.device_count() (={available}, every "
            "device of every process) or n_devices=1 (each process trains on its own)."
        )
    return n


def n_positional(fn: Callable) -> int | None:
    """Number of positional parameters ``fn`` accepts (None if it takes ``*args``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    count = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def call_with_data(fn: Callable, nargs: int | None, x: Any, key: Any, data: Any) -> Any:
    """Call ``fn(x, key, data)``, or ``fn(x, key)`` if fn takes two arguments and data is None."""
    if nargs is not None and nargs < 3 and data is None:
        return fn(x, key)
    return fn(x, key, data)


def shape_str(x: Any) -> str:
    try:
        return str(jax.tree.map(lambda a: f"{a.dtype}{list(a.shape)}", x))
    except Exception:  # pragma: no cover - only used to format messages
        return repr(x)


#: steps whose keys ``train_`` derives at once (memory: a few bytes per step and key)
_KEY_BLOCK = 256


def _pack_metrics(metrics: dict) -> tuple[dict, list]:
    """Scalar metrics stacked into one array per dtype (one write per step and dtype in a
    scan, instead of one per metric); other metrics pass through. Returns ``(packed, layout)``.
    """
    groups: dict[str, list] = {}
    layout = []
    for name, value in metrics.items():
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
    out = {}
    for name, dtype, i in layout:
        out[name] = packed[name] if dtype is None else packed[f"__{dtype}"][..., i]
    return out


# ----------------------------------------------------------------------------- trainer


class BaseTrainer:
    """Compiled training loops around a ``train_step``.

    Subclasses implement ``initialize(key, data=None) -> state`` and
    ``_step(state, data, consts) -> (state, metrics)`` (``consts`` are large constant arrays,
    e.g. a dataset, passed to the compiled program as arguments rather than baked into it).
    Every state has ``step`` and ``key`` fields; step ``t`` draws its randomness from
    ``jax.random.fold_in(state.key, t)``, so any state can be resumed bit-identically.

    The loops:

    * ``train(state)`` — ``lax.scan`` over ``train_steps`` steps; returns ``(state, metrics)``
      with every metric stacked over steps (never a copy of the state per step).
    * ``train_(state)`` — ``lax.fori_loop``; returns the final state only, memory flat in the
      number of steps (combine with a logger to record metrics).
    * ``train_python(state)`` — a loop driven from Python, for code that cannot be compiled.
    * ``init_and_train(key)`` / ``init_and_train_(key)`` / ``__call__(key)`` — initialise then
      train; given a batch of keys (``jax.random.split(key, n)``) they train one independent
      run per key in a single compiled program (``jax.vmap``) and return per-seed results.
    * ``resume(state)`` — the remaining ``train_steps - state.step`` steps.

    If the trainer has a ``logger``, ``logger.log(state, metrics)`` is called after every step
    from inside the compiled loop. ``progress_bar=True`` shows a live tqdm bar, fed from inside
    the compiled loop through ``jax.debug.callback``.
    """

    train_steps: int
    logger: Any
    progress_bar: bool
    #: metric shown on the progress bar
    _progress_metric: str = "loss"

    # -- to implement ---------------------------------------------------------------

    def initialize(self, key: jax.Array, data: Any = None) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _initialize(self, key: jax.Array, data: Any) -> Any:
        """Pure, jittable initialisation (the public ``initialize`` validates then calls it)."""
        raise NotImplementedError  # pragma: no cover

    def _step(self, state: Any, data: Any, consts: Any) -> tuple[Any, dict]:  # pragma: no cover
        raise NotImplementedError

    def _consts(self) -> Any:
        """Large constants (e.g. a dataset) passed as arguments of the compiled loops."""
        return None

    def _check_compiled(self, data: Any) -> None:
        """Hook: validate that the user's functions trace (raise friendly errors)."""

    #: Optional hook ``_step_keys(step_key) -> keys``: the keys a step derives from
    #: ``fold_in(state.key, state.step)``. A trainer that defines it takes them as
    #: ``_step(state, data, consts, keys=...)``; ``train`` (scan) then derives every step's keys
    #: before the loop in one batched call instead of one small hash per step (the same bits).
    _step_keys: Callable[[jax.Array], Any] | None = None

    def _keys_for_steps(self, state: Any, n_steps: int) -> Any:
        """``_step_keys(fold_in(state.key, t))`` for the next ``n_steps`` steps, stacked."""
        steps = state.step + jnp.arange(n_steps, dtype=jnp.asarray(state.step).dtype)
        return jax.vmap(lambda t: self._step_keys(jax.random.fold_in(state.key, t)))(steps)

    # -- one step -------------------------------------------------------------------

    def train_step(self, state: Any, data: Any = None) -> tuple[Any, dict]:
        """Run one training step: ``(state, data) -> (state, metrics)``.

        ``data`` overrides ``state.data`` for this step when given. The step's randomness is
        ``jax.random.fold_in(state.key, state.step)``.
        """
        return self._step(state, data, self._consts())

    def _hooked_step(self, state: Any, data: Any, consts: Any, progress: bool, keys: Any = None):
        if keys is None:
            state, metrics = self._step(state, data, consts)
        else:
            state, metrics = self._step(state, data, consts, keys=keys)
        if self.logger is not None:
            self.logger.log(state, metrics)
        if progress:
            ProgressBar.report(id(self), state.step, metrics.get(self._progress_metric))
        return state, metrics

    # -- compiled loops ------------------------------------------------------------------

    def _scan_loop(self, state, data, consts, n_steps, progress):
        layout = []  # how the step's metrics are packed (filled in while tracing the body)

        def body(s, keys):
            s, metrics = self._hooked_step(s, data, consts, progress, keys)
            packed, layout[:] = _pack_metrics(metrics)
            return s, packed

        if self._step_keys is not None and n_steps > 0:
            # every step's keys in one batched call before the loop (the same bits)
            state, packed = lax.scan(body, state, self._keys_for_steps(state, n_steps))
        else:
            state, packed = lax.scan(body, state, None, length=n_steps)
        return state, _unpack_metrics(packed, layout)

    def _fori_loop(self, state, data, consts, n_steps, progress):
        if self._step_keys is not None and n_steps > 1:
            return self._fori_blocks(state, data, consts, n_steps, progress)

        def body(_, s):
            return self._hooked_step(s, data, consts, progress)[0]

        return lax.fori_loop(0, n_steps, body, state)

    def _fori_blocks(self, state, data, consts, n_steps, progress):
        # Steps in blocks of at most _KEY_BLOCK: each block derives its steps' keys in one
        # batched call (as train does for all steps), and memory stays flat in n_steps.
        block = min(n_steps, _KEY_BLOCK)
        n_blocks = -(-n_steps // block)

        def run_block(b, s):
            keys = self._keys_for_steps(s, block)
            n = jnp.minimum(block, n_steps - b * block)  # the last block may be shorter

            def body(i, s):
                k = jax.tree.map(lambda x: x[i], keys)
                return self._hooked_step(s, data, consts, progress, k)[0]

            return lax.fori_loop(0, n, body, s)

        if n_blocks == 1:
            return run_block(0, state)
        return lax.fori_loop(0, n_blocks, run_block, state)

    def _seeds_loop(self, keys, data, consts, n_steps, progress, scan):
        # Seeds are initialised one after another (lax.map), then trained together (vmap).
        # A vmapped initialiser batches its linear algebra (e.g. the QR factorisations of
        # orthogonal initialisers), and jaxlib's batched CPU LAPACK kernels wait on the same
        # thread pool they run on: on a 2-core host, two of them at once never finish.
        states = lax.map(lambda key: self._initialize(key, data), keys)

        def one(state):
            if scan:
                return self._scan_loop(state, None, consts, n_steps, progress)
            return self._fori_loop(state, None, consts, n_steps, progress)

        return jax.vmap(one)(states)

    @property
    def _jitted(self) -> dict:
        cache = self.__dict__.get("_jit_cache")
        if cache is None:
            static = ("n_steps", "progress")
            cache = {
                "scan": jax.jit(self._scan_loop, static_argnames=static),
                "fori": jax.jit(self._fori_loop, static_argnames=static),
                "seeds": jax.jit(self._seeds_loop, static_argnames=(*static, "scan")),
                "init": jax.jit(self._initialize),
                "step": jax.jit(self._step),
            }
            self.__dict__["_jit_cache"] = cache
        return cache

    def _interrupt_guard(self) -> contextlib.AbstractContextManager:
        """The logger's ``save_on_interrupt()`` context (Ctrl-C saves a checkpoint), if any."""
        guard = getattr(self.logger, "save_on_interrupt", None)
        return guard() if callable(guard) else contextlib.nullcontext()

    def _call_compiled(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a compiled loop under the progress bar and the logger's interrupt guard."""
        guarded = callable(getattr(self.logger, "save_on_interrupt", None))
        with self._interrupt_guard():
            out = fn(*args, **kwargs)
            if self.progress_bar or guarded:
                # wait inside the guard: a Ctrl-C during the run is handled by the logger
                jax.block_until_ready(out)
                jax.effects_barrier()
        return out

    def _run(self, kind: str, state: Any, data: Any, n_steps: int) -> Any:
        self._check_compiled(state.data if data is None else data)
        fn = self._jitted[kind]
        with ProgressBar.maybe(
            self.progress_bar, id(self), n_steps, int(state.step), self._progress_metric
        ):
            return self._call_compiled(
                fn, state, data, self._consts(), n_steps=n_steps, progress=self.progress_bar
            )

    @staticmethod
    def _rekey(state: Any, key: Any) -> Any:
        if key is None:
            return state
        return state.replace(key=as_typed_key(key))

    # -- public API ----------------------------------------------------------------------

    def train(self, state: Any, key: Any = None, data: Any = None) -> tuple[Any, dict]:
        """Run ``train_steps`` steps from ``state`` with ``lax.scan``.

        Args:
            state: a trainer state (from ``initialize`` or a previous run).
            key: optional; if given, it replaces ``state.key`` (re-seeds the rest of the run).
            data: optional task data overriding ``state.data``.

        Returns:
            ``(final_state, metrics)``, each metric stacked over the steps.
        """
        state = self._rekey(state, key)
        return self._run("scan", state, data, self.train_steps)

    def train_(self, state: Any, key: Any = None, data: Any = None) -> Any:
        """Like :meth:`train` with ``lax.fori_loop``: returns the final state only, memory flat."""
        state = self._rekey(state, key)
        return self._run("fori", state, data, self.train_steps)

    def resume(self, state: Any, data: Any = None) -> tuple[Any, dict]:
        """Run the remaining ``train_steps - state.step`` steps (scan).

        A run restored at step ``k`` and resumed is bit-identical to an uninterrupted run.
        """
        remaining = self._remaining(state)
        return self._run("scan", state, data, remaining)

    def resume_(self, state: Any, data: Any = None) -> Any:
        """Like :meth:`resume` with ``lax.fori_loop`` (final state only)."""
        return self._run("fori", state, data, self._remaining(state))

    def _remaining(self, state: Any) -> int:
        step = np.asarray(state.step)
        if step.ndim != 0:
            raise ValueError(
                f"resume expects a single run's state (got state.step with shape {step.shape}); "
                "resume each seed separately, e.g. jax.tree.map(lambda x: x[i], state)."
            )
        return max(self.train_steps - int(step), 0)

    def init_and_train(self, key: Any, data: Any = None) -> tuple[Any, dict]:
        """Initialise from ``key`` and train with ``lax.scan``.

        Given a batch of keys (``jax.random.split(key, n)``), trains ``n`` independent runs in
        one compiled program and returns states and metrics with a leading seed axis.
        """
        if key_batch_size(key) is not None:
            return self.init_and_train_seeds(key, data)
        self._check_compiled(data)  # the user's functions, before anything is compiled
        state = self.initialize(key, data)
        return self.train(state)

    def init_and_train_(self, key: Any, data: Any = None) -> Any:
        """Initialise from ``key`` and train with ``lax.fori_loop`` (final state only)."""
        if key_batch_size(key) is not None:
            return self.init_and_train_seeds(key, data, use_scan=False)
        self._check_compiled(data)
        state = self.initialize(key, data)
        return self.train_(state)

    def init_and_train_seeds(self, keys: Any, data: Any = None, use_scan: bool = True) -> Any:
        """Train one independent run per key in a single compiled program (``jax.vmap``).

        Args:
            keys: a batch of keys, e.g. ``jax.random.split(key, 10)``.
            data: optional data shared by every run.
            use_scan: True returns ``(states, metrics)``; False uses ``fori_loop`` and returns
                the states only. Every leaf has a leading axis of size ``len(keys)``.
        """
        n = key_batch_size(keys)
        if n is None:
            raise ValueError(
                "init_and_train_seeds expects a batch of keys (got a single key); "
                "use jax.random.split(key, n_seeds)."
            )
        keys = as_typed_key(keys)
        self._check_compiled(data)
        fn = self._jitted["seeds"]
        with ProgressBar.maybe(
            self.progress_bar, id(self), self.train_steps, 0, self._progress_metric
        ):
            return self._call_compiled(
                fn, keys, data, self._consts(), n_steps=self.train_steps,
                progress=self.progress_bar, scan=bool(use_scan),
            )

    def __call__(self, key: Any, data: Any = None) -> tuple[Any, dict]:
        """Same as :meth:`init_and_train`."""
        return self.init_and_train(key, data)

    # -- Python-driven loop -------------------------------------------------------------

    def train_python(self, state: Any, data: Any = None, n_steps: int | None = None):
        """Run ``n_steps`` (default ``train_steps``) steps driven from Python.

        Each step is compiled on its own; subclasses (EvosaxTrainer) run the user's
        evaluation as plain Python between compiled halves, for tasks that cannot be jitted.

        Returns:
            ``(final_state, metrics)`` with metrics stacked over steps as numpy arrays.
        """
        n = self.train_steps if n_steps is None else check_positive_int(n_steps, "n_steps")
        history = []
        with ProgressBar.maybe(
            self.progress_bar, id(self), n, int(state.step), self._progress_metric
        ), self._interrupt_guard():
            for _ in range(n):
                state, metrics = self._python_step(state, data)
                if self.logger is not None:
                    self.logger.log(state, metrics)
                if self.progress_bar:
                    ProgressBar.host_update(
                        id(self), np.asarray(state.step), metrics.get(self._progress_metric)
                    )
                history.append(jax.device_get(metrics))
        stacked = {k: np.stack([h[k] for h in history]) for k in history[0]} if history else {}
        return state, stacked

    def _python_step(self, state: Any, data: Any) -> tuple[Any, dict]:
        return self._jitted["step"](state, data, self._consts())

    def init_and_train_python(self, key: Any, data: Any = None):
        """Initialise and run :meth:`train_python`."""
        return self.train_python(self.initialize(key, data), data)
