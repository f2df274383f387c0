"""Workspace-wide pytest set-up: compiled programs are released when a worker holds too many.

JAX's jit cache keeps every executable (and, through static arguments, every trainer) alive
for the life of the process. One xdist worker runs hundreds of test modules; without a
release, its memory mappings grow with every compiled program until the kernel's
``vm.max_map_count`` (65530 here) is reached and XLA's compiler crashes the worker with a
segmentation fault.

Releasing after *every* module made the suite slower (small eager programs shared by the
modules, and the doctests' examples, were compiled again and again), so the caches are cleared
after a module only when the worker's mapping count is past ``REALAX_TEST_MAPS_LIMIT``
(default 20000, under a third of the kernel's limit; one module adds at most ~2,500).
``REALAX_TEST_MAPS=1`` prints the count after every module.

JAX's persistent compilation cache is OFF by default: in the first clean-clone CI with it on
(for every worker, doctest and subprocess), the suite took 72 minutes instead of 24 (the cause
is not isolated; JAX's cache with a size limit takes a file lock and scans the directory on
writes). ``REALAX_TEST_JAX_CACHE=DIR`` (or ``on``: a temporary directory removed at the end)
turns it on for the session: the workers, the doctests and every subprocess a test starts
(they inherit the environment) then load what another compiled. A cached executable is the
same binary, so bit-identity tests stay bit-identical; programs with host callbacks (a
Logger's) are never cached by JAX.
"""

import gc
import importlib.util
import os
import shutil
import tempfile

import pytest

_CACHE_VARS = {
    # every program, however small or fast to compile: the tests compile thousands of them
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}
_OWN_CACHE = None  # the temporary cache directory this process created (and removes)


def _set_up_compilation_cache() -> None:
    """Point JAX (not imported yet) and every child process at one compilation cache."""
    global _OWN_CACHE
    wanted = os.environ.get("REALAX_TEST_JAX_CACHE", "off")
    if wanted == "off":
        os.environ.setdefault("REALAX_COMPILE_CACHE", "off")  # nor the CLI's own default
        return
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return  # off, or set by the caller (or by the controller, for an xdist worker)
    if wanted != "on":
        os.makedirs(wanted, exist_ok=True)
        directory = wanted
    else:
        directory = _OWN_CACHE = tempfile.mkdtemp(prefix="realax-test-jax-cache.")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
    if importlib.util.find_spec("filelock") is not None:
        # a size limit turns on JAX's file lock: a worker never reads an entry another process
        # is still writing (without filelock, as in the isolated member runs, such a rare read
        # fails with a warning and the program is compiled instead)
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))
    for name, value in _CACHE_VARS.items():
        os.environ.setdefault(name, value)


_set_up_compilation_cache()


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


_LIMIT = int(os.environ.get("REALAX_TEST_MAPS_LIMIT", "20000"))


def _mappings() -> int:
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux: no /proc, release every time
        return _LIMIT + 1


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    yield
    before = _mappings()
    if before > _LIMIT:
        import jax

        jax.clear_caches()
        gc.collect()
    if os.environ.get("REALAX_TEST_MAPS"):
        print(f"\n[maps after module: {before} -> {_mappings()}]")


def pytest_collection_modifyitems(config, items):
    """The modules holding slow tests first (each keeps its order): xdist's loadscope hands
    out whole modules, so a long module that starts last would leave the other worker idle
    at the end of the run; the many quick modules fill the end instead."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)
