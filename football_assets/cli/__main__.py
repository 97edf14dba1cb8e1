"""`python -m football_assets.cli`, as the `football-assets` script runs it."""

import sys

from football_assets.cli import main

sys.exit(main())
