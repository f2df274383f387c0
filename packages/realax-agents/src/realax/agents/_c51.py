"""C51: distributional DQN over a fixed support of returns (Bellemare et al., 2017)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
from jax import Array

from . import _common as c
from . import _hparams as hp
from ._batches import Transition, as_transition
from ._dqn import DQN, DQNConfig, q_networks
from ._hparams import OPTIMIZER_HPARAMS, check_hparams, with_hparams
from ._protocols import OffPolicyAgent
from ._train_state import nonpytree_field

__all__ = ["C51", "C51Config", "project_distribution"]


@dataclasses.dataclass(frozen=True)
class C51Config(DQNConfig):
    """Hyper-parameters of `C51`: those of `DQNConfig` (``loss`` is unused: C51 minimises
    the cross-entropy to the projected target distribution) plus the support.

    The support defaults to ``[0, 100]``, the range of discounted returns of CartPole-like
    tasks (reward 1 per step, ``discount=0.99``); set ``v_min`` / ``v_max`` to the returns
    of your task (Atari's clipped rewards: ``-10`` / ``10``). With the trainer settings of
    ``realax train c51`` (those of ``realax train dqn``) the defaults solve CartPole-v1 in
    50,000 environment steps (tests/test_pqn.py).

    Attributes:
        n_atoms: number of support points.
        v_min: lowest return of the support.
        v_max: highest return of the support.
    """

    n_atoms: int = 51
    v_min: float = 0.0
    v_max: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        c.check_int("C51", "n_atoms", self.n_atoms, minimum=2)
        if not float(self.v_min) < float(self.v_max):
            raise ValueError(
                f"C51: v_min must be below v_max (got v_min={self.v_min!r}, v_max="
                f"{self.v_max!r}); e.g. v_min=-10.0, v_max=10.0"
            )

    @property
    def atoms(self) -> jax.Array:
        """The support ``linspace(v_min, v_max, n_atoms)``."""
        return jnp.linspace(self.v_min, self.v_max, self.n_atoms, dtype=jnp.float32)


def project_distribution(atoms: jax.Array, target_atoms: jax.Array, probs: jax.Array) -> jax.Array:
    """Probabilities ``probs`` on ``target_atoms`` (``(..., n)``) moved onto the evenly spaced
    ``atoms`` (``(n,)``): each target point, clipped to the support, splits its mass between
    its two neighbouring atoms in proportion to their closeness.

    Example:
        >>> atoms = jnp.array([0.0, 1.0, 2.0])
        >>> p = project_distribution(atoms, jnp.array([0.5, 2.0, 5.0]), jnp.array([0.2, 0.3, 0.5]))
        >>> [round(float(x), 3) for x in p]
        [0.1, 0.1, 0.8]
    """
    delta = atoms[1] - atoms[0]
    clipped = jnp.clip(target_atoms, atoms[0], atoms[-1])
    weights = jnp.clip(1.0 - jnp.abs(clipped[..., None, :] - atoms[:, None]) / delta, 0.0, 1.0)
    return jnp.sum(weights * probs[..., None, :], axis=-1)


class C51(DQN):
    """Distributional double DQN: the Q-network outputs, per action, logits over ``n_atoms``
    returns; the target is the target network's distribution of the next state's action
    (chosen by the online network's expected values), shifted by the reward and discount
    and projected back onto the support (`project_distribution`).

    Same contract as `DQN` (an `OffPolicyAgent` for ``OffPolicyTrainer``): `update` takes a
    `Transition` batch; `sample_actions` acts epsilon-greedily on the expected values, which
    `q_values` returns.

    Example:
        >>> obs = jnp.zeros((8, 4))
        >>> agent = C51.create(key=0, observations=obs, actions=jnp.zeros((8,), jnp.int32),
        ...                    n_actions=2, n_atoms=11)
        >>> batch = Transition(obs=obs, actions=jnp.zeros(8, jnp.int32), rewards=jnp.ones(8),
        ...                    next_obs=obs, terminated=jnp.zeros(8, bool))
        >>> agent, info = agent.update(batch)
        >>> agent.q_values(obs).shape
        (8, 2)
    """

    config: C51Config = nonpytree_field()  # type: ignore[assignment]
    #: the config numbers ``create(..., hparams=)`` can trace, as `DQN` (the support
    #: ``v_min`` / ``v_max`` / ``n_atoms`` fixes the network's shape and stays static)
    TRACEABLE: ClassVar[tuple[str, ...]] = ("learning_rate", "max_grad_norm", "discount", "tau")

    @classmethod
    def create(
        cls,
        key: Array | int,
        observations: Array,
        actions: Array,
        *,
        hparams: Mapping[str, float] | None = None,
        **config: Any,
    ) -> C51:
        """Online and target networks (identical parameters) with ``n_actions * n_atoms``
        outputs; arguments as `DQN.create` (``hparams``: `TRACEABLE` config numbers carried
        as traced float32 scalars), ``config``: fields of `C51Config`.

        Example:
            >>> C51.create(key=0, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32),
            ...            n_actions=2).config.n_atoms
            51
            >>> agent = C51.create(key=0, observations=jnp.zeros(4),
            ...                    actions=jnp.zeros((), jnp.int32), n_actions=2,
            ...                    hparams={"discount": 0.9})
            >>> float(agent.hparams["discount"])
            0.8999999761581421
        """
        cfg = c.build_config(C51Config, "C51", config)
        traced = check_hparams("C51", hparams, cls.TRACEABLE, cfg)
        inject = any(name in traced for name in OPTIMIZER_HPARAMS)
        lr = c.learning_rate(cfg)
        fields = q_networks("C51", cfg, key, observations, actions, lr, cfg.n_atoms, inject=inject)
        return with_hparams(cls(**fields, config=cfg, hparams=traced), traced)

    def _logits(self, observations: jax.Array, params: Any = None, target: bool = False):
        net = self.target_q if target else self.q
        out = net(observations, params=params)
        return out.reshape((*out.shape[:-1], -1, self.config.n_atoms))

    def _expected(self, logits: jax.Array) -> jax.Array:
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * self.config.atoms, axis=-1)

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Transition | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[C51, dict[str, jax.Array]]:
        """One cross-entropy step on ``batch`` (see `DQN.update`), then the target update.

        Returns:
            ``(new_agent, info)`` with float32 scalars ``loss`` (cross-entropy), ``q`` (mean
            expected value of the taken actions) and ``target`` (mean expected target).
        """
        batch = as_transition("C51.update", batch)
        cfg = self.config
        axis = c.axis_of(pmap_axis, cfg)
        actions = jnp.asarray(batch.actions).astype(jnp.int32)
        rewards = jnp.asarray(batch.rewards, dtype=jnp.float32)

        next_logits = self._logits(batch.next_obs, target=True)
        chooser = self._logits(batch.next_obs) if cfg.double_q else next_logits
        next_actions = jnp.argmax(self._expected(chooser), axis=-1)
        take = next_actions[..., None, None]
        next_probs = jax.nn.softmax(jnp.take_along_axis(next_logits, take, axis=-2)[..., 0, :])
        discount = hp.value(self, "discount")
        target_atoms = rewards[..., None] + discount * batch.masks[..., None] * cfg.atoms
        target = jax.lax.stop_gradient(project_distribution(cfg.atoms, target_atoms, next_probs))

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            logits = self._logits(batch.obs, params=params)
            taken = jnp.take_along_axis(logits, actions[..., None, None], axis=-2)[..., 0, :]
            log_probs = jax.nn.log_softmax(taken, axis=-1)
            loss = -jnp.mean(jnp.sum(target * log_probs, axis=-1))
            q_taken = jnp.sum(jnp.exp(log_probs) * cfg.atoms, axis=-1)
            info = {
                "loss": loss,
                "q": jnp.mean(q_taken),
                "target": jnp.mean(jnp.sum(target * cfg.atoms, axis=-1)),
            }
            return loss, info

        return self._step(loss_fn, axis)

    def _q_values(self, observations: jax.Array) -> jax.Array:
        """Expected action values ``sum_i p_i(s, .) z_i`` (what `q_values` and the
        epsilon-greedy `sample_actions` use), shape ``(..., n_actions)``."""
        return self._expected(self._logits(observations))

    @jax.jit
    def distribution(self, observations: jax.Array) -> jax.Array:
        """Return probabilities over the support, shape ``(..., n_actions, n_atoms)``."""
        return jax.nn.softmax(self._logits(observations), axis=-1)


if TYPE_CHECKING:  # C51 is what OffPolicyTrainer needs
    _: type[OffPolicyAgent] = C51
