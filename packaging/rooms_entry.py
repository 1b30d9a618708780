"""What the single binary runs: the installed ``rooms`` command (``server:main``), as ``pip install .`` gives it."""

import sys

from server import main

sys.exit(main())
