"""The ``realax`` command line (placeholder while it is being written)."""


def main(argv=None) -> int:
    raise SystemExit("realax: the command line is not ready yet")
