"""Shared plumbing of the agents: config validation, creation, optimisers, batch checks, shapes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ._encoders import check_encoder
from ._networks import ACTIVATIONS, with_encoder
from ._train_state import TrainState

C = TypeVar("C")


def build_config(config_cls: type[C], owner: str, config: dict[str, Any]) -> C:
    """Make a frozen config from keyword arguments, rejecting unknown keys by name.

    ``config`` may also hold ``config=<config_cls instance>``, whose values the other keys
    override.
    """
    base = config.pop("config", None)
    valid = [f.name for f in dataclasses.fields(config_cls)]  # type: ignore[arg-type]
    unknown = sorted(k for k in config if k not in valid)
    if unknown:
        raise TypeError(
            f"{owner}.create got unknown config key(s) {', '.join(repr(k) for k in unknown)}; "
            f"valid keys are: {', '.join(valid)}"
        )
    if base is not None:
        if not isinstance(base, config_cls):
            raise TypeError(
                f"{owner}.create: config must be a {config_cls.__name__} "
                f"(got {type(base).__name__})"
            )
        return dataclasses.replace(cast(Any, base), **config)
    try:
        return config_cls(**config)
    except TypeError as err:  # missing required keys
        raise TypeError(f"{owner}.create: {err}; valid keys are: {', '.join(valid)}") from None


def check_positive(owner: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be a finite number {bound} (got {name}={value!r})")


def check_int(owner: str, name: str, value: Any, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum} (got {name}={value!r})")


def check_unit_interval(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1] (got {name}={value!r})")


def check_hidden_dims(owner: str, hidden_dims: Any) -> tuple[int, ...]:
    if isinstance(hidden_dims, int) or not isinstance(hidden_dims, Sequence):
        raise ValueError(
            f"{owner}: hidden_dims must be a sequence of positive ints, e.g. (64, 64) "
            f"(got hidden_dims={hidden_dims!r})"
        )
    dims = tuple(hidden_dims)
    if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(
            f"{owner}: hidden_dims must contain positive ints (got hidden_dims={hidden_dims!r})"
        )
    return dims


def check_activation(owner: str, activation: Any) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{owner}: activation must be one of {sorted(ACTIVATIONS)} (got {activation!r})"
        )


def check_pmap_axis(owner: str, pmap_axis: Any) -> None:
    if pmap_axis is not None and not isinstance(pmap_axis, str | tuple):
        raise ValueError(
            f"{owner}: pmap_axis must be None, an axis name or a tuple of names (got {pmap_axis!r})"
        )


def check_network_config(owner: str, cfg: Any) -> None:
    """Validate the fields most agent configs share (those ``cfg`` has) and normalise
    ``hidden_dims`` to a tuple: ``learning_rate``, ``hidden_dims``, ``activation``,
    ``max_grad_norm`` (None or > 0), ``pmap_axis``, ``anneal_lr_steps`` (None or an int) and
    ``encoder`` (None, ``"nature"``, ``"impala"`` or a flax module)."""
    if hasattr(cfg, "learning_rate"):
        check_positive(owner, "learning_rate", cfg.learning_rate)
    object.__setattr__(cfg, "hidden_dims", check_hidden_dims(owner, cfg.hidden_dims))
    check_activation(owner, cfg.activation)
    if getattr(cfg, "max_grad_norm", None) is not None:
        check_positive(owner, "max_grad_norm", cfg.max_grad_norm)
    check_pmap_axis(owner, cfg.pmap_axis)
    if getattr(cfg, "anneal_lr_steps", None) is not None:
        check_int(owner, "anneal_lr_steps", cfg.anneal_lr_steps)
    check_encoder(owner, getattr(cfg, "encoder", None))


def axis_of(pmap_axis: Any, cfg: Any) -> Any:
    """The device axis of an update: the call's ``pmap_axis``, else ``cfg.pmap_axis``."""
    return pmap_axis if pmap_axis is not None else cfg.pmap_axis


def init_state(
    model_def: nn.Module, key: jax.Array, *inputs: Any, tx: optax.GradientTransformation | None
) -> TrainState:
    """A `TrainState` of ``model_def`` with parameters initialised from ``key`` on ``inputs``."""
    params = model_def.init(key, *inputs)["params"]
    return TrainState.create(model_def, params, tx=tx)


