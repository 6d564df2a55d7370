"""``python -m videozoo.verify``: see :mod:`videozoo.verify.cli`."""

import sys

from videozoo.verify.cli import main

sys.exit(main())
