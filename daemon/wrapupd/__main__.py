import sys

from wrapupd.cli import main

sys.exit(main())
