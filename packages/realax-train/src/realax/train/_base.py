"""BaseTrainer: the public run methods every trainer shares, over ``self.algorithm``.

A trainer is a front end: its constructor validates the arguments and builds an
:class:`~realax.train.Algorithm`; these methods hand it to the loops of ``_loops``. The logger
and the progress bar are arguments of every run, defaulting to the trainer's own
``logger`` / ``progress_bar`` attributes read at each call: assigning ``trainer.logger = ...``
or passing ``logger=...`` takes effect on the next run (the loops are jitted on them).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np

from . import _loops
from ._algorithm import Algorithm
from ._protocols import Logger
from ._validate import (
    as_typed_key,
    check_bool,
    check_logger,
    check_positive_int,
    is_typed_key,
    key_batch_size,
)

__all__ = ["BaseTrainer"]


class BaseTrainer:
    """Compiled training loops over the trainer's :class:`Algorithm`.

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

    Every run takes ``logger=`` and ``progress_bar=`` (default: the trainer's attributes).
    ``logger.log(state, metrics)`` is called after every step from inside the compiled loop,
    the run happens inside ``logger.save_on_interrupt()`` and ``logger.on_run_end(state)`` is
    called after it, when the logger has them. ``progress_bar=True`` shows a live tqdm bar.
    States entering a loop are stripped of weak types, so states from ``initialize``, from a
    run and from a checkpoint run the same compiled program.
    """

    algorithm: Algorithm
    train_steps: int
    logger: Logger | None = None
    progress_bar: bool = False
    #: large constants (a dataset) passed to the compiled loops as arguments
    consts: Any = None

    def _check_ready(self, data: Any) -> None:
        """Validate the user's functions before anything is compiled (trainers override)."""

    def _options(self, logger: Any, progress_bar: Any) -> dict[str, Any]:
        logger = check_logger(self.logger if logger is None else logger)
        progress = check_bool(
            self.progress_bar if progress_bar is None else progress_bar, "progress_bar"
        )
        return {"logger": logger, "progress_bar": progress, "consts": self.consts}

    def _run_loop(self, state: Any, data: Any, n_steps: int, scan: bool, logger, progress_bar):
        self._check_ready(state.data if data is None else data)
        opts = self._options(logger, progress_bar)
        return _loops.run(self.algorithm, state, n_steps=n_steps, data=data, scan=scan, **opts)

    def _train(self, state, key, data, n_steps, scan: bool, logger, progress_bar) -> Any:
        """:meth:`train` (``scan``) or :meth:`train_`."""
        state = self._rekey(state, key)
        return self._run_loop(state, data, self._n_steps(n_steps), scan, logger, progress_bar)

    def _init_and_train(self, key: Any, data: Any, scan: bool, logger, progress_bar) -> Any:
        """:meth:`init_and_train` (``scan``) or :meth:`init_and_train_`."""
        if key_batch_size(key) is not None:
            return self.init_and_train_seeds(
                key, data, use_scan=scan, logger=logger, progress_bar=progress_bar
            )
        self._check_ready(data)  # the user's functions, before anything is compiled
        run = self.train if scan else self.train_
        return run(self.initialize(key, data), logger=logger, progress_bar=progress_bar)

    # -- state and one step ----------------------------------------------------------------

    def initialize(self, key: jax.Array, data: Any = None) -> Any:
        """The initial state from ``key`` (compiled)."""
        return _loops.init(self.algorithm, as_typed_key(key), data)

    def train_step(self, state: Any, data: Any = None, *old: Any) -> tuple[Any, dict]:
        """Run one training step: ``(state, data) -> (state, metrics)``.

        ``data`` overrides ``state.data`` for this step when given. The step's randomness is
        ``jax.random.fold_in(state.key, state.step)``. The original's ``train_step(state,
        key, data)`` still works: a typed PRNG key in the data position replaces
        ``state.key`` (as ``train(state, key)`` does) and the next argument is the data.
        """
        if old or is_typed_key(data):
            if not is_typed_key(data) or len(old) > 1:
                raise TypeError(
                    "train_step takes (state, data=None), or the original's (state, key, data) "
                    f"with a typed key (got {1 + len(old)} arguments after state); e.g. "
                    "trainer.train_step(state, data)."
                )
            state, data = state.replace(key=data), (old[0] if old else None)
        return self.algorithm.step(state, data, self.consts, None)

    # -- compiled loops ----------------------------------------------------------------------

    # The run signatures are kept compact (positional arguments, then the keyword-only run
    # options); ruff would put one argument a line and repeat these blocks method after method.
    # fmt: off
    def train(self, state: Any, key: Any = None, data: Any = None, *, n_steps: int | None = None,
              logger: Logger | None = None, progress_bar: bool | None = None) -> tuple[Any, dict]:
        """Run ``train_steps`` steps (or ``n_steps``) from ``state`` with ``lax.scan``.

        Args:
            state: a trainer state (from ``initialize``, a previous run or a checkpoint).
            key: optional; if given, it replaces ``state.key`` (re-seeds the rest of the run).
            data: optional task data overriding ``state.data``.
            n_steps: steps of this call (default ``train_steps``; the trainer's schedule, e.g.
                RL evaluation on the last step, still counts ``train_steps``).
            logger: this run's logger (default ``self.logger``).
            progress_bar: this run's progress bar (default ``self.progress_bar``).

        Returns:
            ``(final_state, metrics)``, each metric stacked over the steps.
        """
        return self._train(state, key, data, n_steps, True, logger, progress_bar)

    def train_(self, state: Any, key: Any = None, data: Any = None, *, n_steps: int | None = None,
               logger: Logger | None = None, progress_bar: bool | None = None) -> Any:
        """Like :meth:`train` with ``lax.fori_loop``: returns the final state only, memory flat."""
        return self._train(state, key, data, n_steps, False, logger, progress_bar)

    def resume(self, state: Any, data: Any = None, *, logger: Logger | None = None,
               progress_bar: bool | None = None) -> tuple[Any, dict]:
        """Run the remaining ``train_steps - state.step`` steps (scan) in one compiled call.

        A run restored at step ``k`` and resumed is bit-identical to an uninterrupted run.
        """
        return self._run_loop(state, data, self._remaining(state), True, logger, progress_bar)

    def resume_(self, state: Any, data: Any = None, *, logger: Logger | None = None,
                progress_bar: bool | None = None) -> Any:
        """Like :meth:`resume` with ``lax.fori_loop`` (final state only)."""
        return self._run_loop(state, data, self._remaining(state), False, logger, progress_bar)

    def init_and_train(self, key: Any, data: Any = None, *, logger: Logger | None = None,
                       progress_bar: bool | None = None) -> tuple[Any, dict]:
        """Initialise from ``key`` and train with ``lax.scan``.

        Given a batch of keys (``jax.random.split(key, n)``), trains ``n`` independent runs in
        one compiled program and returns states and metrics with a leading seed axis.
        """
        return self._init_and_train(key, data, True, logger, progress_bar)

    def init_and_train_(self, key: Any, data: Any = None, *, logger: Logger | None = None,
                        progress_bar: bool | None = None) -> Any:
        """Initialise from ``key`` and train with ``lax.fori_loop`` (final state only)."""
        return self._init_and_train(key, data, False, logger, progress_bar)

    def init_and_train_seeds(self, keys: Any, data: Any = None, use_scan: bool = True, *,
                             logger: Logger | None = None, progress_bar: bool | None = None) -> Any:
        """Train one independent run per key in a single compiled program (``jax.vmap``).

        Args:
            keys: a batch of keys, e.g. ``jax.random.split(key, 10)``.
            data: optional data shared by every run.
            use_scan: True returns ``(states, metrics)``; False uses ``fori_loop`` and returns
                the states only. Every leaf has a leading axis of size ``len(keys)``.
            logger, progress_bar: as in :meth:`train`.
        """
        if key_batch_size(keys) is None:
            raise ValueError(
                "init_and_train_seeds expects a batch of keys (got a single key); "
                "use jax.random.split(key, n_seeds)."
            )
        self._check_ready(data)
        opts = self._options(logger, progress_bar)
        return _loops.run_seeds(self.algorithm, as_typed_key(keys), n_steps=self.train_steps,
                                data=data, scan=bool(use_scan), **opts)

    def __call__(self, key: Any, data: Any = None) -> tuple[Any, dict]:
        """Same as :meth:`init_and_train`."""
        return self.init_and_train(key, data)

    # -- Python-driven loop -------------------------------------------------------------

    def train_python(self, state: Any, data: Any = None, n_steps: int | None = None, *,
                     logger: Logger | None = None,
                     progress_bar: bool | None = None) -> tuple[Any, dict]:
        """Run ``n_steps`` (default ``train_steps``) steps driven from Python.

        Each step is compiled on its own; EvosaxTrainer runs the user's evaluation as plain
        Python between compiled halves, for tasks that cannot be jitted.

        Returns:
            ``(final_state, metrics)`` with metrics stacked over steps as numpy arrays.
        """
        opts = self._options(logger, progress_bar)
        del opts["consts"]
        return _loops.run_python(
            self._python_step,
            state,
            n_steps=self._n_steps(n_steps),
            data=data,
            metric=self.algorithm.progress_metric,
            **opts,
        )

    def _python_step(self, state: Any, data: Any) -> tuple[Any, dict]:
        return _loops.step(self.algorithm, state, data, self.consts)

    def initialize_python(self, key: jax.Array, data: Any = None) -> Any:
        """The initial state of :meth:`init_and_train_python` (EvosaxTrainer evaluates a first
        population in plain Python; elsewhere the same as :meth:`initialize`)."""
        return self.initialize(key, data)

    def init_and_train_python(self, key: Any, data: Any = None, *, logger: Logger | None = None,
                              progress_bar: bool | None = None) -> tuple[Any, dict]:
        """Initialise (:meth:`initialize_python`) and run :meth:`train_python`, e.g. for an ES
        task that cannot be jitted (numpy, simulators): jitted ask and tell around a plain
        Python evaluation of each member.

        Returns:
            ``(state, metrics)``, metrics stacked over steps as numpy arrays.
        """
        return self.train_python(self.initialize_python(key, data), data, logger=logger,
                                 progress_bar=progress_bar)
    # -- the original's Python-loop names (deprecated) ----------------------------------

    def train__(self, state: Any, key: Any = None, data: Any = None, **_: Any) -> Any:
        """Deprecated alias of :meth:`train_python` (the original's Python-driven loop);
        returns the final state, as the original did (its ``jit_*`` / ``vmap_eval`` flags
        are ignored: ask and tell are always compiled)."""
        _deprecated("train__(state, key, data)", "train_python(state, data)")
        return self.train_python(self._rekey(state, key), data)[0]

    def init_and_train__(self, key: Any, data: Any = None) -> Any:
        """Deprecated alias of :meth:`init_and_train_python`; returns the final state."""
        _deprecated("init_and_train__(key, data)", "init_and_train_python(key, data)")
        return self.init_and_train_python(key, data)[0]
    # fmt: on

    # -- helpers -------------------------------------------------------------------------

    def _run(self, kind: str, state: Any, data: Any, n_steps: int) -> Any:
        """Deprecated (the CLI of 0.x called it): use ``train(state, n_steps=...)`` /
        ``train_``."""
        scan = kind == "scan"
        return self._run_loop(state, data, n_steps, scan, None, None)

    @staticmethod
    def _rekey(state: Any, key: Any) -> Any:
        return state if key is None else state.replace(key=as_typed_key(key))

    def _n_steps(self, n_steps: int | None) -> int:
        return self.train_steps if n_steps is None else check_positive_int(n_steps, "n_steps")

    def _remaining(self, state: Any) -> int:
        step = np.asarray(state.step)
        if step.ndim != 0:
            raise ValueError(
                f"resume expects a single run's state (got state.step with shape {step.shape}); "
                "resume each seed separately, e.g. jax.tree.map(lambda x: x[i], state)."
            )
        return max(self.train_steps - int(step), 0)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is the original realax's name; use {new} (it returns (state, metrics)).",
        DeprecationWarning,
        stacklevel=3,
    )


def train_from_key(trainer: BaseTrainer, key: Any, use_scan: bool, result: str) -> tuple:
    """``(state.<result>, state, metrics)`` of ``trainer.init_and_train(key)``, or with
    ``use_scan=False`` ``(state.<result>, state)`` of ``init_and_train_`` (evolve, optimize)."""
    if use_scan:
        state, metrics = trainer.init_and_train(key)
        return getattr(state, result), state, metrics
    state = trainer.init_and_train_(key)
    return getattr(state, result), state