def global_norm(tree: Any) -> jax.Array:
    """L2 norm of all leaves of ``tree`` together, as one reduction.

    Same value as ``optax.tree.norm`` up to float rounding (the squares are summed in another
    order). ``optax.tree.norm`` reduces every leaf on its own; XLA on CPU runs each of those
    reductions as one or two separate kernels, which for a small actor-critic (12 leaves) was
    a quarter of the kernels of a PPO minibatch step. Raveling the leaves into one vector
    makes it a single fused reduction.
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    if len({jnp.result_type(x) for x in leaves}) != 1:
        return optax.tree.norm(tree)
    flat = jnp.concatenate([jnp.ravel(x) for x in leaves])
    return jnp.sqrt(jnp.sum(jnp.square(flat)))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """``optax.clip_by_global_norm`` with the norm computed by `global_norm` (one reduction).

    Same rule and the same (empty) optimiser state as optax's: updates are scaled by
    ``max_norm / norm`` when ``norm >= max_norm`` and left as they are otherwise.
    """

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        g_norm = global_norm(updates)
        keep = g_norm < max_norm
        updates = jax.tree.map(
            lambda t: jax.lax.select(keep, t, (t / g_norm.astype(t.dtype)) * max_norm), updates
        )
        return updates, state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


def on_flat_vector(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` applied to all parameters raveled into one vector (its state is one vector too).

    For elementwise optimisers (Adam, global-norm clipping) the updates are the same as on
    the pytree, but XLA runs a handful of kernels for the whole vector instead of a few per
    parameter array; with small networks those per-array kernels dominate an update step on
    CPU. Updates come back in the structure of the gradients.
    """

    def init_fn(params: Any) -> Any:
        return tx.init(ravel_pytree(params)[0])

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        flat, unravel = ravel_pytree(updates)
        flat_params = None if params is None else ravel_pytree(params)[0]
        flat, state = tx.update(flat, state, flat_params)
        return unravel(flat), state

    return optax.GradientTransformation(init_fn, update_fn)


def learning_rate(cfg: Any) -> float | optax.Schedule:
    """``cfg.learning_rate``, decaying linearly to 0 over ``cfg.anneal_lr_steps`` if set."""
    if getattr(cfg, "anneal_lr_steps", None) is None:
        return cfg.learning_rate
    return optax.linear_schedule(cfg.learning_rate, 0.0, cfg.anneal_lr_steps)


def make_optimizer(
    learning_rate: float | optax.Schedule,
    max_grad_norm: float | None = None,
    eps: float = 1e-8,
    *,
    flat: bool = False,
    inject: bool = False,
) -> optax.GradientTransformation:
    """Adam, after global-norm clipping if ``max_grad_norm``; ``flat``: see `on_flat_vector`.

    ``inject``: ``learning_rate`` and ``max_grad_norm`` are ``optax.inject_hyperparams``
    values held in the optimiser state (traced hyperparameters, ``_hparams.with_hparams``).
    """
    if inject:
        tx = optax.inject_hyperparams(_adam, static_args=("eps",))(
            learning_rate=learning_rate, max_grad_norm=max_grad_norm, eps=eps
        )
    else:
        tx = _adam(learning_rate, max_grad_norm, eps)
    return on_flat_vector(tx) if flat else tx


def _adam(learning_rate: Any, max_grad_norm: Any, eps: float) -> optax.GradientTransformation:
    tx = optax.adam(learning_rate, eps=eps)
    if max_grad_norm is not None:
        tx = optax.chain(clip_by_global_norm(max_grad_norm), tx)
    return tx


def require_keys(owner: str, batch: Mapping[str, Any], keys: Sequence[str]) -> None:
    if not isinstance(batch, Mapping):
        raise TypeError(f"{owner}: batch must be a dict of arrays (got {type(batch).__name__})")
    missing = [k for k in keys if k not in batch]
    if missing:
        raise KeyError(
            f"{owner}: batch is missing key(s) {missing}; it has {sorted(batch)} and needs "
            f"{list(keys)}"
        )


