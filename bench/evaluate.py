"""
The measured comparison: the replay score against two baseline hunts, on generated tenants, seed by seed.

    .venv/bin/python bench/evaluate.py                          # five seeds (7 31 59 101 202), 360 users, 20 variants
    .venv/bin/python bench/evaluate.py --seeds 7 --users 80 --variants 5     # a quick look while iterating
    .venv/bin/python bench/evaluate.py --data DIR [DIR ...]     # tenants already generated (python -m sample_tenant)
    .venv/bin/python bench/evaluate.py --settings tuned.json    # also score with tuned settings and show the effect
    .venv/bin/python bench/evaluate.py --markdown               # also print the README's tables

For every seed it generates a sample tenant with `python -m sample_tenant` (attack scenarios, benign
look-alikes and ordinary users, each with its ground truth in scenarios.json), loads the exports into
the embedded engine, gathers each scenario's evidence with the product's own queries
(`gather_evidence`), scores it with `assess`, and runs the baseline KQL hunts (bench/baseline_detectors.py)
over the same window. Per family it prints replays caught (attacks) or false positives (look-alikes,
ordinary users) at replay_likely and at suspicious, whether every attacker address was named a suspect,
whether each look-alike carried its expected explanation, and the baselines beside ours. The grey zone
(kind "grey": benign stories nothing in the evidence can clear, such as a new home line on a new laptop,
or a trip with no travel record) is counted apart: each should land at its `expected_verdict`,
`suspicious`, neither accused nor cleared. `--details` lists every miss and false positive with its signals.

`--settings FILE` takes a Functions local.settings.json (or a plain JSON object of settings) whose
values override the tenant's own settings.json: the tuned weights and thresholds an organisation would
deploy. The evidence is gathered once (with the tuned settings if they change the evidence window) and
scored twice, so the table shows the tuned result and its difference from the defaults.

Targets, on every seed: recall >= 98% at replay_likely, false positives <= 2% of look-alikes at
replay_likely, every attacker address named in >= 98% of replays, the expected explanation on every
look-alike, every grey story `suspicious`. Exit status 0 when all are met (by the tuned settings when given), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_detectors import DETECTORS

from common.settings import Settings
from common.times import parse_utc
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.domain.model import Account, Assessment, UserEvidence, Verdict
from enrichment.domain.scoring import assess
from enrichment.services.gather import gather_evidence

SEEDS = (7, 31, 59, 101, 202)
RECALL_TARGET = 0.98
FP_TARGET = 0.02
NAMED_TARGET = 0.98
KINDS = ("attack", "benign", "grey", "ordinary")
#: Settings that change what is gathered, not only how it is scored.
_GATHERING = ("window_before_hours", "window_after_hours", "baseline_days", "row_cap", "travel_watchlist")


@dataclass
class Outcome:
    """One scenario's result: ours (default and tuned settings), the baselines', and the ground truth."""

    scenario: dict[str, Any]
    assessment: Assessment
    tuned: Assessment | None
    baselines: dict[str, tuple[str, ...]]
    seconds: float

    @property
    def kind(self) -> str:
        return str(self.scenario["kind"])

    @property
    def family(self) -> str:
        return str(self.scenario["family"])


def likely(a: Assessment) -> bool:
    return a.verdict is Verdict.REPLAY_LIKELY


def suspicious(a: Assessment) -> bool:
    return a.verdict in (Verdict.REPLAY_LIKELY, Verdict.SUSPICIOUS)


def attacker_named(o: Outcome, a: Assessment) -> bool:
    """Every address the attacker used the victim's tokens from is among the suspects (the one to block, the one to search)."""
    return set(o.scenario.get("attacker_ips") or []) <= set(a.suspect_ips)


def right_explanation(o: Outcome, a: Assessment) -> bool:
    """Every address the truth says is the user's own carries the expected explanation kind."""
    expected = o.scenario.get("expected_explanation")
    if not expected:
        return True
    found = {(e.ip, e.kind.value) for e in a.explanations}
    return all((ip, expected) in found for ip in o.scenario.get("explained_ips") or [])


def at_expected_verdict(o: Outcome, a: Assessment) -> bool:
    """The verdict the truth expects (grey stories: `suspicious`); older tenants without the field expect none."""
    expected = o.scenario.get("expected_verdict")
    return expected is None or a.verdict.value == expected


def victim_suspect(o: Outcome, a: Assessment) -> bool:
    return bool(set(o.scenario.get("victim_ips") or []) & set(a.suspect_ips))


@dataclass(frozen=True, slots=True)
class Tally:
    """A count out of a total, printed as 'hit/total'."""

    hit: int
    total: int

    @classmethod
    def of(cls, outcomes: Iterable[Outcome], test: Callable[[Outcome], bool]) -> Tally:
        group = list(outcomes)
        return cls(sum(1 for o in group if test(o)), len(group))

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.hit + other.hit, self.total + other.total)

    @property
    def rate(self) -> float:
        return self.hit / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.hit}/{self.total}" if self.total else "-"


