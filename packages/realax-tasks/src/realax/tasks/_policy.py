"""Policies: flax linen modules with ``__call__(obs, state, key) -> (action, state)``."""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable
from typing import Any, cast

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array


class BasePolicy(nn.Module):
    """The policy protocol every task accepts.

    A policy is a flax linen module with two methods:

    - ``initialize(key) -> state``: the policy state at the start of an episode
      (``None`` for feed-forward policies, e.g. a hidden vector for recurrent ones). It must
      not read parameters, so it can be called on the unbound module.
    - ``__call__(obs, state, key) -> (action, state)``: one decision for one observation
      (batch with ``jax.vmap``). The returned state must have the structure of the input
      state.

    A task's ``params`` are the variables ``policy.init(key, obs, policy.initialize(key), key)``
    returns. Subclass ``BasePolicy`` (feed-forward policies only implement ``__call__``) or
    write any module with the same two methods; :meth:`check` verifies the protocol.

    >>> class Constant(BasePolicy):
    ...     @nn.compact
    ...     def __call__(self, obs, state, key):
    ...         return self.param("a", nn.initializers.zeros, (1,)), state
    >>> Constant.check(Constant(), jnp.zeros(3))
    """

    def initialize(self, key: Array) -> Any:
        """The policy state at the start of an episode (``None``: stateless)."""
        del key
        return None

    def __call__(self, obs: Array, state: Any, key: Array) -> tuple[Array, Any]:
        raise NotImplementedError

    @staticmethod
    def check(policy: Any, example_obs: Any) -> None:
        """Raises ``TypeError`` unless ``policy`` follows the protocol for ``example_obs``.

        Only shapes are traced (``jax.eval_shape``): nothing is compiled or run.
        """
        check_policy(policy, example_obs)


def is_model_factory(value: Any) -> bool:
    """Whether ``value``, given where a policy goes, is a model factory: a callable that is
    not a flax module."""
    return callable(value) and not isinstance(value, nn.Module)


def policy_or_factory(owner: str, policy: Any, model_factory: Any) -> tuple[Any, Any]:
    """``(policy, model_factory)`` with a model factory given in the policy position moved
    to ``model_factory`` (the original realax's positional calls, e.g.
    ``BraxTask(env_name, 500, model_factory)``).

    A value in the policy position that is callable but not a flax module is a model
    factory ``params -> model``; with ``model_factory=`` also given, the call is ambiguous
    and the error says how to write it.

    >>> factory = lambda params: (lambda obs, state, key: (obs, state))
    >>> policy_or_factory("GymnaxTask", factory, None) == (None, factory)
    True
    """
    if not is_model_factory(policy):
        return policy, model_factory
    if model_factory is not None:
        raise TypeError(
            f"{owner}: the policy argument is a {type(policy).__name__}, not a flax policy "
            "module, and model_factory= is given as well; pass one of them: "
            f"{owner}(env, ..., policy=<flax module>) or {owner}(env, ..., "
            "model_factory=<params -> model>)"
        )
    return None, policy


def check_policy(policy: Any, example_obs: Any) -> None:
    """Verifies the policy protocol (see :class:`BasePolicy`) by abstract evaluation.

    >>> check_policy(MLPPolicy(action_dims=2, discrete=True), jnp.zeros(4))
    """
    name = type(policy).__name__
    if not isinstance(policy, nn.Module):
        raise TypeError(
            f"policy must be a flax linen Module with __call__(obs, state, key) and "
            f"initialize(key) (got {name}); for other callables pass model_factory= instead"
        )
    if not callable(getattr(policy, "initialize", None)):
        raise TypeError(
            f"policy {name} has no initialize(key) method; subclass realax.tasks.BasePolicy "
            "or add `def initialize(self, key): return None`"
        )
    key = jax.random.key(0)
    try:
        state = jax.eval_shape(policy.initialize, key)
        variables = jax.eval_shape(
            lambda k: policy.init(k, example_obs, policy.initialize(k), k), key
        )
        out = jax.eval_shape(
            lambda v, k: policy.apply(v, example_obs, policy.initialize(k), k), variables, key
        )
    except TypeError as error:
        raise TypeError(
            f"policy {name} does not follow the protocol __call__(obs, state, key) -> "
            f"(action, state) / initialize(key) -> state: {error}"
        ) from error
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            f"policy {name}.__call__ must return (action, state); got {jax.tree.structure(out)}"
        )
    if cast(Any, jax.tree.structure(out[1])) != jax.tree.structure(state):
        raise TypeError(
            f"policy {name}.__call__ must return a state shaped like initialize(key): "
            f"initialize gives {jax.tree.structure(state)}, __call__ returns "
            f"{jax.tree.structure(out[1])}"
        )


