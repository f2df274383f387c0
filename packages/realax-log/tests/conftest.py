"""Shared fixtures: a hand-written training state and an offline wandb environment."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from jax import lax


@dataclasses.dataclass(frozen=True)
class ToyState:
    """A trainer-like state: step counter, typed PRNG key, parameters, optional data.

    A plain dataclass registered as a pytree (realax-log itself depends on jax only, not flax).
    """

    step: jax.Array
    key: jax.Array
    params: dict
    opt: tuple
    data: dict | None = None

    @classmethod
    def create(cls, *, key: jax.Array, dim: int = 3) -> ToyState:
        return cls(
            step=jnp.int32(0),
            key=key,
            params={"w": jnp.zeros((dim,)), "b": jnp.ones((2, 2), jnp.bfloat16)},
            opt=(jnp.zeros((dim,)), jnp.int32(7)),
            data={"mean": jnp.zeros((dim,))},
        )

    @classmethod
    def seeds(cls, n: int, key: jax.Array | None = None) -> ToyState:
        """``n`` states with a leading seed axis (keys split from ``key``)."""
        keys = jax.random.split(jax.random.key(0) if key is None else key, n)
        return jax.vmap(lambda k: cls.create(key=k))(keys)

    def replace(self, **changes) -> ToyState:
        return dataclasses.replace(self, **changes)


def train(logger, state: ToyState, n: int, *, seeds: bool = False, step_fn=None) -> ToyState:
    """The toy trainer's loop: ``n`` steps in ``jit(lax.scan)``, ``logger.log`` after each
    (``logger`` may be ``None``); vmapped over the leading seed axis with ``seeds``."""
    step_fn = toy_step if step_fn is None else step_fn

    def run(state):
        def body(state, _):
            state, metrics = step_fn(state)
            if logger is not None:
                logger.log(state, metrics)
            return state, None

        return lax.scan(body, state, None, length=n)[0]

    return jax.jit(jax.vmap(run) if seeds else run)(state)


ToyState.train = staticmethod(train)  # the toy trainer's loop, where `toy` is at hand

jax.tree_util.register_dataclass(
    ToyState, data_fields=["step", "key", "params", "opt", "data"], meta_fields=[]
)


def toy_step(state: ToyState) -> tuple[ToyState, dict]:
    """One noisy step whose randomness comes from fold_in(state.key, state.step)."""
    k = jax.random.fold_in(state.key, state.step)
    w = state.params["w"] + jax.random.normal(k, state.params["w"].shape)
    loss = jnp.sum(w**2)
    state = state.replace(
        step=state.step + 1,
        params={**state.params, "w": w},
        opt=(state.opt[0] * 0.5 + w, state.opt[1] + 1),
        data={"mean": state.data["mean"] + w},
    )
    return state, {"step": state.step, "loss": loss, "best_loss": loss, "vec": w}


@pytest.fixture
def toy():
    return ToyState, toy_step


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """WANDB_MODE=offline with its files under tmp_path; returns that directory."""
    wandb_dir = tmp_path / "wandb_root"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    return wandb_dir
