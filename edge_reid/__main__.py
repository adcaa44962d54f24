"""``python -m edge_reid`` is the ``edge-reid`` command."""

from edge_reid.cli import main

main()
