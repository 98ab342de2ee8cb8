"""``python -m poolgate_cli``: the ``poolgate`` command, as ``up`` starts its children."""

import sys

from poolgate_cli.main import main

sys.exit(main())
