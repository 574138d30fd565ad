"""
The catalogue: every rule, collected from the family modules, in the order signals are reported.

Nothing here lists a signal: a rule exists because its family module declares it (`rule.rule`), and
it is reported in family order, then in the order the module declares its rules. A new rule is one
decorated function in the family it belongs to; a new family is one module added to `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import ModuleType

from enrichment.domain.attribution import attribute
from enrichment.domain.model import Signal
from enrichment.domain.picture import Picture
from enrichment.domain.signals import activity, clients, corroboration, habits, network, sessions
from enrichment.domain.signals.rule import Cover, Rule

#: The family modules, in report order.
FAMILIES: tuple[ModuleType, ...] = (sessions, network, clients, habits, corroboration, activity)


def collect(families: Iterable[ModuleType]) -> tuple[Rule, ...]:
    """The rules each module declares (not the ones it imports), in declaration order; ids are unique."""
    found = tuple(
        value
        for module in families
        for value in vars(module).values()
        if isinstance(value, Rule) and value.detector.__module__ == module.__name__
    )
    ids = [r.id for r in found]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        msg = f"signal ids declared twice: {', '.join(repeated)}"
        raise ValueError(msg)
    return found


RULES: tuple[Rule, ...] = collect(FAMILIES)
#: Signal id -> its rule (weight, what explains it away, the reason), in report order.
CATALOGUE: Mapping[str, Rule] = {r.id: r for r in RULES}
#: Signal id -> points, the view most callers need.
WEIGHTS: Mapping[str, int] = {r.id: r.weight for r in RULES}
_ORDER = {r.id: index for index, r in enumerate(RULES)}


def tuned(weights: Iterable[tuple[str, int]] = ()) -> tuple[Rule, ...]:
    """
    The rules with an organisation's weights (REPLAY_SIGNAL_WEIGHTS: id -> points): a rule weighed 0
    is not run at all, so it neither adds points nor implicates an IP that other rules read.
    """
    chosen = dict(weights)
    unknown = sorted(chosen.keys() - CATALOGUE.keys())
    if unknown:
        msg = f"no signal rule named {', '.join(unknown)}"
        raise ValueError(msg)
    return tuple(replace(r, weight=chosen[r.id]) if r.id in chosen else r for r in RULES if chosen.get(r.id, r.weight) > 0)


def detect(p: Picture, cover: Cover, rules: tuple[Rule, ...] = RULES, skip: frozenset[str] = frozenset()) -> tuple[Signal, ...]:
    """
    Every signal that fires, in catalogue order; the `after_others` rules see what the others implicate.

    Rules named in `skip` are not run (their columns are absent: see `enrichment.domain.coverage`).
    """
    rules = tuple(r for r in rules if r.id not in skip) if skip else rules
    found = [signal for r in rules if not r.after_others and (signal := r.evaluate(p, cover)) is not None]
    suspects = frozenset(ip for signal in found for ip in signal.ips)
    after = [r for r in rules if r.after_others]
    sessions = attribute(p.evidence, suspects) if after and suspects else ()
    found += [signal for r in after if (signal := r.evaluate(p, cover, suspects, sessions)) is not None]
    return tuple(sorted(found, key=lambda s: _ORDER[s.id]))
