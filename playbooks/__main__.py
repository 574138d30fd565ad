"""Entry point of `python -m playbooks` (the local run; see `playbooks.cli.run`)."""

from __future__ import annotations

import sys

from playbooks.cli.run import main

sys.exit(main())
