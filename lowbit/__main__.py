"""``python -m lowbit``: the ``lowbit`` command line."""

import sys

from lowbit.sw.cli import main

sys.exit(main())
