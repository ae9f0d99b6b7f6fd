"""`python -m reports RUNS_DIR ...`: the same as `normbench report RUNS_DIR ...`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
