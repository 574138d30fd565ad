"""
The replay indicators: one registered rule per signal over the user's picture.

A signal is like a detection rule's hit: a stable id, the points it adds, a sentence naming the
facts, and the IPs it implicates. Each rule is declared once, with its weight, the explanations that
cover it and the reason it weighs what it does (`rule.rule`), in the module of its family:

- `sessions`: one Entra session seen from another AS, off its device, or in another browser;
- `network`: token use from networks the user is not known on, at once, too far apart, or rented;
- `clients`: token, client and device evidence against what the user uses;
- `habits`: hours and volume against the baseline days;
- `corroboration`: Identity Protection detections and security-info changes.

`catalogue` collects them (`CATALOGUE`, `WEIGHTS`) and runs them (`detect`). Rules read a `Picture`
built once per user (`enrichment.domain.picture`) and a `Cover` saying which IPs benign explanations
cover for which rule, so an explained IP is never called suspect by a signal its explanation accounts
for, and nothing else is waived.

Everything here is pure: no clock (the incident time is `evidence.at`), no I/O, no settings beyond
what is passed in. Costs stay O(n log n) in the number of rows: sweeps over time-sorted rows
(`sweeps`), groups by IP and by session, never pairs of rows.
"""

from __future__ import annotations

from enrichment.domain.signals.catalogue import CATALOGUE, FAMILIES, RULES, WEIGHTS, detect, tuned
from enrichment.domain.signals.rule import Check, Cover, Rule, rule
from enrichment.domain.signals.sessions import browser_family
from enrichment.domain.signals.sweeps import haversine_km

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "RULES",
    "WEIGHTS",
    "Check",
    "Cover",
    "Rule",
    "browser_family",
    "detect",
    "haversine_km",
    "rule",
    "tuned",
]