def _floats(value: Any, n: int, name: str) -> tuple[float, ...]:
    """A scalar or a sequence/array of ``n`` (or 1) bounds as a tuple of Python floats.

    Pure Python on purpose: it runs while a policy is traced, where the bounds must stay
    compile-time constants.
    """
    flat = value.tolist() if hasattr(value, "tolist") else value
    if isinstance(flat, numbers.Real):
        flat = [flat]
    try:
        vals = tuple(float(v) for v in flat)
    except TypeError as err:
        raise ValueError(
            f"{name} must be a number or a flat sequence of {n} numbers (got {value!r})"
        ) from err
    if len(vals) == 1:
        vals = vals * n
    if len(vals) != n:
        raise ValueError(f"{name} must have 1 or {n} entries (got {len(vals)}: {value!r})")
    return vals


def _bounds(low: Any, high: Any, n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return _floats(low, n, "action_low"), _floats(high, n, "action_high")


def _validate_head(action_dims: Any, discrete: bool, low: Any, high: Any, cls: str) -> None:
    dims = action_dims if isinstance(action_dims, tuple) else (action_dims,)
    if not dims or not all(isinstance(d, numbers.Integral) and int(d) >= 1 for d in dims):
        raise ValueError(
            f"{cls}: action_dims must be a positive int or a tuple of positive ints "
            f"(got action_dims={action_dims!r})"
        )
    if isinstance(action_dims, tuple) and not discrete:
        raise ValueError(
            f"{cls}: a tuple action_dims (multi-discrete) needs discrete=True "
            f"(got action_dims={action_dims}, discrete=False)"
        )
    if not discrete:
        lo, hi = _bounds(low, high, int(action_dims))
        if any(a >= b for a, b in zip(lo, hi, strict=True)):
            raise ValueError(
                f"{cls}: action_low must be < action_high elementwise (got "
                f"action_low={list(lo)}, action_high={list(hi)})"
            )


def _action_head(
    h: Array,
    key: Array,
    *,
    action_dims: int | tuple[int, ...],
    discrete: bool,
    stochastic: bool,
    action_low: Any,
    action_high: Any,
) -> Array:
    """Maps features to an action (called inside a compact method)."""
    if discrete:
        sizes = action_dims if isinstance(action_dims, tuple) else (action_dims,)
        logits = nn.Dense(sum(sizes), name="action_head")(h)
        parts = jnp.split(logits, list(itertools.accumulate(sizes))[:-1])
        if stochastic:
            keys = jax.random.split(key, len(parts))
            picks = [jax.random.categorical(k, p) for k, p in zip(keys, parts, strict=True)]
        else:
            picks = [jnp.argmax(p) for p in parts]
        acts = jnp.stack(picks).astype(jnp.int32)
        return acts if isinstance(action_dims, tuple) else acts[0]
    n = int(cast(int, action_dims))
    out = nn.Dense(n, name="action_head")(h)
    lo, hi = _bounds(action_low, action_high, n)
    if not all(math.isfinite(v) for v in lo + hi):
        return out
    width = [b - a for a, b in zip(lo, hi, strict=True)]
    return jnp.asarray(lo, jnp.float32) + 0.5 * (jnp.tanh(out) + 1.0) * jnp.asarray(
        width, jnp.float32
    )


class _ActionHead:
    """What :class:`MLPPolicy` and :class:`GRUPolicy` share: the action fields' checks,
    ``from_env`` and the action head (methods only: each policy declares its own fields)."""

    action_dims: int | tuple[int, ...]
    discrete: bool
    action_low: float | tuple[float, ...]
    action_high: float | tuple[float, ...]
    stochastic: bool

    def _check_head(self) -> None:
        cls = type(self).__name__
        _validate_head(self.action_dims, self.discrete, self.action_low, self.action_high, cls)

    @classmethod
    def from_env(cls, env: Any, **kwargs: Any) -> Any:
        """A policy sized for ``env`` (an :class:`Env`): action dims, kind and bounds."""
        return cls(**_env_head_kwargs(env), **kwargs)

    def _head(self, h: Array, key: Array) -> Array:
        return _action_head(
            h,
            key,
            action_dims=self.action_dims,
            discrete=self.discrete,
            stochastic=self.stochastic,
            action_low=self.action_low,
            action_high=self.action_high,
        )


class MLPPolicy(_ActionHead, BasePolicy):
    """A feed-forward policy: an MLP on the flattened observation.

    Discrete actions are the argmax of the logits (or sampled with ``stochastic=True``);
    a tuple ``action_dims`` gives one categorical per component (multi-discrete). Continuous
    actions are ``tanh``-bounded and scaled to ``[action_low, action_high]`` (left
    unbounded when a bound is infinite).

    Attributes:
        action_dims: number of actions (discrete), categories per component (tuple) or the
            size of a continuous action.
        width: hidden layer width.
        depth: number of hidden layers.
        discrete: discrete (``True``) or continuous (``False``) actions.
        action_low: lower bound(s) of continuous actions.
        action_high: upper bound(s) of continuous actions.
        stochastic: sample discrete actions from the logits instead of taking the argmax.
        activation: hidden activation.

    >>> policy = MLPPolicy(action_dims=2, width=16, depth=1, discrete=True)
    >>> params, factory = make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
    >>> int(policy.apply(params, jnp.ones(4), None, jax.random.key(1))[0]) in (0, 1)
    True
    """

    action_dims: int | tuple[int, ...]
    width: int = 64
    depth: int = 2
    discrete: bool = False
    action_low: float | tuple[float, ...] = -1.0
    action_high: float | tuple[float, ...] = 1.0
    stochastic: bool = False
    activation: Callable[[Array], Array] = nn.tanh

    def __post_init__(self) -> None:
        self._check_head()
        if self.depth < 0 or self.width < 1:
            raise ValueError(
                f"MLPPolicy: depth must be >= 0 and width >= 1 (got depth={self.depth}, "
                f"width={self.width})"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, obs: Array, state: Any, key: Array) -> tuple[Array, Any]:
        h = jnp.ravel(obs).astype(jnp.float32)
        for i in range(self.depth):
            h = self.activation(nn.Dense(self.width, name=f"hidden_{i}")(h))
        return self._head(h, key), state


class GRUPolicy(_ActionHead, BasePolicy):
    """A recurrent policy: dense encoder, a GRU cell whose hidden state is the policy state,
    and the same action head as :class:`MLPPolicy`.

    Attributes:
        action_dims: see :class:`MLPPolicy`.
        hidden_size: GRU state size.
        discrete: discrete or continuous actions.
        action_low: lower bound(s) of continuous actions.
        action_high: upper bound(s) of continuous actions.
        stochastic: sample discrete actions.
        encoder_width: width of the dense layer before the GRU (0: none).

    >>> policy = GRUPolicy(action_dims=1, hidden_size=8)
    >>> h = policy.initialize(jax.random.key(0))
    >>> params = policy.init(jax.random.key(0), jnp.zeros(3), h, jax.random.key(0))
    >>> a, h = policy.apply(params, jnp.ones(3), h, jax.random.key(1))
    >>> a.shape, h.shape
    ((1,), (8,))
    """

    action_dims: int | tuple[int, ...]
    hidden_size: int = 32
    discrete: bool = False
    action_low: float | tuple[float, ...] = -1.0
    action_high: float | tuple[float, ...] = 1.0
    stochastic: bool = False
    encoder_width: int = 0

    def __post_init__(self) -> None:
        self._check_head()
        if self.hidden_size < 1:
            raise ValueError(f"GRUPolicy: hidden_size must be >= 1 (got {self.hidden_size})")
        super().__post_init__()

    def initialize(self, key: Array) -> Array:
        del key
        return jnp.zeros((self.hidden_size,), jnp.float32)

    @nn.compact
    def __call__(self, obs: Array, state: Array, key: Array) -> tuple[Array, Array]:
        x = jnp.ravel(obs).astype(jnp.float32)
        if self.encoder_width:
            x = nn.tanh(nn.Dense(self.encoder_width, name="encoder")(x))
        state, h = nn.GRUCell(features=self.hidden_size, name="gru")(state, x)
        return self._head(h, key), state


def _env_head_kwargs(env: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"action_dims": env.action_dims, "discrete": env.discrete}
    if not env.discrete:
        kwargs["action_low"] = tuple(float(v) for v in jnp.ravel(env.action_low).tolist())
        kwargs["action_high"] = tuple(float(v) for v in jnp.ravel(env.action_high).tolist())
    return kwargs


def make_model_factory(
    policy: nn.Module, example_obs: Any, key: Array
) -> tuple[Any, Callable[[Any], nn.Module]]:
    """Initial parameters of ``policy`` and a ``model_factory(params) -> model``.

    ``model = model_factory(params)`` is the policy bound to ``params``: ``model(obs, state,
    key)`` and ``model.initialize(key)`` work as the original realax ``model_factory``
    pattern expects, and ``model_factory`` is a pure function usable under ``jit``/``vmap``.

    Args:
        policy: a policy module (see :class:`BasePolicy`).
        example_obs: one observation (shapes only matter).
        key: PRNG key for the initial parameters.

    Returns:
        ``(params, model_factory)`` with ``params = policy.init(key, obs, state, key)``.

    >>> policy = MLPPolicy(action_dims=2, discrete=True, width=8, depth=1)
    >>> params, factory = make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
    >>> model = factory(params)
    >>> action, state = model(jnp.ones(4), model.initialize(jax.random.key(1)), jax.random.key(2))
    """
    check_policy(policy, example_obs)
    k_state, k_init, k_call = jax.random.split(key, 3)
    params = policy.init(k_init, example_obs, policy.initialize(k_state), k_call)
    return params, lambda p: policy.bind(p)
