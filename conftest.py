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
"""

import gc
import os

import pytest

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
