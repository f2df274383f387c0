"""`TrainState`: a flax module, its parameters and (optionally) its optimiser, as one pytree."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, overload

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

__all__ = ["TrainState", "nonpytree_field", "target_update"]

Params = Any
PyTree = Any

# Names defined by `flax.linen.Module` itself; attribute sugar never dispatches to these.
_MODULE_BASE_NAMES = frozenset(dir(nn.Module))


def nonpytree_field(**kwargs: Any) -> Any:
    """A dataclass field that is static: kept out of the pytree leaves (not traced, not vmapped).

    Use it for callables, optimisers, modules and configs held by a `flax.struct.PyTreeNode`.
    Keyword arguments go to `dataclasses.field` (e.g. ``default=...``).

    Example:
        >>> from flax import struct
        >>> class Agent(struct.PyTreeNode):
        ...     params: dict
        ...     discount: float = nonpytree_field(default=0.99)
        >>> jax.tree.leaves(Agent(params={"w": 1.0}))
        [1.0]
    """
    return struct.field(pytree_node=False, **kwargs)


class TrainState(struct.PyTreeNode):
    """A flax module bound to its parameters, extra variables and optional optax optimiser.

    A `TrainState` is a `flax.struct.PyTreeNode`: ``params``, ``extra_variables``,
    ``opt_state`` and ``step`` are leaves; ``apply_fn``, ``model_def`` and ``tx`` are static.
    It therefore passes through `jax.jit`, `jax.vmap`, `jax.pmap` and `jax.shard_map`.

    Attributes:
        step: int32 scalar, number of optimiser updates applied.
        apply_fn: ``model_def.apply``.
        model_def: the `flax.linen.Module` definition.
        params: the ``"params"`` collection.
        extra_variables: every other variable collection (e.g. ``{"batch_stats": ...}``),
            a possibly empty dict.
        tx: the optax optimiser, or None for a state that is never optimised (e.g. a target
            network).
        opt_state: ``tx.init(params)`` or None.

    Example:
        >>> import flax.linen as nn, optax
        >>> model_def = nn.Dense(3)
        >>> x = jnp.ones((2, 4))
        >>> params = model_def.init(jax.random.key(0), x)["params"]
        >>> state = TrainState.create(model_def, params, tx=optax.adam(1e-3))
        >>> state(x).shape
        (2, 3)
    """

    step: jax.Array
    apply_fn: Callable[..., Any] = nonpytree_field()
    model_def: nn.Module = nonpytree_field()
    params: Params = None
    extra_variables: dict[str, Any] = struct.field(default_factory=dict)
    tx: optax.GradientTransformation | None = nonpytree_field(default=None)
    opt_state: optax.OptState | None = None

    @classmethod
    def create(
        cls,
        model_def: nn.Module,
        params: Params,
        tx: optax.GradientTransformation | None = None,
        extra_variables: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> TrainState:
        """Build a state from a module definition and its ``"params"`` collection.

        Args:
            model_def: the `flax.linen.Module` to run.
            params: its ``"params"`` collection (``model_def.init(...)["params"]``).
            tx: optional optax optimiser; its state is initialised from ``params``.
            extra_variables: other variable collections, e.g. ``{"batch_stats": ...}``.
            **kwargs: extra fields of a subclass.

        Returns:
            A `TrainState` with ``step == 0``.

        Example:
            >>> import flax.linen as nn
            >>> variables = nn.Dense(2).init(jax.random.key(0), jnp.ones((1, 3)))
            >>> state = TrainState.create(nn.Dense(2), variables["params"])
            >>> int(state.step)
            0
        """
        if not isinstance(model_def, nn.Module):
            raise TypeError(
                f"model_def must be a flax.linen.Module (got {type(model_def).__name__}); "
                "pass the module definition, e.g. TrainState.create(nn.Dense(3), params)"
            )
        if isinstance(params, Mapping) and "params" in params and len(params) > 1:
            raise ValueError(
                "params looks like a full variables dict (got collections "
                f"{sorted(params)}); pass variables['params'] as params and the other "
                "collections as extra_variables"
            )
        if tx is not None and not isinstance(tx, optax.GradientTransformation):
            raise TypeError(
                f"tx must be an optax.GradientTransformation or None (got {type(tx).__name__})"
            )
        extra = dict(extra_variables) if extra_variables is not None else {}
        if "params" in extra:
            raise ValueError(
                "extra_variables must not contain the 'params' collection; pass it as params"
            )
        opt_state = tx.init(params) if tx is not None else None
        step = jnp.asarray(0, dtype=jnp.int32)
        nets = {"apply_fn": model_def.apply, "model_def": model_def, "params": params}
        return cls(step=step, **nets, extra_variables=extra, tx=tx, opt_state=opt_state, **kwargs)

    def __call__(
        self,
        *args: Any,
        params: Params | None = None,
        extra_variables: Mapping[str, Any] | None = None,
        method: str | Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the model.

        Args:
            *args: positional inputs of the module method.
            params: parameters to use instead of ``self.params`` (e.g. inside a loss function
                being differentiated).
            extra_variables: variable collections to use instead of ``self.extra_variables``.
            method: name of a method of ``model_def`` (``"encode"``) or a callable taking the
                module as first argument; default ``__call__``.
            **kwargs: forwarded to ``model_def.apply``: keyword inputs of the method and flax
                options such as ``rngs={"dropout": key}`` or ``mutable=["batch_stats"]``. With
                ``mutable``, the result is ``(output, updated_collections)``; store the
                updates with `TrainState.apply_gradients` (``extra_variables=...``) or
                ``state.replace(extra_variables={**state.extra_variables, **updates})``.

        Returns:
            The module's output (and the mutated collections when ``mutable`` is given).

        Example:
            >>> import flax.linen as nn
            >>> x = jnp.ones((1, 3))
            >>> params = nn.Dense(2).init(jax.random.key(0), x)["params"]
            >>> state = TrainState.create(nn.Dense(2), params)
            >>> zeros = jax.tree.map(jnp.zeros_like, state.params)
            >>> state(x, params=zeros).tolist()
            [[0.0, 0.0]]
        """
        variables = {"params": self.params if params is None else params}
        extra = self.extra_variables if extra_variables is None else extra_variables
        if "params" in extra:
            raise ValueError(
                "extra_variables must not contain the 'params' collection; pass it as params="
            )
        variables.update(extra)
        if isinstance(method, str):
            if not callable(getattr(type(self.model_def), method, None)):
                raise AttributeError(
                    f"method={method!r} is not a method of {type(self.model_def).__name__}"
                )
            method = getattr(self.model_def, method)
        return self.apply_fn(variables, *args, method=method, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: `state.encode(x)` -> `state(x, method="encode")`
        # for methods that the user's module defines (never flax.linen.Module's own API).
        model_def = self.__dict__.get("model_def")
        if (
            model_def is not None
            and not name.startswith("_")
            and name not in _MODULE_BASE_NAMES
            and callable(getattr(type(model_def), name, None))
        ):
            return functools.partial(self.__call__, method=name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def apply_gradients(
        self, *, grads: Params, extra_variables: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> TrainState:
        """Take one optimiser step with ``grads``; optionally store updated collections.

        Args:
            grads: gradients shaped like ``params``.
            extra_variables: collections to merge into ``self.extra_variables`` (e.g. the
                ``{"batch_stats": ...}`` returned by a ``mutable=["batch_stats"]`` call).
            **kwargs: other fields (of a subclass) to ``replace`` in the result, as
                jaxrl_m's ``apply_gradients(grads=..., **kwargs)``; not ``step``,
                ``params`` or ``opt_state``, which the step sets.

        Returns:
            The new state, with ``step`` incremented.

        Example:
            >>> import flax.linen as nn, optax
            >>> x = jnp.ones((1, 3))
            >>> params = nn.Dense(1).init(jax.random.key(0), x)["params"]
            >>> state = TrainState.create(nn.Dense(1), params, tx=optax.sgd(0.1))
            >>> grads = jax.grad(lambda p: state(x, params=p).sum())(state.params)
            >>> int(state.apply_gradients(grads=grads).step)
            1
        """
        if self.tx is None:
            raise ValueError(
                "this TrainState has no optimiser (tx=None); create it with "
                "TrainState.create(model_def, params, tx=optax.adam(...)) to apply gradients"
            )
        clash = sorted({"step", "params", "opt_state"} & set(kwargs))
        if clash:
            raise TypeError(
                f"apply_gradients sets {clash} itself; pass only other fields as keyword "
                "arguments, or call state.replace(...) on the result"
            )
        updates, new_opt_state = self.tx.update(grads, self.opt_state, self.params)
        new_params = optax.apply_updates(self.params, updates)
        new_extra = self.extra_variables
        if extra_variables is not None:
            new_extra = {**self.extra_variables, **extra_variables}
        return self.replace(
            step=self.step + 1,
            params=new_params,
            extra_variables=new_extra,
            opt_state=new_opt_state,
            **kwargs,
        )

    @overload
    def apply_loss_fn(
        self,
        *,
        loss_fn: Callable[[Params], Any],
        pmap_axis: str | Sequence[str] | None = None,
        has_aux: Literal[True],
        has_updates: bool = False,
    ) -> tuple[TrainState, Any]: ...

    @overload
    def apply_loss_fn(
        self,
        *,
        loss_fn: Callable[[Params], Any],
        pmap_axis: str | Sequence[str] | None = None,
        has_aux: Literal[False] = False,
        has_updates: bool = False,
    ) -> TrainState: ...

    def apply_loss_fn(
        self,
        *,
        loss_fn: Callable[[Params], Any],
        pmap_axis: str | Sequence[str] | None = None,
        has_aux: bool = False,
        has_updates: bool = False,
    ) -> TrainState | tuple[TrainState, Any]:
        """Differentiate ``loss_fn`` at ``self.params`` and apply the gradient step.

        Args:
            loss_fn: ``params -> loss`` (or ``(loss, info)`` with ``has_aux``).
            pmap_axis: axis name(s) of an enclosing `jax.pmap` or `jax.shard_map`; gradients,
                ``info`` and collection updates are averaged (``lax.pmean``) over it, so every
                device takes the same step: the gradient of the mean loss over all devices.
                (Under `shard_map` with replicated ``params``, autodiff already sums the
                gradient over the axis; it is then divided by the axis size, not averaged
                again.)
            has_aux: ``loss_fn`` returns ``(loss, info)`` and this method returns
                ``(new_state, info)``.
            has_updates: ``loss_fn`` also returns updated variable collections (from a call
                with ``mutable=[...]``): ``(loss, updates)``, or ``(loss, (info, updates))``
                together with ``has_aux``. They are merged into ``extra_variables``.

        Returns:
            ``new_state``, or ``(new_state, info)`` when ``has_aux``.

        Example:
            >>> import flax.linen as nn, optax
            >>> x, y = jnp.ones((4, 3)), jnp.zeros((4, 1))
            >>> params = nn.Dense(1).init(jax.random.key(0), x)["params"]
            >>> state = TrainState.create(nn.Dense(1), params, tx=optax.adam(1e-2))
            >>> def loss_fn(p):
            ...     loss = jnp.mean((state(x, params=p) - y) ** 2)
            ...     return loss, {"loss": loss}
            >>> state, info = state.apply_loss_fn(loss_fn=loss_fn, has_aux=True)
            >>> sorted(info)
            ['loss']
        """
        if has_aux or has_updates:
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(self.params)
        else:
            (loss, grads), aux = jax.value_and_grad(loss_fn)(self.params), None
        if has_aux and has_updates:
            if not (isinstance(aux, tuple) and len(aux) == 2):
                raise ValueError(
                    "with has_aux=True and has_updates=True, loss_fn must return "
                    "(loss, (info, updates))"
                )
            info, updates = aux
        elif has_updates:
            info, updates = None, aux
        else:
            info, updates = aux, None
        if pmap_axis is not None:
            grads = _mean_gradients(grads, loss, pmap_axis)
            info = jax.lax.pmean(info, axis_name=pmap_axis)
            updates = jax.lax.pmean(updates, axis_name=pmap_axis)
        new_state = self.apply_gradients(grads=grads, extra_variables=updates)
        if has_aux:
            return new_state, info
        return new_state


def _varying_axes(x: Any) -> frozenset[str] | None:
    """Mesh axes over which ``x`` varies inside `shard_map` (None if jax cannot tell)."""
    typeof = getattr(jax, "typeof", None)
    if typeof is None:
        return None
    aval = typeof(x)
    manual = getattr(aval, "manual_axis_type", None)  # jax >= 0.10
    if manual is not None:
        return frozenset(getattr(manual, "varying", ()))
    vma = getattr(aval, "vma", None)  # jax 0.6 - 0.9
    return None if vma is None else frozenset(vma)


def _mean_gradients(grads: Params, loss: jax.Array, pmap_axis: str | Sequence[str]) -> Params:
    """Average per-device gradients over ``pmap_axis``.

    Under `jax.pmap` (and `shard_map` with ``check_vma=False``) each device holds the gradient
    of its own loss, and this is ``lax.pmean``. Under `shard_map` with replication checking,
    the gradient of a loss that varies over an axis, taken with respect to parameters that do
    not (``in_specs=P()``), comes out of autodiff already summed over that axis; it is divided
    by the axis size instead, so both give the gradient of the mean loss.
    """
    axes = (pmap_axis,) if isinstance(pmap_axis, str) else tuple(pmap_axis)
    loss_varying = _varying_axes(loss) or frozenset()

    def mean(g: jax.Array) -> jax.Array:
        g_varying = _varying_axes(g) or frozenset()
        for axis in axes:
            if axis in loss_varying and axis not in g_varying:
                g = g / jax.lax.psum(1, axis)
            else:
                g = jax.lax.pmean(g, axis_name=axis)
        return g

    return jax.tree.map(mean, grads)


def target_update(
    model: TrainState, target_model: TrainState, tau: float | jax.Array
) -> TrainState:
    """Polyak-average ``model``'s params into ``target_model``: ``tau * new + (1 - tau) * old``.

    ``tau=1`` copies the parameters (a hard update). Extra variables and optimiser state of the
    target are left as they are.

    Example:
        >>> import flax.linen as nn
        >>> x = jnp.ones((1, 2))
        >>> params = nn.Dense(1).init(jax.random.key(0), x)["params"]
        >>> online = TrainState.create(nn.Dense(1), params)
        >>> target = online.replace(params=jax.tree.map(jnp.zeros_like, online.params))
        >>> new = target_update(online, target, 0.5)
        >>> bool(jnp.allclose(new.params["bias"], 0.5 * online.params["bias"]))
        True
    """
    new_params = jax.tree.map(
        lambda p, tp: (tau * p + (1.0 - tau) * tp).astype(tp.dtype),
        model.params,
        target_model.params,
    )
    return target_model.replace(params=new_params)
