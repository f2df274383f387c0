"""Networks used by the agents: an MLP, actor heads returning distributions, critics, and
PPO's actor-critic."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._distributions import Categorical, DiagGaussian, TanhDiagGaussian
from ._encoders import resolve_encoder

__all__ = [
    "MLP",
    "ACTIVATIONS",
    "ContinuousActor",
    "DeterministicActor",
    "DiscreteActor",
    "Ensemble",
    "QCritic",
    "StateActionCritic",
    "ValueCritic",
    "ActorCritic",
    "Encoded",
    "head_of",
    "with_encoder",
]

#: Activation names accepted by the agents' configs.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "swish": nn.swish,
}


def _orthogonal(scale: float = math.sqrt(2.0)) -> nn.initializers.Initializer:
    return nn.initializers.orthogonal(scale)


class MLP(nn.Module):
    """Multi-layer perceptron: ``Dense -> activation`` per hidden size.

    Attributes:
        hidden_dims: output size of each layer (the last one is the output size).
        activation: activation between layers.
        activate_final: also apply the activation after the last layer.
        layer_norm: apply LayerNorm before each activation.
        kernel_scale: orthogonal initialisation scale of hidden layers.
        final_kernel_scale: orthogonal initialisation scale of the last layer (default
            ``kernel_scale``).

    Example:
        >>> mlp = MLP(hidden_dims=(32, 2))
        >>> params = mlp.init(jax.random.key(0), jnp.ones((5, 3)))
        >>> mlp.apply(params, jnp.ones((5, 3))).shape
        (5, 2)
    """

    hidden_dims: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    activate_final: bool = False
    layer_norm: bool = False
    kernel_scale: float = math.sqrt(2.0)
    final_kernel_scale: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        n = len(self.hidden_dims)
        for i, size in enumerate(self.hidden_dims):
            last = i == n - 1
            scale = (
                self.final_kernel_scale
                if (last and self.final_kernel_scale is not None)
                else (self.kernel_scale)
            )
            x = nn.Dense(size, kernel_init=_orthogonal(scale))(x)
            if not last or self.activate_final:
                if self.layer_norm:
                    x = nn.LayerNorm()(x)
                x = self.activation(x)
        return x


class DiscreteActor(nn.Module):
    """Observations -> `Categorical` over ``n_actions`` (optionally tempered).

    Example:
        >>> actor = DiscreteActor(hidden_dims=(16,), n_actions=3)
        >>> params = actor.init(jax.random.key(0), jnp.ones((2, 4)))
        >>> actor.apply(params, jnp.ones((2, 4))).logits.shape
        (2, 3)
    """

    hidden_dims: Sequence[int]
    n_actions: int
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    final_kernel_scale: float = 0.01

    @nn.compact
    def __call__(self, observations: jax.Array, temperature: float = 1.0) -> Categorical:
        logits = MLP(
            (*self.hidden_dims, self.n_actions),
            activation=self.activation,
            final_kernel_scale=self.final_kernel_scale,
        )(observations)
        return Categorical(logits=logits / temperature)


class ContinuousActor(nn.Module):
    """Observations -> Gaussian (or tanh-squashed Gaussian) over ``action_dim`` actions.

    Attributes:
        hidden_dims: hidden layer sizes.
        action_dim: size of the action vector.
        activation: hidden activation.
        state_dependent_std: the network outputs log-std; otherwise a learned vector
            (initialised to ``init_log_std``).
        tanh_squash: return a `TanhDiagGaussian` (actions in ``(-1, 1)``).
        log_std_min, log_std_max: clipping range of a state-dependent log-std.

    Example:
        >>> actor = ContinuousActor(hidden_dims=(16,), action_dim=2, tanh_squash=True)
        >>> params = actor.init(jax.random.key(0), jnp.ones((3, 4)))
        >>> actor.apply(params, jnp.ones((3, 4))).mode().shape
        (3, 2)
    """

    hidden_dims: Sequence[int]
    action_dim: int
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    state_dependent_std: bool = True
    tanh_squash: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    init_log_std: float = 0.0
    final_kernel_scale: float = 0.01

    @nn.compact
    def __call__(
        self, observations: jax.Array, temperature: float = 1.0
    ) -> DiagGaussian | TanhDiagGaussian:
        h = MLP(self.hidden_dims, activation=self.activation, activate_final=True)(observations)
        loc = nn.Dense(self.action_dim, kernel_init=_orthogonal(self.final_kernel_scale))(h)
        if self.state_dependent_std:
            log_std = nn.Dense(self.action_dim, kernel_init=_orthogonal(self.final_kernel_scale))(h)
            log_std = jnp.clip(log_std, self.log_std_min, self.log_std_max)
        else:
            log_std = self.param(
                "log_std", nn.initializers.constant(self.init_log_std), (self.action_dim,)
            )
            log_std = jnp.broadcast_to(log_std, loc.shape)
        scale = jnp.exp(log_std) * temperature
        if self.tanh_squash:
            return TanhDiagGaussian(loc=loc, scale=scale)
        return DiagGaussian(loc=loc, scale=scale)


class DeterministicActor(nn.Module):
    """Observations -> deterministic actions ``tanh(MLP(s))`` in ``(-1, 1)`` (TD3, DDPG).

    Example:
        >>> actor = DeterministicActor(hidden_dims=(16,), action_dim=2)
        >>> params = actor.init(jax.random.key(0), jnp.ones((3, 4)))
        >>> actor.apply(params, jnp.ones((3, 4))).shape
        (3, 2)
    """

    hidden_dims: Sequence[int]
    action_dim: int
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    final_kernel_scale: float = 0.01

    @nn.compact
    def __call__(self, observations: jax.Array) -> jax.Array:
        x = MLP(
            (*self.hidden_dims, self.action_dim),
            activation=self.activation,
            final_kernel_scale=self.final_kernel_scale,
        )(observations)
        return jnp.tanh(x)


def _critic_mlp(critic: Any, x: jax.Array, out_dim: int) -> jax.Array:
    """The MLP of a critic (``hidden_dims``, ``activation``, ``layer_norm``) with ``out_dim``
    outputs; called inside the critic's compact ``__call__`` (its submodule ``MLP_0``)."""
    return MLP(
        (*critic.hidden_dims, out_dim),
        activation=critic.activation,
        layer_norm=critic.layer_norm,
        final_kernel_scale=1.0,
    )(x)


