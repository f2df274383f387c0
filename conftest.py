"""Workspace-wide pytest set-up: each test module's compiled programs are released after it.

JAX's jit cache keeps every executable (and, through static arguments, every trainer) alive
for the life of the process. One xdist worker runs hundreds of test modules; without this,
its memory mappings grow with every compiled program until the kernel's ``vm.max_map_count``
(65530 here) is reached and XLA's compiler crashes the worker with a segmentation fault.
"""

import gc
import os

import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    yield
    import jax

    jax.clear_caches()
    gc.collect()
    if os.environ.get("REALAX_TEST_MAPS"):  # REALAX_TEST_MAPS=1: print the mapping count
        with open("/proc/self/maps") as f:
            print(f"\n[maps after module: {sum(1 for _ in f)}]")
