"""``python -m restyle``: the same as the ``restyle`` command."""

import sys

from restyle.cli import main

sys.exit(main())
