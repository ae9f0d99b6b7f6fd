"""``python -m normbench``: the same as the ``normbench`` command."""

import sys

from tasks.cli import main

sys.exit(main())