@dataclass
class SeedResult:
    """One tenant's outcomes and the figures the targets are judged on."""

    seed: int | str
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, kind: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == kind]

    def figures(self, tuned: bool = False) -> dict[str, Tally]:
        def pick(o: Outcome) -> Assessment:
            return o.tuned if tuned and o.tuned is not None else o.assessment

        attacks, benign = self.of("attack"), self.of("benign")
        figures = {
            "recall": Tally.of(attacks, lambda o: likely(pick(o))),
            "recall_suspicious": Tally.of(attacks, lambda o: suspicious(pick(o))),
            "named": Tally.of(attacks, lambda o: attacker_named(o, pick(o))),
            "fp": Tally.of(benign, lambda o: likely(pick(o))),
            "fp_suspicious": Tally.of(benign, lambda o: suspicious(pick(o))),
            "explained": Tally.of(benign, lambda o: right_explanation(o, pick(o))),
            "ordinary_fp": Tally.of(self.of("ordinary"), lambda o: likely(pick(o))),
            "grey": Tally.of(self.of("grey"), lambda o: at_expected_verdict(o, pick(o))),
            "grey_likely": Tally.of(self.of("grey"), lambda o: likely(pick(o))),
        }
        for name in (d.name for d in DETECTORS):
            figures[f"{name} recall"] = Tally.of(attacks, lambda o, name=name: bool(o.baselines[name]))
            figures[f"{name} fp"] = Tally.of(benign, lambda o, name=name: bool(o.baselines[name]))
        return figures

    def met(self, tuned: bool = False) -> bool:
        f = self.figures(tuned)
        return (
            f["recall"].total > 0
            and f["recall"].rate >= RECALL_TARGET
            and f["fp"].rate <= FP_TARGET
            and f["named"].rate >= NAMED_TARGET
            and f["explained"].hit == f["explained"].total
            and f["grey"].hit == f["grey"].total
        )


# ----------------------------------------------------------------------------------------------------
# Generating and scoring
# ----------------------------------------------------------------------------------------------------


def generate(out: Path, *, seed: int, users: int, variants: int) -> None:
    """Run the sample-tenant generator (its command line is the contract)."""
    command = [sys.executable, "-m", "sample_tenant", "--out", str(out), "--users", str(users), "--variants", str(variants)]
    command += ["--seed", str(seed)]
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1])


def overrides(path: Path) -> dict[str, str]:
    """The setting values of a local.settings.json ('Values') or of a plain JSON object."""
    document = json.loads(path.read_text(encoding="utf-8-sig"))
    values = document.get("Values", document) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        msg = f"{path}: expected a JSON object of settings (or a local.settings.json with 'Values')"
        raise SystemExit(msg)
    return {str(k): str(v) for k, v in values.items()}


def tenant_settings(data: Path, tuned: Mapping[str, str] | None) -> tuple[Settings, Settings | None]:
    """The tenant's own settings, and the same with the tuned values on top (None without a tuning file)."""
    values = json.loads((data / "settings.json").read_text(encoding="utf-8"))["Values"]
    base = Settings.from_values(values)
    return base, (Settings.from_values({**values, **tuned}) if tuned is not None else None)


def evaluate(data: Path, seed: int | str, tuned_values: Mapping[str, str] | None = None) -> SeedResult:
    base, tuned = tenant_settings(data, tuned_values)
    gathering = base if tuned is None or all(getattr(base, n) == getattr(tuned, n) for n in _GATHERING) else None
    scenarios = json.loads((data / "scenarios.json").read_text(encoding="utf-8"))
    result = SeedResult(seed)
    with EmbeddedEngine.open(data) as engine:
        for scenario in scenarios:
            at = parse_utc(scenario["at"])
            account = [Account(upn=scenario["user"])]
            began = time.perf_counter()
            (evidence,) = gather_evidence(engine, account, at, gathering or base)
            assessment = assess(evidence, base)
            seconds = time.perf_counter() - began
            second: Assessment | None = None
            if tuned is not None:
                tuned_evidence: UserEvidence = evidence if gathering else gather_evidence(engine, account, at, tuned)[0]
                second = assess(tuned_evidence, tuned)
            baselines = {d.name: d.flagged(engine, scenario["user"], evidence.window) for d in DETECTORS}
            result.outcomes.append(Outcome(scenario, assessment, second, baselines, seconds))
    return result


# ----------------------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------------------


def _families(outcomes: Sequence[Outcome]) -> list[tuple[str, str, list[Outcome]]]:
    order = {kind: n for n, kind in enumerate(KINDS)}
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.family, []).append(o)
    return sorted(((name, group[0].kind, group) for name, group in groups.items()), key=lambda f: (order.get(f[1], 9), f[0]))


