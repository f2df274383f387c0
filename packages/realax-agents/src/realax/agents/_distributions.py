"""Small action distributions: categorical, diagonal Gaussian and tanh-squashed Gaussian.

Each is a `flax.struct.PyTreeNode` (so networks can return it from `apply` and it passes
through `jax.jit`); the batch shape is the leading shape of its parameters and the event
(action) axis is the last axis for the Gaussians.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["Categorical", "DiagGaussian", "TanhDiagGaussian"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


class Categorical(struct.PyTreeNode):
    """Categorical distribution over ``logits.shape[-1]`` actions.

    Example:
        >>> dist = Categorical(logits=jnp.log(jnp.array([0.25, 0.75])))
        >>> round(float(dist.log_prob(jnp.array(1))), 4)
        -0.2877
    """

    logits: jax.Array

    @property
    def log_probs(self) -> jax.Array:
        """Normalised log-probabilities of every action, shape ``(..., n_actions)``."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    @property
    def probs(self) -> jax.Array:
        """Probabilities of every action, shape ``(..., n_actions)``."""
        return jax.nn.softmax(self.logits, axis=-1)

    def sample(self, *, seed: jax.Array) -> jax.Array:
        """Sample int32 actions of the batch shape."""
        return jax.random.categorical(seed, self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, actions: jax.Array) -> jax.Array:
        """Log-probability of integer ``actions`` (batch shape)."""
        actions = jnp.asarray(actions).astype(jnp.int32)
        # A one-hot select instead of an indexed gather: the same value (log-probabilities are
        # finite), but its gradient is an elementwise product that XLA fuses, where a gather's
        # gradient is a scatter (a separate, slow kernel on CPU, once per PPO minibatch).
        one_hot = actions[..., None] == jnp.arange(self.logits.shape[-1], dtype=jnp.int32)
        return jnp.sum(jnp.where(one_hot, self.log_probs, 0.0), axis=-1)

    def entropy(self) -> jax.Array:
        """Exact entropy ``-sum p log p`` (batch shape)."""
        log_p = self.log_probs
        return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)

    def mode(self) -> jax.Array:
        """Most likely action (int32)."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)


class DiagGaussian(struct.PyTreeNode):
    """Gaussian with diagonal covariance; the last axis is the action (event) axis.

    Example:
        >>> dist = DiagGaussian(loc=jnp.zeros(2), scale=jnp.ones(2))
        >>> round(float(dist.log_prob(jnp.zeros(2))), 4)  # -log(2 pi)
        -1.8379
    """

    loc: jax.Array
    scale: jax.Array

    def sample(self, *, seed: jax.Array) -> jax.Array:
        """Reparameterised sample ``loc + scale * eps``."""
        eps = jax.random.normal(seed, jnp.shape(self.loc), dtype=jnp.result_type(self.loc))
        return self.loc + self.scale * eps

    def log_prob(self, actions: jax.Array) -> jax.Array:
        """Log-density summed over the action axis."""
        z = (actions - self.loc) / self.scale
        return jnp.sum(-0.5 * z**2 - jnp.log(self.scale) - _HALF_LOG_2PI, axis=-1)

    def entropy(self) -> jax.Array:
        """Exact entropy ``sum(log(scale) + 0.5 log(2 pi e))``."""
        return jnp.sum(jnp.log(self.scale) + 0.5 + _HALF_LOG_2PI, axis=-1)

    def mode(self) -> jax.Array:
        """The mean."""
        return self.loc

    def sample_and_log_prob(self, *, seed: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Sample and its log-density."""
        actions = self.sample(seed=seed)
        return actions, self.log_prob(actions)


def _log_det_tanh_jacobian(pre_tanh: jax.Array) -> jax.Array:
    # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), stable for large |u|.
    return 2.0 * (_LOG_2 - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))


class TanhDiagGaussian(struct.PyTreeNode):
    """``tanh(u)`` with ``u ~ DiagGaussian(loc, scale)``: actions in ``(-1, 1)``.

    ``log_prob`` of a given action inverts the tanh (clipping to ``|a| <= 1 - 1e-6``); when
    sampling, prefer `sample_and_log_prob`, which uses the pre-tanh sample and is exact.
    There is no closed-form entropy; use ``-log_prob`` of a sample as an estimate.

    Example:
        >>> dist = TanhDiagGaussian(loc=jnp.zeros(1), scale=jnp.ones(1))
        >>> a, log_p = dist.sample_and_log_prob(seed=jax.random.key(0))
        >>> bool(jnp.all(jnp.abs(a) < 1.0))
        True
    """

    loc: jax.Array
    scale: jax.Array

    @property
    def base(self) -> DiagGaussian:
        """The pre-tanh Gaussian."""
        return DiagGaussian(loc=self.loc, scale=self.scale)

    def sample_and_log_prob(self, *, seed: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Reparameterised sample and its exact log-density (change of variables)."""
        pre_tanh = self.base.sample(seed=seed)
        log_p = self.base.log_prob(pre_tanh) - jnp.sum(_log_det_tanh_jacobian(pre_tanh), axis=-1)
        return jnp.tanh(pre_tanh), log_p

    def sample(self, *, seed: jax.Array) -> jax.Array:
        """Reparameterised sample in ``(-1, 1)``."""
        return jnp.tanh(self.base.sample(seed=seed))

    def log_prob(self, actions: jax.Array) -> jax.Array:
        """Log-density of ``actions`` in ``(-1, 1)`` (summed over the action axis)."""
        eps = 1e-6
        pre_tanh = jnp.arctanh(jnp.clip(actions, -1.0 + eps, 1.0 - eps))
        return self.base.log_prob(pre_tanh) - jnp.sum(_log_det_tanh_jacobian(pre_tanh), axis=-1)

    def mode(self) -> jax.Array:
        """``tanh(loc)``: the deterministic action."""
        return jnp.tanh(self.loc)
