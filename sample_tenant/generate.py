"""
Generate a sample tenant's exports, user by user, straight to disk.

Only one user's events are in memory at a time: each user is simulated, their scenario played,
their rows written and forgotten, so the cost in memory is flat in the number of users and days.
Every user, scenario and row draws from its own seeded generator, which is what makes the output
byte-identical for the same arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path

from enrichment.domain.model import Table
from sample_tenant import catalog, ids
from sample_tenant.activity import Simulation
from sample_tenant.attacks import AitmCookieReplay, AitmResidentialReplay, DeviceCodePhishing, RefreshTokenReplay, RelayReplay
from sample_tenant.events import DAY, to_ms
from sample_tenant.greyzone import NewIspNewDevice, TravelWithoutRecord
from sample_tenant.incidents import incident_body
from sample_tenant.lookalikes import (
    Ipv6DualStack,
    MicrosoftServiceIps,
    MobileCarrierChurn,
    NewPhoneEnrolment,
    Ordinary,
    TravelWithRecord,
    VpnSplitTunnel,
)
from sample_tenant.records import AUDIT_TABLE, AuditRows, SigninRows
from sample_tenant.relays import ConsumerRelay, OrganisationSse, PrivateRelay
from sample_tenant.scenarios import Family, Scenario, Script, TravelRecord, Truth, activity_span, plan_scenarios, truth
from sample_tenant.tenant import Tenant, User, build_tenant
from sample_tenant.workloads import WORKLOAD_TABLES, Used, Workloads
from sample_tenant.writers import LineWriter, write_csv, write_json

DEFAULT_END = datetime(2026, 6, 15, 23, 59, 59, tzinfo=UTC)
TRAVEL_WATCHLIST = "TravelRecords"
TRAVEL_COLUMNS = ("UserPrincipalName", "Country", "StartTime", "EndTime")
MIN_DAYS = 3

SCRIPTS: dict[Family, Script] = {
    Family.AITM_COOKIE_REPLAY: AitmCookieReplay(),
    Family.REFRESH_TOKEN_REPLAY: RefreshTokenReplay(),
    Family.DEVICE_CODE_PHISHING: DeviceCodePhishing(),
    Family.AITM_RESIDENTIAL_REPLAY: AitmResidentialReplay(),
    Family.RELAY_REPLAY: RelayReplay(),
    Family.VPN_SPLIT_TUNNEL: VpnSplitTunnel(),
    Family.TRAVEL_WITH_RECORD: TravelWithRecord(),
    Family.MOBILE_CARRIER_CHURN: MobileCarrierChurn(),
    Family.IPV6_DUAL_STACK: Ipv6DualStack(),
    Family.MICROSOFT_SERVICE_IPS: MicrosoftServiceIps(),
    Family.NEW_PHONE_ENROLMENT: NewPhoneEnrolment(),
    Family.ICLOUD_PRIVATE_RELAY: PrivateRelay(),
    Family.WARP_EDGE_SECURE_NETWORK: ConsumerRelay(),
    Family.ORGANISATION_SSE: OrganisationSse(),
    Family.NEW_ISP_NEW_DEVICE: NewIspNewDevice(),
    Family.TRAVEL_WITHOUT_RECORD: TravelWithoutRecord(),
    Family.ORDINARY: Ordinary(),
}


@dataclass(frozen=True, slots=True)
class Options:
    """What to generate; the defaults are the CLI's."""

    out: Path
    users: int = 300
    days: int = 14
    seed: int = 7
    variants: int = 20
    end: datetime = DEFAULT_END
    compress: bool = False

    def problems(self) -> list[str]:
        """Every reason these options cannot be generated, for one clear error."""
        found = []
        if self.users < 1:
            found.append("--users must be at least 1")
        if self.days < MIN_DAYS:
            found.append(f"--days must be at least {MIN_DAYS} (the incident window needs a day of history)")
        if self.variants < 0:
            found.append("--variants must not be negative")
        needed = len(Family) * self.variants
        if self.users >= 1 and needed > self.users:
            found.append(
                f"--variants {self.variants} needs at least {needed} users ({len(Family)} families x {self.variants}); got --users {self.users}"
            )
        if self.end.tzinfo is None:
            found.append("--end must have a time zone (e.g. 2026-06-15T23:59:59Z)")
        return found