def _judged(group: Sequence[Outcome], kind: str) -> Tally | str:
    """The family's 'right' column: look-alikes by their explanation, grey stories by their verdict."""
    if kind == "benign":
        return Tally.of(group, lambda o: right_explanation(o, o.assessment))
    if kind == "grey":
        return Tally.of(group, lambda o: at_expected_verdict(o, o.assessment))
    return "-"


def family_table(result: SeedResult, tuned: bool) -> None:
    """Per family: ours at replay_likely and suspicious, attacker named, right explanation, victim suspect, the hunts."""
    names = [d.name for d in DETECTORS]
    print(
        f"\nseed {result.seed}: attacks count replays caught; look-alikes and ordinary users count false positives; "
        "'right' is the expected explanation (look-alikes) or verdict (grey)."
    )
    header = f"{'family':<26}{'kind':<9}{'n':>4}  {'@likely':>8}  {'@susp':>6}  {'named':>6}  {'right':>6}  {'victim':>6}"
    header += "".join(f"  {n:>14}" for n in names) + f"  {'score min/med/max':>17}"
    if tuned:
        header += f"  {'tuned @likely':>13}  {'tuned named':>11}"
    print(header)
    print("-" * len(header))
    for name, kind, group in _families(result.outcomes):
        attack = kind == "attack"
        line = f"{name:<26}{kind:<9}{len(group):>4}  {Tally.of(group, lambda o: likely(o.assessment))!s:>8}"
        line += f"  {Tally.of(group, lambda o: suspicious(o.assessment))!s:>6}"
        line += f"  {str(Tally.of(group, lambda o: attacker_named(o, o.assessment))) if attack else '-':>6}"
        line += f"  {_judged(group, kind)!s:>6}"
        line += f"  {Tally.of(group, lambda o: victim_suspect(o, o.assessment))!s:>6}"
        for detector in names:
            line += f"  {Tally.of(group, lambda o, d=detector: bool(o.baselines[d]))!s:>14}"
        scores = sorted(o.assessment.score for o in group)
        line += f"  {f'{scores[0]}/{scores[len(scores) // 2]}/{scores[-1]}':>17}"
        if tuned:
            line += f"  {Tally.of(group, lambda o: o.tuned is not None and likely(o.tuned))!s:>13}"
            line += (
                f"  {str(Tally.of(group, lambda o: o.tuned is not None and attacker_named(o, o.tuned))) if attack else '-':>11}"
            )
        print(line)


def _summary_line(label: str, f: Mapping[str, Tally]) -> str:
    names = [d.name for d in DETECTORS]
    line = f"{label:<10} {f['recall']!s:>9} {f['recall'].rate:6.1%}  {f['fp']!s:>8} {f['fp'].rate:5.1%}"
    line += f"  {f['named']!s:>9} {f['named'].rate:6.1%}  {f['explained']!s:>9}  {f['recall_suspicious']!s:>9}  {f['fp_suspicious']!s:>8}"
    line += f"  {f['ordinary_fp']!s:>6}  {f['grey']!s:>9}"
    for name in names:
        line += f"  {f[f'{name} recall'].rate:6.1%} / {f[f'{name} fp'].rate:5.1%}"
    return line


def summary(results: Sequence[SeedResult], tuned: bool) -> bool:
    """One line per seed (and per seed tuned); returns whether every seed met every target."""
    names = [d.name for d in DETECTORS]
    header = f"{'seed':<10} {'recall @likely':>16}  {'look-alike FP':>14}  {'attacker named':>16}  {'expl ok':>9}  {'@susp':>9}  {'FP susp':>8}"
    header += f"  {'ord FP':>6}  {'grey susp':>9}" + "".join(f"  {n + ' rec/FP':>16}" for n in names)
    print("\n" + header)
    print("-" * len(header))
    for result in results:
        print(_summary_line(str(result.seed), result.figures()))
        if tuned:
            print(_summary_line(f"{result.seed} tuned", result.figures(tuned=True)))
    timings = sorted(o.seconds for r in results for o in r.outcomes)
    if timings:
        print(f"gather + assess per incident, median / max: {timings[len(timings) // 2]:.2f}s / {timings[-1]:.2f}s")
    met = all(r.met(tuned) for r in results)
    which = "tuned settings" if tuned else "default settings"
    print(
        f"targets on every seed ({which}): recall >= {RECALL_TARGET:.0%}, look-alike FP <= {FP_TARGET:.0%}, "
        f"attacker named >= {NAMED_TARGET:.0%}, every explanation right, every grey story suspicious: "
        + ("met" if met else "NOT met")
    )
    return met


