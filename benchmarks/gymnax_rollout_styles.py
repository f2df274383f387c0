"""Probe: where the time of an ES generation on CartPole goes, by rollout style.

Not a table of ``python -m benchmarks``: a same-process, interleaved comparison (so machine
load hits every variant alike) of one Open_ES loop (population 128, 4 rollouts per member,
500-step episodes, 12 generations, one jitted ``lax.scan``) whose evaluation is written in
different styles:

* ``GymnaxProblem.eval``: evosax 0.3's problem class;
* ``evosax-like ..., evosax MLP``: a hand-written copy of its rollout (``lax.scan`` over
  pre-split keys, auto-resetting ``env.step``, the same keys for every member);
* ``evosax-like ...``: the same rollout with realax's ``MLPPolicy``;
* ``realax-like ...``: realax's ``GymnaxTask`` rollout (``step_env`` + ``is_truncated``, a
  ``fold_in`` key per step, distinct keys per member), as ``lax.scan`` and ``while_loop``.

"evosax MLP" vs realax ``MLPPolicy`` (same layers): one probe run showed 0.96 s against
1.65 s. It was machine noise, not a difference in the programs: compiled on their own (a
vmapped 500-step CartPole scan over 512 members, ``jit(...).lower(...).compile().as_text()``)
the two rollouts give the same optimised HLO apart from the parameters' names and order, the
same returns, and the same CPU time (92 vs 93 ms, median of 9 interleaved runs).

Run: ``uv run python benchmarks/gymnax_rollout_styles.py``
"""

import time

import gymnax
import jax
import jax.numpy as jnp
import optax
import realax.tasks as rt
from evosax.algorithms import Open_ES
from evosax.problems import MLP, GymnaxProblem

pop, reps, T, G = 128, 4, 500, 12
env, ep = gymnax.make("CartPole-v1")
policy = rt.MLPPolicy(action_dims=2, discrete=True, width=64, depth=2)
p0, _ = rt.make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
es = Open_ES(
    population_size=pop,
    solution=p0,
    optimizer=optax.adam(0.05),
    std_schedule=optax.constant_schedule(0.1),
)
esp = es.default_params


def ep_evosax_like(p, key):
    kr, ks = jax.random.split(key)
    obs, st = env.reset(kr, ep)

    def body(c, k):
        obs, st, ret, valid = c
        ka, kst = jax.random.split(k)
        a, _ = policy.apply(p, obs, None, ka)
        obs, st, r, term, trunc, _ = env.step(kst, st, a, ep)
        return (obs, st, ret + r * valid, valid * (1 - (term | trunc))), None

    (_, _, ret, _), _ = jax.lax.scan(body, (obs, st, 0.0, 1.0), jax.random.split(ks, T))
    return ret


def ep_realax_like(p, key, loop="scan"):
    kr, _, kl = jax.random.split(key, 3)
    obs, st = env.reset_env(kr, ep)

    def step(obs, st, t):
        ka, ke = jax.random.split(jax.random.fold_in(kl, t))
        ks, _ = jax.random.split(ke)
        a, _ = policy.apply(p, obs, None, ka)
        obs, st, r, term, _ = env.step_env(ks, st, a, ep)
        return obs, st, r, term | env.is_truncated(st, ep)

    if loop == "scan":

        def body(c, t):
            obs, st, ret, alive = c
            obs, st, r, d = step(obs, st, t)
            return (obs, st, ret + jnp.where(alive, r, 0.0), alive & ~d), None

        (_, _, ret, _), _ = jax.lax.scan(body, (obs, st, 0.0, True), jnp.arange(T))
        return ret

    def cond(c):
        return (~c[3]) & (c[4] < T)

    def body(c):
        obs, st, ret, done, t = c
        obs, st, r, d = step(obs, st, t)
        return obs, st, ret + r, d, t + 1

    return jax.lax.while_loop(cond, body, (obs, st, 0.0, False, 0))[2]


