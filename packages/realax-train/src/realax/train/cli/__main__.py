"""``python -m realax.train.cli``: the ``realax`` command."""

from realax.train.cli import main

raise SystemExit(main())
