"""``python -m wrapupd``: the same command line as the ``wrapupd`` script."""

import sys

from wrapupd.cli import main

sys.exit(main())
