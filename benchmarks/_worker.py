"""Runs benchmark variants in this (fresh) process and prints each result as a marked JSON
line (see ``_common.emit``):

* ``python -m benchmarks._worker MODULE FUNC JSON_CFG``: one variant;
* ``python -m benchmarks._worker --batch JSON_LIST``: several ``[module, func, cfg]``
  variants one after another (``--quick`` runs a table's rows so, paying one JAX import);
  each result carries ``_index``, and a variant that raises gives ``_error`` (its traceback
  goes to stderr) without stopping the others.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback


def main() -> None:
    from benchmarks._common import emit

    if sys.argv[1] == "--batch":
        for i, (module, func, cfg) in enumerate(json.loads(sys.argv[2])):
            try:
                result = getattr(importlib.import_module(f"benchmarks.{module}"), func)(cfg)
            except Exception as e:  # noqa: BLE001 (reported per variant, the batch goes on)
                traceback.print_exc()
                emit({"_index": i, "_error": f"{type(e).__name__}: {e}"})
            else:
                emit({"_index": i, **result})
        return
    module, func, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    mod = importlib.import_module(f"benchmarks.{module}")
    emit(getattr(mod, func)(cfg))


if __name__ == "__main__":
    main()
