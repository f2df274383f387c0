"""Runs one benchmark variant in this (fresh) process: ``python -m benchmarks._worker MODULE
FUNC JSON_CFG``; prints the result as a marked JSON line (see ``_common.emit``)."""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    module, func, cfg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    from benchmarks._common import emit

    mod = importlib.import_module(f"benchmarks.{module}")
    emit(getattr(mod, func)(cfg))


if __name__ == "__main__":
    main()
