"""Side-by-side benchmarks of realax against hand-written loops and peer libraries.

Run ``uv run python -m benchmarks [--quick] [--only NAME]``; see ``BENCHMARKS.md``.
"""
