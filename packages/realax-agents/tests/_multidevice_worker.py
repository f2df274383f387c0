"""Run in a subprocess by test_pmap_agents.py, with 4 host CPU devices forced by XLA_FLAGS.

For every check it compares a data-parallel update (the batch split with `shard_batch`, the
state copied with `replicate`, gradients averaged over ``pmap_axis``) against one device
updating on the whole batch, and prints one JSON object of measured differences on stdout.
The assertions live in the test, so a failure names the check and shows the numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time

N_DEVICES = 4
if f"--xla_force_host_platform_device_count={N_DEVICES}" not in os.environ.get("XLA_FLAGS", ""):
    sys.exit("XLA_FLAGS must force 4 host devices before jax is imported")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, PartitionSpec  # noqa: E402
from realax.agents import (  # noqa: E402
    DQN,
    MLP,
    PPO,
    SAC,
    ContinuousBC,
    DiscreteBC,
    TrainState,
    replicate,
    shard_batch,
    unreplicate,
)

AXIS = "devices"
B = 64  # whole batch; 16 rows per device
HIDDEN = (32, 32)
UPDATES = 2  # consecutive updates: optimiser state, keys and target networks carry over


def _arrays(tree):
    """Leaves as float64 numpy arrays (typed PRNG keys as their key data)."""

    def conv(x):
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x, dtype=np.float64)

    return [conv(x) for x in jax.tree.leaves(tree)]


def max_diff(a, b) -> float:
    la, lb = _arrays(a), _arrays(b)
    assert len(la) == len(lb)
    return max(float(np.max(np.abs(x - y), initial=0.0)) for x, y in zip(la, lb, strict=True))


def device_spread(replicated) -> float:
    """Largest difference between any device's copy and device 0's (0.0 = identical)."""
    return max(float(np.max(np.abs(x - x[:1]), initial=0.0)) for x in _arrays(replicated) if x.ndim)


def compare(name, agent, batch, *, shard=shard_batch):
    """Single device on the whole batch vs pmap on the sharded batch, UPDATES times."""
    t0 = time.perf_counter()
    single = agent
    for _ in range(UPDATES):
        single, info = single.update(batch)

    pupdate = jax.pmap(lambda a, b: a.update(b, pmap_axis=AXIS), axis_name=AXIS)
    rep = replicate(agent)
    sharded = shard(batch)
    for _ in range(UPDATES):
        rep, pinfo = pupdate(rep, sharded)

    return {
        "name": name,
        "diff_vs_single": max_diff(unreplicate(rep), single),
        "info_diff": max(abs(float(pinfo[k][0]) - float(info[k])) for k in info),
        "device_spread": device_spread(rep),
        "info_spread": device_spread(pinfo),
        # how far the parameters moved: the comparison is not vacuous
        "moved": max_diff(_params(single), _params(agent)),
        "step": int(getattr(unreplicate(rep), _net(agent)).step),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _net(agent) -> str:
    return next(f for f in ("actor", "q", "model") if hasattr(agent, f))


def _params(agent):
    """The parameters of every network of an agent (not steps, keys or optimiser state)."""
    return [v.params for v in vars(agent).values() if isinstance(v, TrainState)]


def _obs(seed, shape):
    return jax.random.normal(jax.random.key(seed), shape)


def agent_checks():
    key = jax.random.key(0)
    out = []
    obs = _obs(1, (B, 4))

    # Behaviour cloning, discrete and continuous.
    acts = (obs[:, 0] + obs[:, 1] > 0).astype(jnp.int32)
    bc = DiscreteBC.create(key, obs, acts, n_actions=2, hidden_dims=HIDDEN)
    out.append(compare("DiscreteBC", bc, {"observations": obs, "actions": acts}))

    cacts = jnp.tanh(obs[:, :2] * jnp.array([1.0, -0.5]))
    cbc = ContinuousBC.create(key, obs, cacts, hidden_dims=HIDDEN)
    out.append(compare("ContinuousBC", cbc, {"observations": obs, "actions": cacts}))

    # DQN with a Polyak target updated every step (so the target depends on the averaging).
    dqn = DQN.create(
        key, obs, acts, n_actions=3, hidden_dims=HIDDEN, tau=0.5, target_update_period=1
    )
    dqn_batch = {
        "observations": obs,
        "actions": jax.random.randint(jax.random.key(2), (B,), 0, 3),
        "rewards": obs[:, 2],
        "next_observations": _obs(3, (B, 4)),
        "masks": (jnp.arange(B) % 5 != 0).astype(jnp.float32),
    }
    out.append(compare("DQN", dqn, dqn_batch))

    # PPO, one minibatch and one epoch: the step is a function of the whole rollout, so it
    # must equal one device exactly (advantage normalisation uses all devices' statistics).
    ppo_cfg = {"n_actions": 2, "hidden_dims": HIDDEN, "learning_rate": 1e-3}
    ppo = PPO.create(key, obs, acts, num_minibatches=1, update_epochs=1, **ppo_cfg)
    a, logp, v = ppo.act(obs, seed=jax.random.key(4))
    adv = obs[:, 0] + 0.5 * a
    ppo_batch = {
        "observations": obs,
        "actions": a,
        "log_probs": logp,
        "values": v,
        "advantages": adv,
        "returns": adv + v,
    }
    out.append(compare("PPO", ppo, ppo_batch))

    # PPO computing GAE itself on a time-major rollout (T, N): shard the environment axis,
    # so every device holds whole trajectories of its environments.
    T, N = 8, 16
    robs = _obs(5, (T, N, 4))
    ra, rlogp, rv = ppo.act(robs, seed=jax.random.key(6))
    rollout = {
        "observations": robs,
        "actions": ra,
        "log_probs": rlogp,
        "values": rv,
        "rewards": robs[..., 0] + 0.5 * ra,
        "dones": jax.random.bernoulli(jax.random.key(7), 0.2, (T, N)),
        "last_values": jnp.zeros(N),
    }

    def shard_envs(batch):
        def split(x):
            if x.shape[0] == N:  # last_values: (N,)
                return shard_batch(x)
            return jnp.moveaxis(shard_batch(jnp.moveaxis(x, 1, 0)), 1, 2)

        return jax.tree.map(split, batch)

    out.append(compare("PPO (GAE inside, envs sharded)", ppo, rollout, shard=shard_envs))

    # PPO with shuffled minibatches: devices shuffle their own shards, so the step differs
    # from one device's shuffle of the whole rollout; the devices must still agree exactly.
    ppo_mb = PPO.create(key, obs, acts, num_minibatches=2, update_epochs=2, **ppo_cfg)
    out.append(compare("PPO (2 minibatches x 2 epochs)", ppo_mb, ppo_batch))

    # SAC: actions sampled inside the update use one key per global row.
    sac = SAC.create(key, obs, cacts, hidden_dims=HIDDEN)
    sac_batch = {
        "observations": obs,
        "actions": cacts,
        "rewards": obs[:, 3],
        "next_observations": _obs(3, (B, 4)),
        "masks": jnp.ones(B),
    }
    out.append(compare("SAC", sac, sac_batch))
    return out


def train_state_checks():
    """TrainState.apply_loss_fn(pmap_axis=...) under pmap and under shard_map."""
    x = _obs(10, (B, 3))
    y = jnp.sin(x @ jnp.array([[1.0], [-2.0], [0.5]]))
    model_def = MLP(hidden_dims=(16, 1))
    params = model_def.init(jax.random.key(0), x)["params"]
    state = TrainState.create(model_def, params, tx=optax.adam(1e-2))

    def step(state, batch, axis=None):
        def loss_fn(p):
            loss = jnp.mean((state(batch["x"], params=p) - batch["y"]) ** 2)
            return loss, {"loss": loss}

        return state.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)

    batch = {"x": x, "y": y}
    single, info = jax.jit(step)(state, batch)
    rep, pinfo = jax.pmap(lambda s, b: step(s, b, AXIS), axis_name=AXIS)(
        replicate(state), shard_batch(batch)
    )

    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:  # jax < 0.7
        from jax.experimental.shard_map import shard_map
    mesh = Mesh(np.asarray(jax.devices()), (AXIS,))
    sm = jax.jit(
        shard_map(
            lambda s, b: step(s, b, AXIS),
            mesh=mesh,
            in_specs=(PartitionSpec(), PartitionSpec(AXIS)),
            out_specs=PartitionSpec(),
        )
    )
    sm_state, sm_info = sm(state, batch)

    # Batch-norm statistics in extra_variables, averaged over devices with has_updates.
    class BN(nn.Module):
        @nn.compact
        def __call__(self, v, train=False):
            return nn.Dense(1)(nn.BatchNorm(use_running_average=not train, momentum=0.5)(v))

    variables = BN().init(jax.random.key(1), x)
    bn = TrainState.create(
        BN(),
        variables["params"],
        tx=optax.sgd(0.1),
        extra_variables={"batch_stats": variables["batch_stats"]},
    )

    def bn_step(s, b, axis=None):
        def loss_fn(p):
            out, upd = s(b["x"], params=p, train=True, mutable=["batch_stats"])
            return jnp.mean((out - b["y"]) ** 2), upd

        return s.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_updates=True)

    bn_rep = jax.pmap(lambda s, b: bn_step(s, b, AXIS), axis_name=AXIS)(
        replicate(bn), shard_batch(batch)
    )
    bn_single = jax.jit(bn_step)(bn, batch)
    mean_key = ("batch_stats", "BatchNorm_0", "mean")

    def pick(tree, path):
        for k in path:
            tree = tree[k]
        return tree

    return {
        "pmap_diff": max_diff(unreplicate(rep), single),
        "pmap_spread": device_spread(rep),
        "pmap_loss_diff": abs(float(pinfo["loss"][0]) - float(info["loss"])),
        "shard_map_diff": max_diff(sm_state, single),
        "shard_map_loss_diff": abs(float(sm_info["loss"]) - float(info["loss"])),
        "moved": max_diff(single.params, state.params),
        # the running mean of per-device batch means is the whole batch's running mean
        "bn_mean_diff": max_diff(
            pick(unreplicate(bn_rep).extra_variables, mean_key),
            pick(bn_single.extra_variables, mean_key),
        ),
        "bn_spread": device_spread(bn_rep.extra_variables),
        "bn_moved": max_diff(bn_single.extra_variables, bn.extra_variables),
    }


def main() -> None:
    assert jax.local_device_count() == N_DEVICES, jax.devices()
    result = {
        "devices": jax.local_device_count(),
        "agents": agent_checks(),
        "train_state": train_state_checks(),
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
