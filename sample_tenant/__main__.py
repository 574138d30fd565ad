"""Entry point of `python -m sample_tenant`."""

from __future__ import annotations

import sys

from sample_tenant.cli import main

sys.exit(main())
