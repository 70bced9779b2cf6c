"""``python -m controller`` is the same as the ``keelson`` console script."""
import sys

from controller.cli import main

sys.exit(main())