@dataclass(slots=True)
class Summary:
    """Rows written per table and scenarios per family."""

    organisation: str
    users: int
    days: int
    end: str
    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    scenarios: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def line(self) -> str:
        tables = ", ".join(f"{name} {count:,}" for name, count in self.rows.items())
        families = sum(1 for count in self.scenarios.values() if count)
        total = sum(self.scenarios.values())
        return (
            f"{self.organisation}: {self.users} users, {self.days} days to {self.end}; rows: {tables}; "
            f"{total} scenarios ({families} families) -> {self.out}"
        )


def generate(options: Options) -> Summary:
    """Write the sample tenant described by `options`; return what was written."""
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))
    end = to_ms(options.end) // 1000 * 1000
    start = end - options.days * DAY + 1000
    tenant = build_tenant(options.seed, options.users)
    planned = plan_scenarios(options.seed, options.users, options.variants, end)
    numbers = {s.scenario_id: 1001 + n for n, s in enumerate(sorted(planned.values(), key=_order))}

    out = options.out
    (out / "incidents").mkdir(parents=True, exist_ok=True)
    (out / "watchlists").mkdir(exist_ok=True)
    _remove_stale(out)
    suffix = ".jsonl.gz" if options.compress else ".jsonl"
    tables = (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value, AUDIT_TABLE, *WORKLOAD_TABLES)
    paths = {name: out / f"{name}{suffix}" for name in tables}
    signin_rows, audit_rows, workloads = SigninRows(tenant), AuditRows(tenant), Workloads(tenant, options.seed)
    truths: list[Truth] = []
    travel: list[TravelRecord] = []
    with (
        LineWriter(paths[Table.INTERACTIVE.value], compress=options.compress) as interactive,
        LineWriter(paths[Table.NON_INTERACTIVE.value], compress=options.compress) as non_interactive,
        LineWriter(paths[AUDIT_TABLE], compress=options.compress) as audit,
        _Writers({name: paths[name] for name in WORKLOAD_TABLES}, compress=options.compress) as workload_out,
    ):
        for user in tenant.users:
            scenario = planned.get(user.index)
            sim = _live(options, tenant, user, scenario, start=start, end=end)
            events = sorted((e for e in sim.events if start <= e.time <= end), key=attrgetter("time"))
            rng = ids.generator(options.seed, "rows", user.index)
            used = []
            for event in events:
                is_interactive, line = signin_rows.line(sim.user, event, rng)
                (interactive if is_interactive else non_interactive).write(line)
                used.append(Used(event, signin_rows.last_token))
            workload_out.write(workloads.user(sim.user, used, scenario, sim, start=start, end=end).lines)
            for change in sorted((a for a in sim.audits if start <= a.time <= end), key=attrgetter("time")):
                audit.write(audit_rows.line(change, rng))
            if scenario is None:
                travel.extend(_unrelated_travel(options, user, sim))
                continue
            truths.append(truth(scenario, sim.user, events))
            travel.extend(scenario.travel)
            egress = next((e.egress for e in events if e.egress.ip == scenario.incident_ip), None)
            first, last = activity_span(scenario, events)
            body = incident_body(
                tenant, scenario, sim.user, egress=egress, first=first, last=last, number=numbers[scenario.scenario_id]
            )
            write_json(out / "incidents" / f"{scenario.scenario_id}.json", body)

    write_csv(
        out / "watchlists" / f"{TRAVEL_WATCHLIST}.csv", TRAVEL_COLUMNS, sorted((r.upn, r.country, r.start, r.end) for r in travel)
    )
    truths.sort(key=lambda t: (list(Family).index(Family(t.family)), t.scenario_id))
    write_json(out / "scenarios.json", [t.to_json() for t in truths])
    write_json(out / "settings.json", local_settings(tenant))
    families = {family.value: 0 for family in Family}
    for t in truths:
        families[t.family] += 1
    return Summary(
        organisation=tenant.organisation,
        users=options.users,
        days=options.days,
        end=options.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        out=out,
        rows={
            Table.INTERACTIVE.value: interactive.rows,
            Table.NON_INTERACTIVE.value: non_interactive.rows,
            AUDIT_TABLE: audit.rows,
            **workload_out.rows(),
        },
        scenarios=families,
        files=[*paths.values(), out / "scenarios.json", out / "settings.json", out / "watchlists" / f"{TRAVEL_WATCHLIST}.csv"],
    )