class ValueCritic(nn.Module):
    """Observations -> state value ``V(s)`` of the batch shape.

    Example:
        >>> critic = ValueCritic(hidden_dims=(16,))
        >>> params = critic.init(jax.random.key(0), jnp.ones((3, 4)))
        >>> critic.apply(params, jnp.ones((3, 4))).shape
        (3,)
    """

    hidden_dims: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    layer_norm: bool = False

    @nn.compact
    def __call__(self, observations: jax.Array) -> jax.Array:
        return _critic_mlp(self, observations, 1)[..., 0]


class QCritic(nn.Module):
    """Observations -> action values ``Q(s, .)`` for ``n_actions`` discrete actions.

    Example:
        >>> q = QCritic(hidden_dims=(16,), n_actions=2)
        >>> params = q.init(jax.random.key(0), jnp.ones((3, 4)))
        >>> q.apply(params, jnp.ones((3, 4))).shape
        (3, 2)
    """

    hidden_dims: Sequence[int]
    n_actions: int
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    layer_norm: bool = False

    @nn.compact
    def __call__(self, observations: jax.Array) -> jax.Array:
        return _critic_mlp(self, observations, self.n_actions)


class StateActionCritic(nn.Module):
    """(observations, actions) -> ``Q(s, a)`` of the batch shape.

    Example:
        >>> q = StateActionCritic(hidden_dims=(16,))
        >>> params = q.init(jax.random.key(0), jnp.ones((3, 4)), jnp.ones((3, 2)))
        >>> q.apply(params, jnp.ones((3, 4)), jnp.ones((3, 2))).shape
        (3,)
    """

    hidden_dims: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    layer_norm: bool = False

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([observations, actions], axis=-1)
        return _critic_mlp(self, x, 1)[..., 0]