def markdown(results: Sequence[SeedResult]) -> None:
    """The README tables: per family across seeds, then per seed beside the hunts."""
    names = [d.name for d in DETECTORS]
    seeds = [str(r.seed) for r in results]
    print(
        "\n| family | kind | "
        + " | ".join(f"seed {s}" for s in seeds)
        + " | attacker named | right explanation | "
        + " | ".join(names)
        + " |"
    )
    print("|---|---|" + "---|" * (len(seeds) + 2 + len(names)))
    every = [o for r in results for o in r.outcomes]
    for name, kind, _ in _families(every):
        cells = []
        for result in results:
            group = [o for o in result.outcomes if o.family == name]
            cells.append(
                f"{Tally.of(group, lambda o: likely(o.assessment))} ({Tally.of(group, lambda o: suspicious(o.assessment)).hit} susp.)"
            )
        group = [o for o in every if o.family == name]
        named = str(Tally.of(group, lambda o: attacker_named(o, o.assessment))) if kind == "attack" else "-"
        explained = str(_judged(group, kind))
        hunts = [str(Tally.of(group, lambda o, d=d: bool(o.baselines[d]))) for d in names]
        print(f"| {name} | {kind} | " + " | ".join(cells) + f" | {named} | {explained} | " + " | ".join(hunts) + " |")
    print(
        "\n| seed | recall @ replay_likely | look-alike FP @ replay_likely | attacker named | right explanation | grey suspicious | "
        + " | ".join(f"{n} recall / FP" for n in names)
        + " |"
    )
    print("|---|---|---|---|---|---|" + "---|" * len(names))
    for result in results:
        f = result.figures()
        hunts = [f"{f[f'{n} recall'].rate:.1%} / {f[f'{n} fp'].rate:.0%}" for n in names]
        print(
            f"| {result.seed} | {f['recall']} ({f['recall'].rate:.1%}) | {f['fp']} | {f['named']} ({f['named'].rate:.1%}) | "
            f"{f['explained']} | {f['grey']} | " + " | ".join(hunts) + " |"
        )


def details(results: Sequence[SeedResult]) -> None:
    print("\nMisses, false positives, unnamed attackers, missing explanations and the user's own addresses called suspect:")
    for result in results:
        for o in result.outcomes:
            a = o.assessment
            wrong = (
                (o.kind == "attack" and (not likely(a) or not attacker_named(o, a)))
                or (o.kind in ("benign", "ordinary") and suspicious(a))
                or not at_expected_verdict(o, a)
                or not right_explanation(o, a)
                or (victim_suspect(o, a) and o.kind != "grey")
            )
            if not wrong:
                continue
            print(
                f"- seed {result.seed} {o.scenario['id']} ({o.kind}) score {a.score} {a.verdict.value}; suspects {list(a.suspect_ips)[:6]}"
            )
            print(
                f"    truth: attacker {o.scenario.get('attacker_ips')} explained {o.scenario.get('explained_ips')[:6]} "
                f"traits {o.scenario.get('traits')}"
            )
            for s in a.signals:
                print(f"    +{s.weight:<3} {s.id}: {s.detail[:220]}")
            for e in a.explanations:
                if e.ip in (o.scenario.get("explained_ips") or []) or e.ip in (o.scenario.get("attacker_ips") or []):
                    print(f"    ~ {e.kind.value} {e.ip}")


# ----------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="Evaluate the replay score against baseline hunts on generated tenants.")
    parser.add_argument("--data", type=Path, nargs="+", help="already generated tenant folder(s) (skips generation)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(SEEDS), help=f"seeds to generate (default {' '.join(map(str, SEEDS))})"
    )
    parser.add_argument("--seed", type=int, help="one seed (the same as --seeds N)")
    parser.add_argument("--users", type=int, default=360)
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="generate into DIR/seed-N and keep the tenants")
    parser.add_argument("--settings", type=Path, help="a local.settings.json of tuned settings to score with as well")
    parser.add_argument("--details", action="store_true", help="list every miss and false positive with its signals")
    parser.add_argument("--markdown", action="store_true", help="print the README tables")
    args = parser.parse_args()
    tuned = overrides(args.settings) if args.settings else None

    results: list[SeedResult] = []
    if args.data:
        for folder in args.data:
            results.append(evaluate(folder, folder.name, tuned))
            family_table(results[-1], tuned is not None)
    else:
        seeds = [args.seed] if args.seed is not None else args.seeds
        with tempfile.TemporaryDirectory(prefix="replay-eval-") as scratch:
            for seed in seeds:
                out = (args.keep or Path(scratch)) / f"seed-{seed}"
                generate(out, seed=seed, users=args.users, variants=args.variants)
                results.append(evaluate(out, seed, tuned))
                family_table(results[-1], tuned is not None)
    met = summary(results, tuned is not None)
    if args.markdown:
        markdown(results)
    if args.details:
        details(results)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
