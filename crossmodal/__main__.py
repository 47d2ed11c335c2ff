"""`python -m crossmodal` (and `torchrun -m crossmodal`) run the command line."""

from __future__ import annotations

import sys

from crossmodal.apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
