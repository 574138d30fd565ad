"""Entry point of `python -m playbooks.permissions` (the grant script's and the README's command line; see `playbooks.cli.permissions`)."""

from __future__ import annotations

import sys

from playbooks.cli.permissions import main

if __name__ == "__main__":
    sys.exit(main())