def make(fn, shared):
    def run(s, key):
        def gen(s, k):
            ka, ke, kt = jax.random.split(k, 3)
            popn, s = es.ask(ka, s, esp)
            inner = jax.vmap(fn, in_axes=(None, 0))
            if shared:
                f = jax.vmap(inner, in_axes=(0, None))(popn, jax.random.split(ke, reps))
            else:
                f = jax.vmap(inner, in_axes=(0, 0))(popn, jax.random.split(ke, (pop, reps)))
            f = f.mean(1)
            s, _ = es.tell(kt, popn, -f, s, esp)
            return s, f.max()

        return jax.lax.scan(gen, s, jax.random.split(key, G))

    return jax.jit(run)


emlp = MLP(layer_sizes=(64, 64, 2), output_fn=lambda x, key=None: jnp.argmax(x, -1))
prob = GymnaxProblem(
    "CartPole-v1", policy=emlp, episode_length=T, num_rollouts=reps, use_normalize_obs=False
)
rp = p0["params"]
S = {"params": {"Dense_0": rp["hidden_0"], "Dense_1": rp["hidden_1"], "Dense_2": rp["action_head"]}}
es2 = Open_ES(
    population_size=pop,
    solution=S,
    optimizer=optax.adam(0.05),
    std_schedule=optax.constant_schedule(0.1),
)
ps0 = prob.init(jax.random.key(0))


def make_prob():
    def run(s, key):
        def gen(s, k):
            ka, ke, kt = jax.random.split(k, 3)
            popn, s = es2.ask(ka, s, esp)
            f, _, _ = prob.eval(ke, popn, ps0)
            s, _ = es2.tell(kt, popn, -f, s, esp)
            return s, f.max()

        return jax.lax.scan(gen, s, jax.random.split(key, G))

    return jax.jit(run)


def ep_evosax_mlp(p, key):
    kr, ks = jax.random.split(key)
    obs, st = env.reset(kr, ep)

    def body(c, k):
        obs, st, ret, valid = c
        ka, kst = jax.random.split(k)
        a = emlp.apply(p, obs, ka)
        obs, st, r, term, trunc, _ = env.step(kst, st, a, ep)
        return (obs, st, ret + r * valid, valid * (1 - (term | trunc))), None

    (_, _, ret, _), _ = jax.lax.scan(body, (obs, st, 0.0, 1.0), jax.random.split(ks, T))
    return ret


def make2(fn):
    def run(s, key):
        def gen(s, k):
            ka, ke, kt = jax.random.split(k, 3)
            popn, s = es2.ask(ka, s, esp)
            inner = jax.vmap(fn, in_axes=(None, 0))
            f = jax.vmap(inner, in_axes=(0, None))(popn, jax.random.split(ke, reps)).mean(1)
            s, _ = es2.tell(kt, popn, -f, s, esp)
            return s, f.max()

        return jax.lax.scan(gen, s, jax.random.split(key, G))

    return jax.jit(run)


s0 = es.init(jax.random.key(0), p0, esp)
s02 = es2.init(jax.random.key(0), S, esp)
cands = {
    "GymnaxProblem.eval": make_prob(),
    "evosax-like scan, shared keys, evosax MLP": make2(ep_evosax_mlp),
    "evosax-like scan, shared keys": make(ep_evosax_like, True),
    "realax-like scan, per-member keys": make(ep_realax_like, False),
    "realax-like while, per-member keys": make(lambda p, k: ep_realax_like(p, k, "while"), False),
}
k = jax.random.key(1)
S0 = {n: (s02 if ("Gymnax" in n or "evosax MLP" in n) else s0) for n in cands}
for n, f in cands.items():
    jax.block_until_ready(f(S0[n], k))
res = {n: [] for n in cands}
for _ in range(3):
    for n, f in cands.items():
        t = time.perf_counter()
        out = jax.block_until_ready(f(S0[n], k))
        res[n].append(time.perf_counter() - t)
        res[n + " best"] = [round(float(x)) for x in out[1]]
for n, v in res.items():
    print(n, v if "best" in n else f"median {sorted(v)[1]:.2f} s for {G} gens")
