"""`python -m batchrecall`."""

import sys

from batchrecall.cli.entry import main

sys.exit(main())
