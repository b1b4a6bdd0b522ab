"""``python -m pdctl``."""

import sys

from pdctl.cli import main

sys.exit(main())
