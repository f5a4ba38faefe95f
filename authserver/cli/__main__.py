"""``python -m authserver.cli``: the same as the ``authserver`` console script."""

import sys

from authserver.cli import main

sys.exit(main())
