"""``python -m stgcn`` (also what ``torchrun -m stgcn`` runs)."""

import sys

from stgcn.cli.main import main

sys.exit(main())
