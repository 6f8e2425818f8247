"""``python -m stgcn`` (also what ``torchrun -m stgcn`` runs)."""

import sys

from stgcn.cli import main

sys.exit(main())
