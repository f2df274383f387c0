"""Argument checks shared by every trainer: each raises before anything is compiled, naming the
argument, what was expected and got, and the fix."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._protocols import Logger

__all__ = [
    "as_typed_key",
    "call_with_data",
    "check_bool",
    "check_divisible",
    "check_init_mean",
    "check_logger",
    "check_n_devices",
    "check_nonneg_int",
    "check_pair_output",
    "check_params_like",
    "check_positive_int",
    "is_typed_key",
    "key_batch_size",
    "n_positional",
    "shape_str",
    "strong_types",
    "traces",
]


def is_typed_key(x: Any) -> bool:
    """Whether ``x`` is a typed PRNG key (or a batch of them)."""
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def as_typed_key(key: Any, *, name: str = "key") -> jax.Array:
    """``key`` as a typed PRNG key (accepts typed keys and raw uint32 keys)."""
    if isinstance(key, numbers.Integral) or key is None:
        raise TypeError(
            f"{name} must be a JAX PRNG key (got {key!r}); create one with jax.random.key(seed)."
        )
    if is_typed_key(key):
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
    """``value`` as an int > 0, else a TypeError / ValueError naming ``name``."""
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


def check_nonneg_int(value: Any, name: str) -> int:
    """``value`` as an int >= 0, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an int >= 0 (got {name}={value!r})")
    return int(value)


def check_divisible(value: int, name: str, n_devices: int, fix: str = "use") -> None:
    """Raise unless ``value`` splits evenly over ``n_devices`` (suggests the next multiple)."""
    if value % n_devices:
        ok = -(-value // n_devices) * n_devices
        got = f"got {name}={value}, n_devices={n_devices}"
        raise ValueError(f"{name} must be divisible by n_devices ({got}); {fix} {name}={ok}")


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False (got {value!r})")
    return bool(value)


def check_logger(logger: Any) -> Logger | None:
    """``logger`` if it is None or has a callable ``log(state, metrics)``."""
    if logger is not None and not (isinstance(logger, Logger) and callable(logger.log)):
        raise TypeError(
            f"logger must be None or an object with a log(state, metrics) method "
            f"(got {type(logger).__name__} without a callable log); pass e.g. a realax.log.Logger."
        )
    return logger


def check_n_devices(n_devices: Any) -> int:
    """``n_devices`` as an int in ``[1, jax.device_count()]``; an integral float (the
    original's ``n_devices=1.``) is accepted, any other float raises."""
    if isinstance(n_devices, float | np.floating) and not isinstance(n_devices, bool):
        if not float(n_devices).is_integer():
            raise TypeError(
                f"n_devices must be a whole number of devices (got n_devices={n_devices!r}); "
                f"pass an int, e.g. n_devices={max(int(n_devices), 1)}."
            )
        n_devices = int(n_devices)
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


def check_pair_output(
    out: Any, fn: str, pair: str, example: str, fix: str, shapes: tuple = ((),)
) -> None:
    """Raise unless ``out`` is a 2-tuple whose first item is a scalar (a task's or a loss's).

    ``fn`` names the user's function, ``pair`` the expected tuple (``"(fitness, info)"``),
    ``example`` a correct return, ``fix`` how to reduce a non-scalar, ``shapes`` the accepted
    shapes of the first item.
    """
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = type(out).__name__ if not hasattr(out, "shape") else f"an array {out.shape}"
        raise TypeError(f"{fn} must return a tuple {pair} (got {got}); return e.g. {example}.")
    first = pair.strip("()").split(",")[0]
    shape = tuple(getattr(out[0], "shape", np.shape(out[0])))
    if shape not in shapes:
        raise ValueError(
            f"{fn} must return a scalar {first} (got {first} with shape {shape}); reduce it, {fix}."
        )


def traces(
    fn: Callable,
    *args: Any,
    failed: str,
    hint: str,
    check_output: Callable[[Any], None],
    quiet: bool = False,
) -> bool:
    """Trace ``fn(*args)`` abstractly (``jax.eval_shape``: nothing runs or compiles) and check
    its output; a failure raises ``ValueError(f"{failed}: <error>. {hint}")``, or returns
    False with ``quiet`` (e.g. at construction, when data may come later)."""
    try:
        out = jax.eval_shape(fn, *args)
    except Exception as e:  # the user's function failed to trace
        if quiet:
            return False
        raise ValueError(f"{failed}: {type(e).__name__}: {e}. {hint}") from e
    check_output(out)
    return True


def check_params_like(params_like: Any, name: str = "params_like") -> Any:
    leaves = jax.tree.leaves(params_like)
    if not leaves:
        raise ValueError(
            f"{name} must be a pytree of arrays with at least one leaf (got {params_like!r}); "
            "pass e.g. jnp.zeros((dims,))."
        )
    out = []
    for leaf in leaves:
        try:
            arr = jnp.asarray(leaf)
        except TypeError as e:
            raise TypeError(
                f"{name} leaves must be arrays (got a leaf of type {type(leaf).__name__}); "
                "pass a pytree of jnp arrays, e.g. the output of model.init(...)."
            ) from e
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            raise TypeError(
                f"{name} leaves must be floating arrays (got dtype {arr.dtype}); cast them, "
                "e.g. jnp.asarray(x, jnp.float32)."
            )
        out.append(arr)
    return jax.tree.unflatten(jax.tree.structure(params_like), out)


def check_init_mean(init_mean: Any, params_like: Any) -> Any:
    if init_mean is None:
        return params_like
    init_mean = check_params_like(init_mean, "init_mean")
    want = jax.tree.map(lambda x: x.shape, params_like)
    got = jax.tree.map(lambda x: x.shape, init_mean)
    want_tree: Any = jax.tree.structure(params_like)  # (PyTreeDef has no typed __eq__)
    same_tree = want_tree == jax.tree.structure(init_mean)
    if not same_tree or want != got:
        raise ValueError(
            f"init_mean must have the structure and shapes of params_like (expected "
            f"{shape_str(params_like)}, got {shape_str(init_mean)})."
        )
    return jax.tree.map(lambda x, y: jnp.asarray(x, y.dtype), init_mean, params_like)


def shape_str(x: Any) -> str:
    try:
        return str(jax.tree.map(lambda a: f"{a.dtype}{list(a.shape)}", x))
    except Exception:  # pragma: no cover - only used to format messages
        return repr(x)


def strong_types(tree: Any) -> Any:
    """``tree`` with weakly typed leaves (from Python scalars) made strong.

    States from ``initialize``, from a compiled run and from a checkpoint then have the same
    types, so they run the same compiled program (a weak-typed leaf would compile another).
    """

    def strong(x: Any) -> Any:
        if isinstance(x, bool | int | float | complex):  # a Python scalar traces weakly typed
            return jnp.asarray(x, jnp.asarray(x).dtype)
        if getattr(x, "weak_type", False) and not is_typed_key(x):
            return jnp.asarray(x, x.dtype)
        return x

    return jax.tree.map(strong, tree)


def example_data(init_data: Callable | None, data: Any) -> Any:
    """``data``, or when it is None the shapes of the task's ``init_data(key)`` (traced, not
    run): what a task check traces the task with. A failing ``init_data`` is named."""
    if data is not None or init_data is None:
        return data
    try:
        return jax.eval_shape(init_data, jax.random.key(0))
    except Exception as e:
        raise ValueError(f"task.init_data(key) failed to trace: {type(e).__name__}: {e}") from e
