"""The CLI's persistent compilation cache: on by default, its directory chosen by
``REALAX_COMPILE_CACHE`` (or JAX's own setting, else ``~/.cache/realax/jax``), and every
compiling command reports its compiles and cache hits (console line and summary.json).

No wall-clock assert: the second identical run must report cache hits, not be faster.
"""

from __future__ import annotations

import json
import subprocess

import jax
import pytest
from realax.train.cli import _cache
from test_cli import COMMAND, _env

TINY = ["--generations", "2", "--popsize", "8", "--width", "8", "--depth", "1"]
TINY += ["--eval-reps", "1", "--wandb", "off", "--no-render"]
_OPTIONS = (
    "jax_enable_compilation_cache",
    "jax_compilation_cache_dir",
    "jax_compilation_cache_max_size",
    "jax_persistent_cache_min_compile_time_secs",
)


@pytest.mark.slow
def test_a_second_identical_run_loads_its_programs_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {**_env(tmp_path), "REALAX_COMPILE_CACHE": str(cache)}
    summaries, lines = [], []
    for out in ("first", "second"):
        args = ["evolve", "CartPole-v1", *TINY, "--out", f"runs/{out}"]
        p = subprocess.run(
            [*COMMAND, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert p.returncode == 0, p.stderr[-3000:]
        lines.append(p.stdout.strip().splitlines()[-1])
        summaries.append(json.loads((tmp_path / "runs" / out / "summary.json").read_text()))
        if out == "first":
            assert any(cache.iterdir()), "the first run wrote nothing to the cache"
    first, second = (s["compile"] for s in summaries)
    assert first["dir"] == second["dir"] == str(cache)
    assert second["programs"] == first["programs"] > 0
    # everything but the logged loop (host callbacks are never cached) comes from the cache
    assert second["hits"] > first["hits"]
    assert second["hits"] >= second["programs"] // 2, second
    for line, s in zip(lines, (first, second), strict=True):
        assert line == f"realax: compiled {_cache.report(s)}", line


@pytest.fixture
def jax_cache_options():
    saved = {name: getattr(jax.config, name) for name in _OPTIONS}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


def test_where_the_cache_goes(tmp_path, monkeypatch, jax_cache_options):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_MAX_SIZE", raising=False)  # conftest's
    assert _cache.default_dir() == tmp_path / "xdg" / "realax" / "jax"
    monkeypatch.setenv("REALAX_COMPILE_CACHE", "off")
    assert _cache.enable() is None
    assert not jax.config.jax_enable_compilation_cache
    assert _cache.report(_cache.stats()).endswith("(compilation cache off)")
    monkeypatch.setenv("REALAX_COMPILE_CACHE", str(tmp_path / "mine"))
    assert _cache.enable() == str(tmp_path / "mine")
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    # not set: JAX's own setting is kept, else the default directory
    monkeypatch.delenv("REALAX_COMPILE_CACHE")
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax's"))
    assert _cache.enable() == str(tmp_path / "jax's")
    jax.config.update("jax_compilation_cache_dir", None)
    assert _cache.enable() == str(tmp_path / "xdg" / "realax" / "jax")
    if _cache._has_filelock():  # JAX's eviction needs it
        assert jax.config.jax_compilation_cache_max_size == _cache.MAX_BYTES