def observation_example(owner: str, observations: Any) -> jax.Array:
    obs = jnp.asarray(observations)
    if obs.ndim == 0:
        raise ValueError(
            f"{owner}.create: observations must be an example observation array with a feature "
            f"axis, e.g. shape (obs_dim,) or (batch, obs_dim) (got a scalar)"
        )
    if not jnp.issubdtype(obs.dtype, jnp.floating):
        obs = obs.astype(jnp.float32)
    return obs


def encoded(owner: str, cfg: Any, observations: Any, *model_defs: nn.Module) -> tuple:
    """``model_defs`` behind the encoder of ``cfg.encoder`` (see `with_encoder`), in order;
    unchanged when the config has no encoder. Each network gets its own encoder."""
    encoder = getattr(cfg, "encoder", None)
    return tuple(with_encoder(owner, m, encoder, observations) for m in model_defs)


def action_example(obs: jax.Array, actions: Any, action_dim: int, cfg: Any) -> jax.Array:
    """Float example actions with the batch axes of the example ``obs`` (those before the
    feature axis, or before ``(H, W, C)`` with an encoder)."""
    feature_axes = 1 if getattr(cfg, "encoder", None) is None else 3
    batch = obs.shape[: max(obs.ndim - feature_axes, 0)]
    return jnp.broadcast_to(jnp.asarray(actions, jnp.float32), (*batch, action_dim))


def continuous_action_dim(owner: str, actions: Any) -> int:
    act = jnp.asarray(actions)
    if not jnp.issubdtype(act.dtype, jnp.floating) or act.ndim == 0:
        raise ValueError(
            f"{owner}.create: actions must be an example float action array of shape "
            f"(action_dim,) or (batch, action_dim) (got dtype={act.dtype}, shape={act.shape})"
        )
    return int(act.shape[-1])


def discrete_n_actions(owner: str, actions: Any, n_actions: int | None) -> int:
    act = jnp.asarray(actions)
    if not jnp.issubdtype(act.dtype, jnp.integer):
        raise ValueError(
            f"{owner}.create: actions must be an example integer action array for discrete "
            f"actions (got dtype={act.dtype})"
        )
    if n_actions is None:
        raise ValueError(
            f"{owner}.create needs n_actions for discrete actions; pass n_actions=<number of "
            "actions>, e.g. n_actions=env.action_space(env_params).n"
        )
    check_int(f"{owner}.create", "n_actions", n_actions, minimum=1)
    return int(n_actions)


def mean_info(info: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    return {k: jnp.mean(v).astype(jnp.float32) for k, v in info.items()}


def as_key(owner: str, key: Any) -> jax.Array:
    """``key`` as a PRNG key: an int seed (``create(key=0)``, as jaxrl_m's ``seed``) becomes
    ``jax.random.key(seed)``; a key (typed or raw ``uint32[2]``) passes through."""
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, bool) or not hasattr(key, "dtype"):
        raise TypeError(
            f"{owner}.create: key must be a jax PRNG key or an int seed, e.g. key=0 or "
            f"key=jax.random.key(0) (got {type(key).__name__})"
        )
    return key


def row_keys(key: jax.Array, n: int, axis: Any) -> jax.Array:
    """``n`` keys, one per batch row: ``fold_in(key, row)`` with ``row`` the row's index in the
    whole batch; under a pmap/shard_map ``axis`` the local rows are offset by
    ``axis_index * n``, so a batch split over devices draws the noise of one device."""
    offset = 0 if axis is None else jax.lax.axis_index(axis) * n
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(n))


def row_normal(key: jax.Array, shape: tuple[int, ...], axis: Any) -> jax.Array:
    """Standard normal noise of ``shape`` (batch axes then one feature axis) drawn per row
    with `row_keys`."""
    n = math.prod(shape[:-1])
    keys = row_keys(key, n, axis)
    noise = jax.vmap(lambda k: jax.random.normal(k, shape[-1:]))(keys)
    return noise.reshape(shape)


def pmean_if(x: jax.Array, axis: Any) -> jax.Array:
    """``lax.pmean(x, axis)``, or ``x`` without an axis."""
    return x if axis is None else jax.lax.pmean(x, axis)
