"""``python -m edge_reid`` is the ``edge-reid`` command."""

import sys

from edge_reid.entry_point import main

sys.exit(main())
