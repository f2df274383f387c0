"""Bad input across the four packages: one table, each row a distinct mistake.

Every row asserts the exception type, that the message names the offending argument (and says
what was expected), and that nothing was compiled before the error (counted with
``jax.monitoring``), unless the row's setup needs a compiled object first. Rows that need
several devices or a missing optional suite run in one subprocess (``SUBPROCESS_ROWS``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.agents as ra
import realax.log as rlog
import realax.tasks as rt
from realax.train import EvosaxTrainer, FitnessShaper, OptaxTrainer

_COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, *a, **k: (
        _COMPILES.append(k.get("fun_name", "?"))
        if name == "/jax/core/compile/backend_compile_duration"
        else None
    )
)


_TRAINER_PROGRAMS = re.compile(
    r"jit\(_(scan_loop|fori_loop|seeds_loop|initialize|step|ask|tell|init_sample|init_finish)\)"
)


def _programs(names: list[str]) -> list[str]:
    """Compiled training programs among ``names``, leaving out the small kernels that eager
    jnp calls compile (``jit(broadcast_in_dim)``, ``jit(_reduce_sum)``, ...)."""
    return [
        n
        for n in names
        if _TRAINER_PROGRAMS.fullmatch(n) or not re.fullmatch(r"jit\(_?[a-z][a-z0-9_]*\)", n)
    ]


KEY = jax.random.key(0)


def sphere(x, key, data=None):
    return jnp.sum(x**2), {}


def es(**kw):
    args = dict(train_steps=5, strategy="SNES", task=sphere, params_like=jnp.ones(3), popsize=8)
    args.update(kw)
    return EvosaxTrainer(**args)


XS = np.zeros((32, 3), np.float32)


def mse(p, key, batch):
    return jnp.mean((batch["x"] @ p - batch["y"]) ** 2), {}


def grad(**kw):
    args = dict(
        epochs=5,
        optimizer="adam",
        initializer=lambda k: jnp.zeros(3),
        loss_fn=mse,
        dataset={"x": XS, "y": np.zeros(32, np.float32)},
        batch_size=8,
    )
    args.update(kw)
    return OptaxTrainer(**args)


def logger(tmp, **kw):
    return rlog.Logger(False, rlog.default_es_metrics, **kw)


def _run_cli(argv):
    from realax.train.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    if code:
        raise SystemExit(f"exit {code}: {err.getvalue()}")


def _saved_es_run(tmp):
    """A checkpoint written by an ES run on 3 parameters (no compiled loop needed)."""
    t = es()
    state = t.initialize(KEY)
    log = rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=tmp / "run")
    log.checkpoint_now(state)
    log.finish()
    return tmp / "run"


@dataclass
class Row:
    id: str
    make: Callable[[Any], Callable[[], Any]]  # tmp_path -> the failing call
    exc: type[BaseException]
    match: str  # must name the argument
    compiles: bool = False  # the failing call may compile (setup or after-trace checks)


def now(fn):
    """A row whose failing call needs no setup."""
    return lambda tmp: fn


ROWS = [
    # ---------------------------------------------------------------- realax.train: ES
    Row(
        "es-unknown-strategy",
        now(lambda: es(strategy="CMA-ESS")),
        ValueError,
        r"unknown strategy 'CMA-ESS'.*Did you mean 'CMA_ES'",
    ),
    Row(
        "es-strategy-not-a-name",
        now(lambda: es(strategy=42)),
        TypeError,
        r"strategy must be a name .*got int",
    ),
    Row(
        "es-removed-strategy",
        now(lambda: es(strategy="PBT")),
        ValueError,
        r"strategy 'PBT' does not exist in evosax 0.3",
    ),
    Row(
        "es-zero-steps",
        now(lambda: es(train_steps=0)),
        ValueError,
        r"train_steps must be a positive int \(got train_steps=0\)",
    ),
    Row("es-negative-steps", now(lambda: es(train_steps=-3)), ValueError, r"train_steps=-3"),
    Row(
        "es-float-steps",
        now(lambda: es(train_steps=2.5)),
        TypeError,
        r"train_steps must be a positive int \(got 2.5",
    ),
    Row("es-zero-popsize", now(lambda: es(popsize=0)), ValueError, r"popsize=0"),
    Row(
        "es-missing-popsize",
        now(lambda: es(popsize=None)),
        ValueError,
        r"popsize is required when strategy is a name",
    ),
    Row(
        "es-odd-popsize-for-antithetic",
        now(lambda: es(strategy="Open_ES", popsize=7)),
        ValueError,
        r"popsize=7.*even",
    ),
    Row("es-zero-eval-reps", now(lambda: es(eval_reps=0)), ValueError, r"eval_reps=0"),
    Row(
        "es-missing-params-like",
        now(lambda: es(params_like=None)),
        ValueError,
        r"params_like is required",
    ),
    Row(
        "es-int-params-like",
        now(lambda: es(params_like=jnp.ones(3, jnp.int32))),
        TypeError,
        r"params_like leaves must be floating arrays \(got dtype int32\)",
    ),
    Row(
        "es-empty-params-like",
        now(lambda: es(params_like={})),
        ValueError,
        r"params_like must be a pytree of arrays with at least one leaf",
    ),
    Row(
        "es-params-like-vs-task-structure",
        lambda tmp: lambda: es(task=lambda x, k, d=None: (jnp.sum(x["w"]), {})).init_and_train(KEY),
        ValueError,
        r"task\(params, key, data\) failed .*params_like=",
    ),
    Row(
        "es-params-like-vs-task-shape",
        lambda tmp: (
            lambda: es(
                task=lambda x, k, d=None: (jnp.sum(x @ jnp.ones((5,))), {}), strategy="SimpleGA"
            ).initialize(KEY)
        ),
        ValueError,
        r"shaped like params_like=float32\[3\]",
    ),
    Row(
        "es-task-not-a-tuple",
        lambda tmp: lambda: es(task=lambda x, k, d=None: jnp.sum(x)).init_and_train(KEY),
        TypeError,
        r"task must return a tuple \(fitness, info\) \(got an array \(\)\)",
    ),
    Row(
        "es-task-wrong-tuple",
        lambda tmp: lambda: es(task=lambda x, k, d=None: (jnp.sum(x), {}, 0)).init_and_train(KEY),
        TypeError,
        r"task must return a tuple \(fitness, info\) \(got tuple\)",
    ),
    Row(
        "es-task-vector-fitness",
        lambda tmp: lambda: es(task=lambda x, k, d=None: (x**2, {})).init_and_train(KEY),
        ValueError,
        r"task must return a scalar fitness \(got fitness with shape \(3,\)\)",
    ),
    Row(
        "es-task-not-callable", now(lambda: es(task="sphere")), TypeError, r"task must be callable"
    ),
    Row(
        "es-evosax-fitness-shaper",
        now(lambda: es(fitness_shaper={"maximize": True})),
        TypeError,
        r"fitness_shaper must be a realax.train.FitnessShaper",
    ),
    Row(
        "shaper-negative-w-decay",
        now(lambda: FitnessShaper(w_decay=-1.0)),
        ValueError,
        r"w_decay must be a float >= 0 \(got w_decay=-1.0\)",
    ),
    Row(
        "shaper-maximize-not-bool",
        now(lambda: FitnessShaper(maximize="yes")),
        TypeError,
        r"maximize must be True or False \(got 'yes'\)",
    ),
    Row(
        "es-bad-es-kws",
        now(lambda: es(es_kws={"sigma": 0.1})),
        TypeError,
        r"es_kws=\{'sigma': 0.1\} do not fit the constructor of 'SNES'",
    ),
    Row(
        "es-unknown-es-params-field",
        now(lambda: es(es_params={"sigma_init": 0.1})),
        ValueError,
        r"es_params has fields \['sigma_init'\] unknown to SNES",
    ),
    Row(
        "es-init-mean-shape",
        now(lambda: es(init_mean=jnp.ones(4))),
        ValueError,
        r"init_mean must have the structure and shapes of params_like",
    ),
    Row(
        "es-zero-init-std",
        now(lambda: es(init_std=0.0)),
        ValueError,
        r"init_std must be a float > 0 \(got init_std=0.0\)",
    ),
    Row(
        "es-logger-without-log",
        now(lambda: es(logger=print)),
        TypeError,
        r"logger must be None or an object with a log\(state, metrics\) method",
    ),
    Row(
        "es-int-key",
        lambda tmp: lambda: es().init_and_train(0),
        TypeError,
        r"key must be a JAX PRNG key \(got 0\)",
    ),
    Row(
        "es-float-key",
        lambda tmp: lambda: es().init_and_train(jnp.zeros(2)),
        TypeError,
        r"key must be a JAX PRNG key \(got an array of dtype float32",
    ),
    Row(
        "es-2d-key-batch",
        lambda tmp: (lambda keys: lambda: es().init_and_train(keys))(jax.random.split(KEY, (2, 2))),
        ValueError,
        r"key must be a single PRNG key or a 1-D batch of keys",
    ),
    Row("es-zero-devices", now(lambda: es(n_devices=0)), ValueError, r"n_devices=0"),
    Row(
        "es-too-many-devices",
        now(lambda: es(n_devices=64)),
        ValueError,
        r"n_devices=64 but only 1 JAX device",
    ),
    Row(
        "es-progress-bar-not-bool",
        now(lambda: es(progress_bar="yes")),
        TypeError,
        r"progress_bar must be True or False",
    ),
    Row(
        "resume-batched-state",
        lambda tmp: (lambda t, s: lambda: t.resume(s))(
            es(), es().init_and_train(jax.random.split(KEY, 2))[0]
        ),
        ValueError,
        r"resume expects a single run's state \(got state.step with shape \(2,\)\)",
        compiles=True,
    ),
    # ---------------------------------------------------------------- realax.train: optax
    Row(
        "grad-unknown-optimizer",
        now(lambda: grad(optimizer="adamm")),
        ValueError,
        r"unknown optimizer 'adamm'.*'adam'",
    ),
    Row(
        "grad-optimizer-not-a-name",
        now(lambda: grad(optimizer=3)),
        TypeError,
        r"optimizer must be an optax alias name",
    ),
    Row("grad-zero-epochs", now(lambda: grad(epochs=0)), ValueError, r"epochs=0"),
    Row(
        "grad-negative-learning-rate",
        now(lambda: grad(learning_rate=-1.0)),
        ValueError,
        r"learning_rate must be a float > 0 .*learning_rate=-1.0",
    ),
    Row(
        "grad-batch-larger-than-dataset",
        now(lambda: grad(batch_size=64)),
        ValueError,
        r"batch_size must be <= the number of examples \(got batch_size=64",
    ),
    Row(
        "grad-batch-without-dataset",
        now(lambda: grad(dataset=None, batch_size=8)),
        ValueError,
        r"batch_size=8 needs a dataset",
    ),
    Row(
        "grad-dataset-lengths-differ",
        now(lambda: grad(dataset={"x": XS, "y": np.zeros(31, np.float32)})),
        ValueError,
        r"every dataset leaf needs the same leading axis",
    ),
    Row(
        "grad-vector-loss",
        now(lambda: grad(loss_fn=lambda p, k, b: (b["x"] @ p, {}))),
        ValueError,
        r"loss_fn must return a scalar loss \(got loss with shape \(8,\)\)",
    ),
    Row(
        "grad-loss-vs-dataset-structure",
        now(lambda: grad(loss_fn=lambda p, k, b: (jnp.sum(b["inputs"] @ p), {}))),
        ValueError,
        r"loss_fn failed when traced with params .* and batch",
    ),
    Row(
        "grad-initializer-not-callable",
        now(lambda: grad(initializer=jnp.zeros(3))),
        TypeError,
        r"initializer must be callable",
    ),
    Row(
        "grad-bad-opt-kws",
        now(lambda: grad(opt_kws={"betas": 0.9})),
        TypeError,
        r"opt_kws=\{'betas': 0.9\} do not fit optax.adam",
    ),
    # ---------------------------------------------------------------- realax.log
    Row(
        "log-metrics-fn-not-callable",
        now(lambda: rlog.Logger(False, "es")),
        TypeError,
        r"metrics_fn must be a function",
    ),
    Row(
        "log-zero-ckpt-freq",
        lambda tmp: lambda: rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=tmp, ckpt_freq=0),
        ValueError,
        r"ckpt_freq must be a positive int .*ckpt_freq=0",
    ),
    Row(
        "log-zero-max-to-keep",
        lambda tmp: (
            lambda: rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=tmp, max_to_keep=0)
        ),
        ValueError,
        r"max_to_keep=0",
    ),
    Row(
        "log-wandb-log-not-bool",
        now(lambda: rlog.Logger("yes", rlog.default_es_metrics)),
        TypeError,
        r"wandb_log must be True or False",
    ),
    Row(
        "log-unknown-wandb-mode",
        now(lambda: rlog.Logger(False, rlog.default_es_metrics, mode="offlne")),
        ValueError,
        r"mode must be one of 'online', 'offline', 'disabled' \(got 'offlne'\)",
    ),
    Row(
        "log-ckpt-dir-is-a-file",
        lambda tmp: (lambda f: lambda: rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=f))(
            _touch(tmp / "file")
        ),
        NotADirectoryError,
        r"ckpt_dir '.*file' exists and is not a directory",
    ),
    Row(
        "log-unwritable-ckpt-dir",
        lambda tmp: (
            lambda f: lambda: rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=f / "run")
        )(_touch(tmp / "file")),
        OSError,
        r"ckpt_dir '.*file/run' is not a writable directory",
    ),
    Row(
        "log-run-dir-holds-a-run",
        lambda tmp: (lambda d: lambda: rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=d))(
            _saved_es_run(tmp)
        ),
        FileExistsError,
        r"ckpt_dir '.*run' already holds a run \(checkpoints at steps \[0\].*resume=True",
    ),
    Row(
        "log-resume-and-overwrite",
        lambda tmp: (
            lambda: rlog.Logger(
                False, rlog.default_es_metrics, ckpt_dir=tmp, resume=True, overwrite=True
            )
        ),
        ValueError,
        r"resume=True and overwrite=True contradict",
    ),
    Row(
        "log-resume-not-bool",
        lambda tmp: lambda: rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=tmp, resume="yes"),
        TypeError,
        r"resume must be True or False",
    ),
    Row(
        "log-checkpoint-from-another-model",
        lambda tmp: (
            lambda d: lambda: rlog.restore(d, like=es(params_like=jnp.ones(5)).initialize(KEY))
        )(_saved_es_run(tmp)),
        ValueError,
        r"does not match `like`: .*float32\(3,\) in the checkpoint but float32\(5,\) in `like`",
        compiles=True,
    ),
    Row(
        "log-restore-missing-dir",
        lambda tmp: lambda: rlog.restore(tmp / "nope", like={}),
        FileNotFoundError,
        r"ckpt_dir '.*nope' is not a directory",
    ),
    Row(
        "log-restore-empty-dir",
        lambda tmp: lambda: rlog.restore(tmp, like={}),
        FileNotFoundError,
        r"no complete checkpoint in",
    ),
    Row(
        "log-checkpoint-now-without-dir",
        now(lambda: rlog.Logger(False, rlog.default_es_metrics).checkpoint_now({"a": 1})),
        ValueError,
        r"checkpoint_now needs a Logger with a ckpt_dir",
    ),
    Row(
        "log-read-metrics-missing",
        lambda tmp: lambda: rlog.read_metrics(tmp),
        FileNotFoundError,
        r"no metrics file at .*pass the ckpt_dir \(or log_dir\)",
    ),
    Row(
        "log-metrics-fn-on-wrong-state",
        now(lambda: rlog.default_es_metrics({"a": 1}, {})),
        TypeError,
        r"default_es_metrics expects a trainer state with a `step` field",
    ),
    # ---------------------------------------------------------------- realax.tasks
    Row(
        "tasks-unknown-env",
        now(lambda: rt.make("CartPol-v1")),
        ValueError,
        r"unknown environment name 'CartPol-v1'.*'CartPole-v1'",
    ),
    Row("tasks-env-name-not-str", now(lambda: rt.make(3)), TypeError, r"env name must be a str"),
    Row(
        "tasks-unknown-suite",
        now(lambda: rt.registered_names("gym")),
        ValueError,
        r"suite must be one of .*suite='gym'",
    ),
    Row(
        "tasks-bad-env-action",
        lambda tmp: (
            lambda env: (lambda obs_state: lambda: env.step(KEY, obs_state[1], jnp.zeros((3,))))(
                env.reset(KEY)
            )
        )(rt.make("CartPole-v1")),
        ValueError,
        r"action",
        compiles=True,
    ),
    Row(
        "tasks-unknown-rollout-mode",
        now(
            lambda: rt.GymnaxTask(
                "CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True), mode="fast"
            )
        ),
        ValueError,
        r"mode must be one of .*mode='fast'",
    ),
    # ---------------------------------------------------------------- realax.agents
    Row(
        "agents-batch-not-divisible",
        now(lambda: ra.shard_batch({"obs": np.zeros((10, 3))}, n_devices=4)),
        ValueError,
        r"batch size must be divisible by n_devices \(got leading size 10 .*n_devices=4\)",
    ),
    Row(
        "agents-zero-devices",
        now(lambda: ra.shard_batch({"obs": np.zeros(4)}, n_devices=0)),
        ValueError,
        r"n_devices must be a positive integer \(got n_devices=0\)",
    ),
    Row(
        "agents-scalar-batch-leaf",
        now(lambda: ra.shard_batch({"discount": np.float32(0.9)}, n_devices=1)),
        ValueError,
        r"leading batch axis .*\['discount'\] is a scalar",
    ),
    Row(
        "agents-trainstate-bad-model",
        now(lambda: ra.TrainState.create(model_def=lambda x: x, params={})),
        TypeError,
        r"model_def must be a flax.linen.Module",
    ),
    Row(
        "agents-trainstate-bad-tx",
        now(lambda: _train_state(tx="adam")),
        TypeError,
        r"tx must be an optax.GradientTransformation or None \(got str\)",
    ),
    Row(
        "agents-trainstate-variables-as-params",
        now(lambda: _train_state(params={"params": {}, "batch_stats": {}})),
        ValueError,
        r"params looks like a full variables dict",
    ),
    # ---------------------------------------------------------------- command line config
    Row(
        "cli-config-unknown-key",
        lambda tmp: (lambda p: lambda: _run_cli(["evolve", "CartPole-v1", "--config", str(p)]))(
            _write(tmp / "c.toml", "popsiz = 8\n")
        ),
        SystemExit,
        r"exit 2: .*unknown key 'popsiz'.*popsize",
    ),
    Row(
        "cli-offline-normalize-obs",
        now(lambda: _run_cli(["train", "cql", "CartPole-v1", "--dataset", "d.npz",
                              "--normalize-obs"])),  # fmt: skip
        SystemExit,
        r"exit 2: .*--normalize-obs applies to the online algorithms .*realax train cql.*"
        r"drop --normalize-obs",
    ),
]


def _touch(path):
    path.write_text("not a directory")
    return path


def _write(path, text):
    path.write_text(text)
    return path


def _train_state(**kw):
    import flax.linen as nn

    args = dict(model_def=nn.Dense(2), params={"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(2)})
    args.update(kw)
    return ra.TrainState.create(**args)


def test_the_table_is_large_and_distinct():
    ids = [r.id for r in ROWS] + [r[0] for r in SUBPROCESS_ROWS]
    assert len(ids) == len(set(ids)) >= 40


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_bad_input(row, tmp_path):
    call = row.make(tmp_path)
    before = len(_COMPILES)
    with pytest.raises(row.exc) as info:
        call()
    assert re.search(row.match, str(info.value), re.S), str(info.value)
    if not row.compiles:
        assert not _programs(_COMPILES[before:]), "the error came after compiling"


# Rows needing 4 devices or a missing optional suite: one subprocess checks them all.
SUBPROCESS_ROWS = [
    (
        "es-popsize-not-divisible-by-devices",
        "ValueError",
        r"popsize must be divisible by n_devices \(got popsize=10, n_devices=4\); "
        r"choose popsize=12",
    ),
    (
        "grad-batch-not-divisible-by-devices",
        "ValueError",
        r"batch_size must be divisible by n_devices \(got batch_size=10, n_devices=4\)",
    ),
    (
        "grad-devices-without-dataset",
        "ValueError",
        r"n_devices=4 splits minibatches over devices and needs a dataset",
    ),
    ("missing-brax-extra", "ImportError", r'pip install "realax-tasks\[brax\]"'),
    ("missing-jumanji-extra", "ImportError", r'pip install "realax-tasks\[jumanji\]"'),
]

SUBPROCESS = textwrap.dedent(
    """
    import json, sys
    sys.modules["brax"] = None  # as if the extras were not installed
    sys.modules["jumanji"] = None
    import jax, jax.numpy as jnp, numpy as np
    import realax.tasks as rt
    from realax.train import EvosaxTrainer, OptaxTrainer
    import re
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *a, **k: compiles.append(k.get("fun_name", "?"))
        if name == "/jax/core/compile/backend_compile_duration"
        and not re.fullmatch(r"jit\([a-z][a-z0-9_]*\)", k.get("fun_name", "?")) else None)
    sphere = lambda x, key, data=None: (jnp.sum(x**2), {})
    mse = lambda p, k, b: (jnp.mean((b["x"] @ p - b["y"]) ** 2), {})
    data = {"x": np.zeros((40, 3), np.float32), "y": np.zeros(40, np.float32)}
    init = lambda k: jnp.zeros(3)
    cases = {
        "es-popsize-not-divisible-by-devices": lambda: EvosaxTrainer(
            5, "SNES", sphere, params_like=jnp.ones(3), popsize=10, n_devices=4),
        "grad-batch-not-divisible-by-devices": lambda: OptaxTrainer(
            5, "adam", init, mse, dataset=data, batch_size=10, n_devices=4),
        "grad-devices-without-dataset": lambda: OptaxTrainer(
            5, "adam", init, lambda p, k: (jnp.sum(p**2), {}), n_devices=4),
        "missing-brax-extra": lambda: rt.make("ant"),
        "missing-jumanji-extra": lambda: rt.make("Snake-v1"),
    }
    out = {}
    for name, fn in cases.items():
        before = len(compiles)
        try:
            fn()
            out[name] = None
        except Exception as e:
            out[name] = [type(e).__name__, str(e), len(compiles) - before]
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def subprocess_results():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", SUBPROCESS], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.parametrize("row", SUBPROCESS_ROWS, ids=lambda r: r[0])
def test_bad_input_needing_devices_or_missing_extras(row, subprocess_results):
    name, exc, match = row
    got = subprocess_results[name]
    assert got is not None, f"{name}: no error raised"
    assert got[0] == exc, got
    assert re.search(match, got[1], re.S), got[1]
    assert got[2] == 0, "the error came after compiling"
