"""``python -m pdbench``."""

from pdbench.cli import main

raise SystemExit(main())
