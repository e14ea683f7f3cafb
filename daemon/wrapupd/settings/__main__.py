"""``python -m wrapupd.settings FILE``: refresh the generated settings reference in FILE."""

import sys
from pathlib import Path

from wrapupd.settings.reference import rewrite_reference

target = Path(sys.argv[1])
target.write_text(rewrite_reference(target.read_text()))
