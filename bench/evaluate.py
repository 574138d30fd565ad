"""
The measured comparison: the replay score against two baseline detections on a generated tenant.

One command:

    .venv/bin/python bench/evaluate.py --seed 7            # generate a tenant, evaluate, print the table
    .venv/bin/python bench/evaluate.py --data DIR          # evaluate a tenant already generated

It generates a sample tenant with `python -m sample_tenant` (attack scenarios, benign look-alikes and
ordinary users, each with its ground truth in scenarios.json), loads the exports into the embedded
engine, gathers each scenario's evidence with the product's own queries (`gather_evidence`), scores
it with `assess`, and runs the baseline KQL detections (bench/baseline_detectors.py) over the same
window. Per family it prints detections (attacks) or false positives (look-alikes, ordinary users)
at replay_likely and at suspicious, whether each look-alike carried the right explanation, and the
baselines beside ours. `--details` lists every miss and false positive with its signals.

Targets: recall >= 0.95 on attacks and <= 5% false positives on look-alikes at replay_likely, and the
right explanation on every look-alike. Exit status 0 when all are met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline_detectors import DETECTORS

from common.settings import Settings
from common.times import parse_utc
from enrichment.adapters.embedded import EmbeddedEngine
from enrichment.domain.model import Account, Assessment, Verdict
from enrichment.domain.scoring import assess
from enrichment.services.gather import gather_evidence

RECALL_TARGET = 0.95
FP_TARGET = 0.05


@dataclass
class Outcome:
    """One scenario's result: ours, the baselines', and the ground truth it is judged against."""

    scenario: dict[str, Any]
    assessment: Assessment
    baselines: dict[str, tuple[str, ...]]
    seconds: float

    @property
    def kind(self) -> str:
        return str(self.scenario["kind"])

    @property
    def likely(self) -> bool:
        return self.assessment.verdict is Verdict.REPLAY_LIKELY

    @property
    def suspicious(self) -> bool:
        return self.assessment.verdict in (Verdict.REPLAY_LIKELY, Verdict.SUSPICIOUS)

    @property
    def right_explanation(self) -> bool:
        """Every IP the truth says is benign carries the expected explanation kind."""
        expected = self.scenario.get("expected_explanation")
        if not expected:
            return True
        found = {(e.ip, e.kind.value) for e in self.assessment.explanations}
        return all((ip, expected) in found for ip in self.scenario.get("explained_ips") or [])

    @property
    def attacker_suspect(self) -> bool:
        return bool(set(self.scenario.get("attacker_ips") or []) & set(self.assessment.suspect_ips))

    @property
    def victim_suspect(self) -> bool:
        return bool(set(self.scenario.get("victim_ips") or []) & set(self.assessment.suspect_ips))


@dataclass
class Family:
    name: str
    kind: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, test: Any) -> int:
        return sum(1 for o in self.outcomes if test(o))


def generate(out: Path, *, seed: int, users: int, variants: int) -> None:
    """Run the sample-tenant generator (its command line is the contract)."""
    command = [sys.executable, "-m", "sample_tenant", "--out", str(out), "--users", str(users), "--variants", str(variants)]
    command += ["--seed", str(seed)]
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[1])


def evaluate(data: Path) -> list[Outcome]:
    settings = Settings.from_file(data / "settings.json")
    scenarios = json.loads((data / "scenarios.json").read_text(encoding="utf-8"))
    outcomes = []
    with EmbeddedEngine.open(data) as engine:
        for scenario in scenarios:
            at = parse_utc(scenario["at"])
            began = time.perf_counter()
            (evidence,) = gather_evidence(engine, [Account(upn=scenario["user"])], at, settings)
            assessment = assess(evidence, settings)
            seconds = time.perf_counter() - began
            baselines = {d.name: d.flagged(engine, scenario["user"], evidence.window) for d in DETECTORS}
            outcomes.append(Outcome(scenario, assessment, baselines, seconds))
    return outcomes


def _ratio(n: int, total: int) -> str:
    return f"{n}/{total}" if total else "-"


def report(outcomes: list[Outcome], *, details: bool) -> bool:
    """Print the table and the summary; return whether every target is met."""
    families: dict[str, Family] = {}
    for outcome in outcomes:
        family = families.setdefault(outcome.scenario["family"], Family(outcome.scenario["family"], outcome.kind))
        family.outcomes.append(outcome)
    names = [d.name for d in DETECTORS]
    order = {"attack": 0, "benign": 1, "ordinary": 2}
    header = (
        f"{'family':<24}{'kind':<9}{'n':>4}  {'ours@likely':>11}  {'ours@susp':>9}  {'expl ok':>7}  {'att.IP':>6}  {'vict.IP':>7}"
    )
    header += "".join(f"  {n:>14}" for n in names) + f"  {'score min/med/max':>17}"
    print("Per family: attacks count detections; benign and ordinary count false positives.")
    print(header)
    print("-" * len(header))
    for family in sorted(families.values(), key=lambda f: (order.get(f.kind, 9), f.name)):
        n = len(family.outcomes)
        attack = family.kind == "attack"
        line = f"{family.name:<24}{family.kind:<9}{n:>4}  {_ratio(family.count(lambda o: o.likely), n):>11}"
        line += f"  {_ratio(family.count(lambda o: o.suspicious), n):>9}"
        line += f"  {_ratio(family.count(lambda o: o.right_explanation), n) if family.kind == 'benign' else '-':>7}"
        line += f"  {_ratio(family.count(lambda o: o.attacker_suspect), n) if attack else '-':>6}"
        line += f"  {_ratio(family.count(lambda o: o.victim_suspect), n):>7}"
        for name in names:
            line += f"  {_ratio(family.count(lambda o, name=name: bool(o.baselines[name])), n):>14}"
        scores = sorted(o.assessment.score for o in family.outcomes)
        line += f"  {f'{scores[0]}/{scores[len(scores) // 2]}/{scores[-1]}':>17}"
        print(line)

    def rate(kind: str, test: Any) -> tuple[int, int]:
        group = [o for o in outcomes if o.kind == kind]
        return sum(1 for o in group if test(o)), len(group)

    print()
    rows = [
        ("attack recall @ replay_likely", rate("attack", lambda o: o.likely)),
        ("attack recall @ suspicious", rate("attack", lambda o: o.suspicious)),
        ("look-alike FP @ replay_likely", rate("benign", lambda o: o.likely)),
        ("look-alike FP @ suspicious", rate("benign", lambda o: o.suspicious)),
        ("ordinary FP @ replay_likely", rate("ordinary", lambda o: o.likely)),
        ("ordinary FP @ suspicious", rate("ordinary", lambda o: o.suspicious)),
        ("look-alikes with the right explanation", rate("benign", lambda o: o.right_explanation)),
    ]
    for name in names:
        rows.append((f"{name} recall", rate("attack", lambda o, name=name: bool(o.baselines[name]))))
        rows.append((f"{name} look-alike FP", rate("benign", lambda o, name=name: bool(o.baselines[name]))))
        rows.append((f"{name} ordinary FP", rate("ordinary", lambda o, name=name: bool(o.baselines[name]))))
    for label, (hit, total) in rows:
        print(f"{label:<40} {hit:>4}/{total:<4} {hit / total if total else 0:6.1%}")
    timings = sorted(o.seconds for o in outcomes)
    if timings:
        print(f"{'gather + assess per incident (median / max)':<40} {timings[len(timings) // 2]:.2f}s / {timings[-1]:.2f}s")

    recall, attacks = rate("attack", lambda o: o.likely)
    fp, lookalikes = rate("benign", lambda o: o.likely)
    explained, _ = rate("benign", lambda o: o.right_explanation)
    met = (
        attacks > 0
        and recall / attacks >= RECALL_TARGET
        and (fp / lookalikes if lookalikes else 0) <= FP_TARGET
        and explained == lookalikes
    )
    print(
        f"targets (recall >= {RECALL_TARGET:.0%}, look-alike FP <= {FP_TARGET:.0%}, every explanation right): "
        + ("met" if met else "NOT met")
    )

    if details:
        print("\nMisses, false positives, missing explanations and the user's own IPs called suspect:")
        for o in outcomes:
            wrong = (
                (o.kind == "attack" and not o.likely)
                or (o.kind != "attack" and o.suspicious)
                or not o.right_explanation
                or o.victim_suspect
            )
            if not wrong:
                continue
            a = o.assessment
            print(f"- {o.scenario['id']} ({o.kind}) score {a.score} {a.verdict.value}; suspects {list(a.suspect_ips)[:4]}")
            print(
                f"    truth: attacker {o.scenario.get('attacker_ips')} explained {o.scenario.get('explained_ips')} traits {o.scenario.get('traits')}"
            )
            for s in a.signals:
                print(f"    +{s.weight:<3} {s.id}: {s.detail[:220]}")
            for e in a.explanations:
                print(f"    ~ {e.kind.value} {e.ip}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description="Evaluate the replay score against baseline detections on a sample tenant.")
    parser.add_argument("--data", type=Path, help="an already generated tenant folder (skips generation)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--variants", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--details", action="store_true", help="list every miss and false positive with its signals")
    args = parser.parse_args()

    if args.data:
        return 0 if report(evaluate(args.data), details=args.details) else 1
    if args.keep:
        generate(args.keep, seed=args.seed, users=args.users, variants=args.variants)
        return 0 if report(evaluate(args.keep), details=args.details) else 1
    with tempfile.TemporaryDirectory(prefix="replay-eval-") as folder:
        out = Path(folder) / "tenant"
        generate(out, seed=args.seed, users=args.users, variants=args.variants)
        return 0 if report(evaluate(out), details=args.details) else 1


if __name__ == "__main__":
    raise SystemExit(main())
