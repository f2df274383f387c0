"""EvoJAX side of table 2 (run by ``python -m benchmarks`` with this project's own Python).

EvoJAX 0.2.17's ``Trainer`` on gymnax's ``GymnaxToEvoJaxTask`` (CartPole-v1), with EvoJAX's
native PGPE (its ``OpenES`` wraps the pre-0.2 evosax API, which cannot be installed beside
today's jax) and an MLP of the same shape as the realax policy, taking the argmax action.

Usage: ``.venv/bin/python cartpole.py evojax '<json config>'``; prints one result line.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from evojax import Trainer  # noqa: E402
from evojax.algo import PGPE  # noqa: E402
from evojax.policy.base import PolicyNetwork  # noqa: E402
from evojax.policy.mlp import MLP  # noqa: E402
from evojax.util import get_params_format_fn  # noqa: E402
from gymnax.wrappers.evojax import GymnaxToEvoJaxTask  # noqa: E402

from benchmarks._common import compile_seconds, emit, measure  # noqa: E402

ENV = "CartPole-v1"


class ArgmaxMLPPolicy(PolicyNetwork):
    """EvoJAX's MLP (tanh hidden layers) whose action is the argmax of its output."""

    def __init__(self, in_dim, hidden, out_dim):
        model = MLP(feat_dims=hidden, out_dim=out_dim, out_fn="softmax")
        params = model.init(jax.random.PRNGKey(0), jnp.ones([1, in_dim]))
        self.num_params, fmt = get_params_format_fn(params)
        self._format_params_fn = jax.vmap(fmt)
        self._forward_fn = jax.vmap(model.apply)

    def get_actions(self, t_states, params, p_states):
        probs = self._forward_fn(self._format_params_fn(params), t_states.obs)
        return jnp.argmax(probs, axis=-1), p_states


def evojax(cfg):
    records = []
    quiet = logging.getLogger("bench-evojax")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    target = cfg["target"]

    class RecordingPGPE(PGPE):
        def tell(self, fitness):
            f = jnp.asarray(fitness)
            records.append((time.perf_counter(), compile_seconds(), float(f.max()),
                            float(f.mean())))
            return super().tell(fitness)

    def run():
        records.clear()
        start = (time.perf_counter(), compile_seconds())
        policy = ArgmaxMLPPolicy(4, [cfg["width"]] * cfg["depth"], 2)
        solver = RecordingPGPE(
            pop_size=cfg["popsize"], param_size=policy.num_params, optimizer="adam",
            center_learning_rate=cfg["lr"], init_stdev=cfg["std"], seed=0, logger=quiet,
        )
        trainer = Trainer(
            policy=policy, solver=solver,
            train_task=GymnaxToEvoJaxTask(ENV, max_steps=cfg["max_steps"]),
            test_task=GymnaxToEvoJaxTask(ENV, max_steps=cfg["max_steps"], test=True),
            max_iter=cfg["gens"], log_interval=10**9, test_interval=10**9,
            n_repeats=cfg["reps"], test_n_repeats=1, n_evaluations=1, seed=0,
            log_dir=tempfile.mkdtemp(prefix="evojax_bench_"), logger=quiet,
        )
        trainer.run()
        ttt = None
        for t, c, best, _ in records:
            if best >= target:
                ttt = (t - start[0]) - (c - start[1])
                break
        return {"ttt": ttt, "curve": list(records)}

    res = measure(run, cfg["repeats"])
    curve = res["out"]["curve"]
    res["valid_steps"] = sum(mean for *_, mean in curve) * cfg["popsize"] * cfg["reps"]
    res["final_mean_return"] = curve[-1][3]
    res["final_best_return"] = curve[-1][2]
    res["time_to_target_s"] = res["out"]["ttt"]
    res["gens_to_target"] = next(
        (i + 1 for i, r in enumerate(curve) if r[2] >= target), None
    )
    res["best_curve"] = [round(r[2], 1) for r in curve]
    res["note"] = ("PGPE (EvoJAX's Open_ES needs evosax<0.2); builds new jitted functions on "
                   "every Trainer, compile time subtracted from run time")
    import evojax

    res["version"] = evojax.__version__ if hasattr(evojax, "__version__") else "0.2.17"
    return res


if __name__ == "__main__":
    func, cfg = sys.argv[1], json.loads(sys.argv[2])
    emit(globals()[func](cfg))
