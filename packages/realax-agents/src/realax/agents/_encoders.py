"""Convolutional encoders for image and grid observations (``(..., H, W, C)``): the
Nature/Atari CNN and the IMPALA ResNet, and `resolve_encoder` that turns an agent config's
``encoder`` field into a module.

An encoder maps observations with any leading batch axes to features ``(..., features)``;
the agents put their MLP heads on top (see ``realax.agents._networks.with_encoder``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["ENCODERS", "ImpalaResNet", "NatureCNN", "check_encoder", "resolve_encoder"]

#: the encoder names an agent config's ``encoder`` field takes
ENCODERS = ("nature", "impala")

#: below this height or width the Atari kernels (8x8 stride 4, ...) do not fit
_SMALL_INPUT = 36


def _over_images(x: jax.Array, fn: Any) -> jax.Array:
    """``fn`` applied to ``x`` with its leading batch axes flattened to one, then restored."""
    batch = x.shape[:-3]
    out = fn(x.reshape((math.prod(batch), *x.shape[-3:])))
    return out.reshape((*batch, out.shape[-1]))


class NatureCNN(nn.Module):
    """The DQN Nature paper's CNN: convolutions with ReLU, then one dense layer with ReLU.

    The defaults are the Atari network (84x84 frames). `NatureCNN.sized_for` picks 3x3
    stride-1 convolutions for small grids such as MinAtar's 10x10, where the Atari kernels
    would not fit.

    Attributes:
        features: output channels of each convolution.
        kernel_sizes: square kernel size of each convolution.
        strides: stride of each convolution.
        dense: size of the output features.

    Example:
        >>> cnn = NatureCNN.sized_for((10, 10, 4))
        >>> params = cnn.init(jax.random.key(0), jnp.zeros((10, 10, 4)))
        >>> cnn.apply(params, jnp.zeros((2, 3, 10, 10, 4))).shape
        (2, 3, 128)
    """

    features: Sequence[int] = (32, 64, 64)
    kernel_sizes: Sequence[int] = (8, 4, 3)
    strides: Sequence[int] = (4, 2, 1)
    dense: int = 512

    @staticmethod
    def sized_for(obs_shape: Sequence[int]) -> NatureCNN:
        """The Atari CNN for frames of at least 36x36, else a small one (16 and 32 channels of
        3x3 stride-1 convolutions, 128 features) for grids such as MinAtar's."""
        if min(obs_shape[-3:-1]) >= _SMALL_INPUT:
            return NatureCNN()
        return NatureCNN(features=(16, 32), kernel_sizes=(3, 3), strides=(1, 1), dense=128)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def encode(images: jax.Array) -> jax.Array:
            h = images
            for f, k, s in zip(self.features, self.kernel_sizes, self.strides, strict=True):
                h = nn.relu(nn.Conv(f, (k, k), strides=(s, s), padding="VALID")(h))
            h = h.reshape((h.shape[0], -1))
            return nn.relu(nn.Dense(self.dense)(h))

        return _over_images(x, encode)


class _ResidualBlock(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = nn.Conv(self.channels, (3, 3), padding="SAME")(nn.relu(x))
        h = nn.Conv(self.channels, (3, 3), padding="SAME")(nn.relu(h))
        return x + h


class ImpalaResNet(nn.Module):
    """The IMPALA ResNet: per stage a 3x3 convolution, 3x3 max-pooling with stride 2 and
    residual blocks; then ReLU and one dense layer with ReLU.

    With ``SAME`` padding every stage halves the grid (rounding up), so it fits any input
    size (10x10 becomes 5x5, 3x3, 2x2 with the three default stages).

    Attributes:
        channels: output channels of each stage.
        blocks: residual blocks per stage.
        dense: size of the output features.

    Example:
        >>> net = ImpalaResNet(channels=(8, 16), dense=32)
        >>> params = net.init(jax.random.key(0), jnp.zeros((10, 10, 4)))
        >>> net.apply(params, jnp.zeros((5, 10, 10, 4))).shape
        (5, 32)
    """

    channels: Sequence[int] = (16, 32, 32)
    blocks: int = 2
    dense: int = 256

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def encode(images: jax.Array) -> jax.Array:
            h = images
            for ch in self.channels:
                h = nn.Conv(ch, (3, 3), padding="SAME")(h)
                h = nn.max_pool(h, (3, 3), strides=(2, 2), padding="SAME")
                for _ in range(self.blocks):
                    h = _ResidualBlock(ch)(h)
            h = nn.relu(h).reshape((h.shape[0], -1))
            return nn.relu(nn.Dense(self.dense)(h))

        return _over_images(x, encode)


def check_encoder(owner: str, encoder: Any) -> None:
    """Raise a clear error unless ``encoder`` is None, an encoder name or a flax module."""
    if encoder is None or encoder in ENCODERS or isinstance(encoder, nn.Module):
        return
    raise ValueError(
        f"{owner}: encoder must be None (flat observations), one of {list(ENCODERS)} or a "
        f"flax.linen Module mapping observations to features (got encoder={encoder!r})"
    )


def resolve_encoder(owner: str, encoder: Any, observations: jax.Array) -> nn.Module | None:
    """The encoder module of a config's ``encoder`` field for example ``observations``.

    A named encoder needs image observations ``(H, W, C)`` or ``(B, H, W, C)``; without an
    encoder the observations must be flat (``(obs_dim,)`` or ``(B, obs_dim)``). A module is
    used as it is (the caller knows its input).

    Example:
        >>> resolve_encoder("PPO", "impala", jnp.zeros((10, 10, 4))).dense
        256
        >>> resolve_encoder("PPO", None, jnp.zeros((4,))) is None
        True
    """
    check_encoder(owner, encoder)
    obs = jnp.asarray(observations)
    if isinstance(encoder, nn.Module):
        return encoder
    if encoder is None:
        if obs.ndim > 2:
            raise ValueError(
                f"{owner}.create: observations of shape {obs.shape} are images or grids but "
                f"encoder=None puts an MLP on flat observations; pass encoder='nature' or "
                "encoder='impala' (or flatten the observations)"
            )
        return None
    if obs.ndim not in (3, 4):
        raise ValueError(
            f"{owner}.create: encoder={encoder!r} needs image observations of shape (H, W, C) "
            f"or (batch, H, W, C) (got shape {obs.shape}); use encoder=None for flat "
            "observations"
        )
    if encoder == "nature":
        return NatureCNN.sized_for(obs.shape)
    return ImpalaResNet()
