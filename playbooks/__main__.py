"""Entry point of `python -m playbooks` (the local run; see `playbooks.run`)."""

from __future__ import annotations

import sys

from playbooks.run import main

sys.exit(main())
