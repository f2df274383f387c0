"""Table 3 -- ES on brax environments (positional backend), episodes of 200 steps.

Population 128 (= 128 simulated episodes per generation in every variant), an MLP with four
hidden layers of 32, observation normalisation with running statistics, Open_ES-style search
(sigma 0.1, Adam 0.01, antithetic pairs, centered ranks):

* ``realax``: ``EvosaxTrainer`` + ``BraxTask(obs_norm=True)`` with its default
  ``compact="auto"``, which chooses per population by batch size and step cost (here: the
  compact early exit, stepping only the running members once at most a quarter of the
  population is left; the choice is in the note), evosax ``Open_ES``;
* ``realax, compact=False``: the same forced to the plain vmapped ``while_loop`` (every
  member is stepped until the longest episode ends; the default before ``"auto"``);
* ``evosax BraxProblem``: evosax 0.3's own brax problem (``lax.scan`` over all 200 steps, with
  brax's auto-reset wrapper) with the same ``Open_ES``, in a hand-written jitted scan;
* ``brax ES``: ``brax.training.agents.es.train`` (population_size 64 = 128 episodes with the
  antithetic ones). It stops after ``num_timesteps`` *valid* env-steps; it is given the number
  of valid env-steps the realax row processed in its generations (same env-step budget; it may
  take a different number of generations), and its run time includes one final evaluation of
  128 episodes. It builds new jitted functions on
  every call; compile time is subtracted from run time.
"""

from __future__ import annotations

from typing import Any

ENVS = ("inverted_pendulum", "hopper")


def plan(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for env in ENVS[:1] if quick else ENVS:
        cfg = {
            "env": env,
            "popsize": 16 if quick else 128,
            "max_steps": 50 if quick else 200,
            "gens": 2 if quick else 10,
            "width": 32,
            "depth": 4,
            "lr": 0.01,
            "std": 0.1,
            "repeats": 1 if quick else 3,
        }
        variants = (
            ("realax", "realax EvosaxTrainer + BraxTask default (compact='auto')", True),
            ("realax_plain", "realax, BraxTask(compact=False) forced", True),
            ("evosax_problem", "evosax 0.3 BraxProblem", False),
            ("brax_es", "brax.training.agents.es.train", False),
        )
        # brax compiles slowly (tens of seconds per variant): --quick checks realax's path only
        for func, label, realax in variants[:1] if quick else variants:
            c = dict(cfg)
            if func == "brax_es":  # rebuilds and recompiles on every call: fewer repeats
                c["repeats"] = 0 if quick else 2
            rows.append(
                {
                    "group": env,
                    "label": label,
                    "module": "brax_es",
                    "func": func,
                    "cfg": c,
                    "realax": realax,
                    "optional": func == "brax_es",
                }
            )
    return rows


def prepare(row: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """brax's ES trainer stops after ``num_timesteps`` *valid* env-steps: give it the number of
    valid env-steps the realax row processed in its generations (the same env-step budget)."""
    if row["func"] != "brax_es":
        return
    done = [r for r in rows if r["group"] == row["group"] and r["func"] == "realax"]
    if done and done[0].get("ok"):
        row["cfg"] = dict(row["cfg"], num_timesteps=int(done[0]["result"]["valid_steps"]))


def _open_es(solution, cfg):
    import optax
    from evosax.algorithms import Open_ES

    return Open_ES(
        population_size=cfg["popsize"],
        solution=solution,
        optimizer=optax.adam(cfg["lr"]),
        std_schedule=optax.constant_schedule(cfg["std"]),
    )


def realax(cfg, compact="auto"):
    import jax
    import jax.numpy as jnp
    import realax.tasks as rt
    from realax.train import EvosaxTrainer, FitnessShaper

    from benchmarks._common import measure
    from benchmarks.neuroevolution import CountingTask

    env = rt.make(cfg["env"])
    policy = rt.MLPPolicy.from_env(env, width=cfg["width"], depth=cfg["depth"])
    task = rt.BraxTask(cfg["env"], cfg["max_steps"], policy=policy, obs_norm=True, compact=compact)
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))
    trainer = EvosaxTrainer(
        cfg["gens"],
        _open_es(params, cfg),
        CountingTask(task),
        params_like=params,
        fitness_shaper=FitnessShaper(maximize=True),
    )
    state0 = trainer.initialize(jax.random.key(1))
    res = measure(lambda: jax.block_until_ready(trainer.train(state0)), cfg["repeats"])
    state, metrics = res["out"]
    res["valid_steps"] = float(state.data["steps"])
    res["gens_run"] = cfg["gens"]
    res["final_return"] = float(metrics["fitness_mean"][-1])
    if task.compact_choices:  # the population's batch is the largest traced
        n = max(task.compact_choices)
        res["note"] = f"compact='auto' chose {task.compact_choices[n]!r} for {n} members"
    return res


def realax_plain(cfg):
    return realax(cfg, compact=False)