class _Writers:
    """One `LineWriter` per workload table; the rows of one person are written table by table."""

    def __init__(self, paths: dict[str, Path], *, compress: bool) -> None:
        self._writers = {name: LineWriter(path, compress=compress) for name, path in paths.items()}

    def write(self, lines: dict[str, list[str]]) -> None:
        for name, found in lines.items():
            for line in found:
                self._writers[name].write(line)

    def rows(self) -> dict[str, int]:
        return {name: writer.rows for name, writer in self._writers.items()}

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self._writers.values():
            writer.close()


def _live(options: Options, tenant: Tenant, user: User, scenario: Scenario | None, *, start: int, end: int) -> Simulation:
    """One user's period, with their scenario (if any) adapted in, planned around and played."""
    rng = ids.generator(options.seed, "activity", user.index)
    if scenario is None:
        sim = Simulation(tenant, user, rng, start, end)
        sim.run()
        return sim
    script = SCRIPTS[scenario.family]
    sim = Simulation(tenant, script.adapt(scenario, user), rng, start, end)
    sim.run(script.overrides(scenario, sim))
    script.play(scenario, sim)
    scenario.at -= scenario.at % 1000  # incidents carry whole seconds
    return sim


def _order(scenario: Scenario) -> tuple[int, str]:
    return list(Family).index(scenario.family), scenario.scenario_id


def _remove_stale(out: Path) -> None:
    """Drop files an earlier run may have left that this run would not overwrite (the loader would read both)."""
    for name in (Table.INTERACTIVE.value, Table.NON_INTERACTIVE.value, AUDIT_TABLE, *WORKLOAD_TABLES):
        for suffix in (".jsonl", ".jsonl.gz"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
    for old in (out / "incidents").glob("*.json"):
        old.unlink()
    (out / ".triage-cache.duckdb").unlink(missing_ok=True)


def _unrelated_travel(options: Options, user: User, sim: Simulation) -> list[TravelRecord]:
    """Trips on record for users who did not travel in the period (planned, past or cancelled): the watchlist's usual noise."""
    rng = ids.generator(options.seed, "travel", user.index)
    if rng.random() >= 0.06:
        return []
    country = rng.choice([c for c in catalog.TRAVEL_COUNTRIES if c != user.country])
    first = sim.first_date + timedelta(days=rng.randrange(-20, options.days + 20))
    last = first + timedelta(days=rng.randrange(2, 9))
    return [TravelRecord(user.upn, country, first.isoformat(), last.isoformat())]


def local_settings(tenant: Tenant) -> dict[str, object]:
    """A Functions `local.settings.json` carrying the tenant's networks for the benign explanations."""
    return {
        "IsEncrypted": False,
        "Values": {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "REPLAY_WORKSPACE_ID": tenant.workspace.workspace_id,
            "REPLAY_TENANT_ID": tenant.tenant_id,
            "REPLAY_CORPORATE_CIDRS": ",".join(office.cidr for office in tenant.offices),
            "REPLAY_VPN_CIDRS": tenant.vpn.cidr,
            "REPLAY_TRUSTED_ASNS": "",
            "REPLAY_SSE_PROVIDER": tenant.sse.provider,
            "REPLAY_SSE_CIDRS": tenant.sse.dedicated,
            "REPLAY_TRAVEL_WATCHLIST": TRAVEL_WATCHLIST,
        },
    }
