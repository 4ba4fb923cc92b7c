"""``python -m cloudarb`` is the ``cloudarb`` command."""

from cloudarb.cli.main import main

main()
