"""`python -m batchrecall`."""

import sys

from batchrecall.cli.main import main

sys.exit(main())