def Ensemble(module_cls: type[nn.Module], num: int = 2) -> type[nn.Module]:  # noqa: N802
    """``num`` independent copies of ``module_cls`` evaluated in parallel (leading output axis).

    Example:
        >>> twin = Ensemble(StateActionCritic, 2)(hidden_dims=(8,))
        >>> params = twin.init(jax.random.key(0), jnp.ones((3, 4)), jnp.ones((3, 1)))
        >>> twin.apply(params, jnp.ones((3, 4)), jnp.ones((3, 1))).shape
        (2, 3)
    """
    return nn.vmap(
        module_cls,
        variable_axes={"params": 0},
        split_rngs={"params": True},
        in_axes=None,
        out_axes=0,
        axis_size=num,
    )


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs: ``observations -> (distribution, value)``.

    Discrete when ``n_actions`` is set, else a diagonal Gaussian over ``action_dim`` with a
    learned state-independent log-std.

    Example:
        >>> ac = ActorCritic(hidden_dims=(8,), n_actions=2)
        >>> params = ac.init(jax.random.key(0), jnp.ones((3, 4)))
        >>> dist, value = ac.apply(params, jnp.ones((3, 4)))
        >>> value.shape
        (3,)
    """

    hidden_dims: Sequence[int]
    n_actions: int | None = None
    action_dim: int | None = None
    activation: Callable[[jax.Array], jax.Array] = nn.tanh
    init_log_std: float = 0.0

    def setup(self) -> None:
        self.actor: nn.Module
        if self.n_actions is not None:
            self.actor = DiscreteActor(
                hidden_dims=self.hidden_dims, n_actions=self.n_actions, activation=self.activation
            )
        elif self.action_dim is not None:
            self.actor = ContinuousActor(
                hidden_dims=self.hidden_dims,
                action_dim=self.action_dim,
                activation=self.activation,
                state_dependent_std=False,
                init_log_std=self.init_log_std,
            )
        else:
            raise ValueError(
                "ActorCritic needs n_actions (discrete actions) or action_dim (continuous)"
            )
        self.critic = ValueCritic(hidden_dims=self.hidden_dims, activation=self.activation)

    def __call__(self, observations: jax.Array) -> tuple[Categorical | DiagGaussian, jax.Array]:
        return self.actor(observations), self.critic(observations)

    def value(self, observations: jax.Array) -> jax.Array:
        """State values only."""
        return self.critic(observations)

    def policy(self, observations: jax.Array) -> Categorical | DiagGaussian:
        """Action distribution only."""
        return self.actor(observations)


class Encoded(nn.Module):
    """An encoder followed by a network ``head``: ``head(encoder(observations), *args)``.

    Forwards ``value`` and ``policy`` (the `ActorCritic` methods), so actor and critic share
    the encoder. Parameters live under ``encoder`` and ``head``.

    Example:
        >>> from realax.agents._encoders import NatureCNN
        >>> net = Encoded(encoder=NatureCNN.sized_for((10, 10, 4)),
        ...               head=QCritic(hidden_dims=(8,), n_actions=3))
        >>> params = net.init(jax.random.key(0), jnp.zeros((10, 10, 4)))
        >>> net.apply(params, jnp.zeros((2, 10, 10, 4))).shape
        (2, 3)
    """

    encoder: nn.Module
    head: nn.Module

    def __call__(self, observations: jax.Array, *args: Any, **kwargs: Any) -> Any:
        return self.head(self.encoder(observations), *args, **kwargs)

    def value(self, observations: jax.Array) -> jax.Array:
        """The head's ``value`` of the encoded observations."""
        return self.head.value(self.encoder(observations))  # type: ignore[attr-defined]

    def policy(self, observations: jax.Array) -> Any:
        """The head's ``policy`` of the encoded observations."""
        return self.head.policy(self.encoder(observations))  # type: ignore[attr-defined]


def with_encoder(owner: str, model_def: nn.Module, encoder: Any, observations: Any) -> nn.Module:
    """``model_def`` behind the encoder of a config's ``encoder`` field: `Encoded`, or
    ``model_def`` itself for ``encoder=None`` (flat observations, parameters as before).

    Every agent's ``create`` passes its networks through here; the shapes of the example
    ``observations`` are checked (an image encoder needs ``(H, W, C)``, no encoder flat
    observations) with an error naming ``owner``.

    Example:
        >>> q = with_encoder("DQN", QCritic(hidden_dims=(8,), n_actions=2), "impala",
        ...                  jnp.zeros((10, 10, 4)))
        >>> type(q).__name__, type(head_of(q)).__name__
        ('Encoded', 'QCritic')
    """
    module = resolve_encoder(owner, encoder, observations)
    return model_def if module is None else Encoded(encoder=module, head=model_def)


def head_of(model_def: nn.Module) -> nn.Module:
    """The network behind an `Encoded` encoder (or ``model_def`` itself)."""
    return model_def.head if isinstance(model_def, Encoded) else model_def