def evosax_problem(cfg):
    import jax
    import jax.numpy as jnp
    from evosax.problems import MLP, BraxProblem, tanh_output_fn

    from benchmarks._common import measure

    probe = BraxProblem(
        cfg["env"],
        policy=MLP(layer_sizes=(1,)),
        episode_length=2,
        env_kwargs={"backend": "positional"},
    )
    act = probe.action_shape[0]
    policy = MLP(layer_sizes=(cfg["width"],) * cfg["depth"] + (act,), output_fn=tanh_output_fn)
    problem = BraxProblem(
        cfg["env"],
        policy=policy,
        episode_length=cfg["max_steps"],
        num_rollouts=1,
        use_normalize_obs=True,
        env_kwargs={"backend": "positional"},
    )
    solution = problem.sample(jax.random.key(0))
    strategy = _open_es(solution, cfg)
    es_params = strategy.default_params
    k_init, k_prob, k_run = jax.random.split(jax.random.key(1), 3)
    es0 = strategy.init(k_init, solution, es_params)
    p0 = problem.init(k_prob)

    @jax.jit
    def run(es_state, p_state):
        def gen(carry, key):
            es_state, p_state = carry
            k_ask, k_eval, k_tell = jax.random.split(key, 3)
            population, es_state = strategy.ask(k_ask, es_state, es_params)
            fit, p_state, info = problem.eval(k_eval, population, p_state)
            es_state, _ = strategy.tell(k_tell, population, -fit, es_state, es_params)
            done = info["env_states"].done  # (pop, rollouts, T); a step is valid until done
            alive_before = jnp.cumprod(1.0 - done, axis=-1)
            valid = jnp.concatenate([jnp.ones_like(done[..., :1]), alive_before[..., :-1]], axis=-1)
            return (es_state, p_state), (jnp.sum(valid), jnp.mean(fit))

        return jax.lax.scan(gen, (es_state, p_state), jax.random.split(k_run, cfg["gens"]))

    res = measure(lambda: jax.block_until_ready(run(es0, p0)), cfg["repeats"])
    _, (steps, mean_fit) = res["out"]
    res["valid_steps"] = float(jnp.sum(steps))
    res["gens_run"] = cfg["gens"]
    res["final_return"] = float(mean_fit[-1])
    res["note"] = "tanh actions in [-1, 1] (evosax's MLP head)"
    return res


def brax_es(cfg):
    from brax import envs
    from brax.training.agents.es import train as es

    from benchmarks._common import measure

    last = {}

    def progress(steps, metrics):
        last["steps"] = int(steps)
        last["metrics"] = {k: float(v) for k, v in metrics.items()}

    def call():
        env = envs.get_environment(cfg["env"], backend="positional")
        es.train(
            environment=env,
            num_timesteps=cfg.get("num_timesteps", cfg["gens"] * cfg["popsize"] * cfg["max_steps"]),
            episode_length=cfg["max_steps"],
            population_size=cfg["popsize"] // 2,
            learning_rate=cfg["lr"],
            perturbation_std=cfg["std"],
            fitness_shaping=es.FitnessShaping.CENTERED_RANK,
            normalize_observations=True,
            num_evals=1,
            num_eval_envs=cfg["popsize"],
            seed=0,
            progress_fn=progress,
            network_factory=_brax_network(cfg),
        )
        return dict(last)

    res = measure(call, cfg["repeats"])
    m = res["out"]["metrics"]
    res["valid_steps"] = res["out"]["steps"]
    per_gen_all = cfg["popsize"] * cfg["max_steps"]
    # brax's own per-epoch figure (last epoch, all simulated steps / epoch time)
    res["brax_training_sps"] = m.get("training/sps")
    res["gens_run"] = None
    res["final_return"] = m.get("training/eval_scores_mean", m.get("eval/episode_reward"))
    res["eval_episode_reward"] = m.get("eval/episode_reward")
    res["note"] = (
        f"runs until {cfg.get('num_timesteps', cfg['gens'] * per_gen_all):,} valid steps "
        "(realax's count); run time includes "
        f"a final {cfg['popsize']}-episode evaluation; "
        + (
            f"median of {cfg['repeats']} warm runs (each recompiles)"
            if cfg["repeats"]
            else "cold run net of compile"
        )
    )
    return res


def _brax_network(cfg):
    import functools

    from brax.training.agents.es import networks as es_networks
    from flax import linen

    return functools.partial(
        es_networks.make_es_networks,
        hidden_layer_sizes=(cfg["width"],) * cfg["depth"],
        activation=linen.tanh,
    )


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, ratio_note, short_error, table

    cfg = rows[0]["cfg"] if rows else {}
    out = [
        f"Population {cfg.get('popsize')}, episodes of {cfg.get('max_steps')} steps, "
        f"{cfg.get('gens')} generations, MLP {cfg.get('depth')}x{cfg.get('width')} (tanh), "
        "observation normalisation, sigma 0.1, Adam 0.01, centered ranks. Run = median of "
        f"{cfg.get('repeats')} warm run(s) (brax ES: see note); env-steps/s counts valid steps "
        "(up to the end of each episode).",
        "",
    ]
    body = []
    for env in ENVS:
        group = [r for r in rows if r["group"] == env]
        best_other = max(
            (
                r["result"]["valid_steps"] / r["result"]["run_s"]
                for r in group
                if not r["realax"] and r.get("ok")
            ),
            default=None,
        )
        for r in group:
            res = r.get("result") or {}
            if not r.get("ok"):
                body.append(
                    [env, r["label"], "not run", "", "", "", "", "", short_error(r["error"])]
                )
                continue
            sps = res["valid_steps"] / res["run_s"]
            body.append(
                [
                    env,
                    r["label"],
                    fmt_s(res["compile_s"]),
                    fmt_s(res["run_s"]),
                    fmt_rate(sps),
                    f"{res['final_return']:.1f}",
                    fmt_mem(r.get("peak_rss_mb")),
                    ratio_note(sps, best_other) if r["realax"] else "",
                    res.get("note", ""),
                ]
            )
    out.append(
        table(
            [
                "env",
                "variant",
                "compile (s)",
                "run (s)",
                "valid env-steps/s",
                "final mean return",
                "peak RSS",
                "env-steps/s realax / best other",
                "note",
            ],
            body,
        )
    )
    return "\n".join(out)
