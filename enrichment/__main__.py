"""Entry point of `python -m enrichment`."""

from __future__ import annotations

import sys

from enrichment.cli.triage import main

sys.exit(main())
