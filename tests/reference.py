"""Where the shared reference material lives: `../shared/reference` beside the checkout (as CI places it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
