"""`python -m batchrecall`."""

import sys

from batchrecall.cli import main

sys.exit(main())
