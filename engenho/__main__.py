"""``python -m engenho`` is the ``engenho`` command."""

import sys

from engenho.cli import main

sys.exit(main())
