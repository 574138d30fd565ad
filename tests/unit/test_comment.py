"""The incident comment: summary first, every row value escaped, never over the size limit, never cut in a tag."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichment.domain.model import (
    Account,
    Assessment,
    Baseline,
    Explanation,
    ExplanationKind,
    Gap,
    Signal,
    SignIn,
    Table,
    TableBaseline,
    TimeWindow,
    UserEvidence,
    Verdict,
)
from playbooks.domain.incident import SentinelIncident
from playbooks.render.comment import TIMELINE_ROWS, AccountReport, enrichment_comment, esc, failure_comment, no_account_comment

AT = datetime(2026, 3, 1, 9, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
WINDOW = TimeWindow(AT - timedelta(hours=24), AT + timedelta(hours=6))
HOSTILE = '<script>alert(\'x\')</script>" onmouseover="x" &amp; <b>'
ALLOWED_TAGS = {"h3", "h4", "p", "b", "i", "ul", "ol", "li", "br", "small", "code", "a", "table", "tr", "th", "td"}
VOID_TAGS = {"br"}


def _incident(
    title: str = "Token replay", unresolved: tuple[str, ...] = (), kinds: tuple[tuple[str, int], ...] = ()
) -> SentinelIncident:
    return SentinelIncident(
        "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
        "soc-rg",
        "soc-ws",
        "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
        84,
        title,
        "Medium",
        AT,
        (),
        unresolved,
        kinds,
    )


def _signin(
    ip: str, minute: int = 0, *, table: Table = Table.NON_INTERACTIVE, user: str = "alice@contoso.com", **extra: object
) -> SignIn:
    first = AT + timedelta(minutes=minute)
    return SignIn(user=user, user_id="", table=table, first=first, last=first + timedelta(minutes=5), count=3, ip=ip, **extra)  # type: ignore[arg-type]


def _baseline(empty: bool = False) -> Baseline:
    window = TimeWindow(WINDOW.start - timedelta(days=14), WINDOW.start)
    if empty:
        return Baseline(window)
    part = TableBaseline(
        Table.INTERACTIVE, 120, 10, window.start, window.end, 2, frozenset({"198.51.100.7"}), frozenset({7922}), frozenset({"US"})
    )
    return Baseline(window, interactive=part)


def _report(
    user: str = "alice@contoso.com",
    *,
    ips: int = 3,
    verdict: Verdict = Verdict.REPLAY_LIKELY,
    score: int = 85,
    hostile: str = "",
    truncated: bool = False,
    warnings: tuple[str, ...] = (),
) -> AccountReport:
    signins = tuple(
        _signin(
            f"203.0.113.{i % 250}" if i < 250 else f"2001:db8::{i:x}",
            i,
            user=user,
            app=hostile or "Office",
            city=hostile or "Lyon",
            user_agent=hostile,
            asn=64500 + i,
        )
        for i in range(ips)
    )
    evidence = UserEvidence(Account(user, ""), AT, WINDOW, signins, _baseline(), truncated=truncated, warnings=warnings)
    signals = (
        Signal("session_ip_drift", 40, f"Session used from 203.0.113.0 and 203.0.113.1 {hostile}", ("203.0.113.0",)),
        Signal("new_asn", 25, "ASN 64500 never seen in the baseline", ("203.0.113.0",)),
        Signal("odd_hour", 5, "Sign-ins at 03:00, outside the usual hours"),
        Signal("token_only", 15, "MFA satisfied by a claim in the token"),
    )
    explanations = (Explanation("203.0.113.2", ExplanationKind.CORPORATE_VPN, "in 203.0.113.0/30"),)
    return AccountReport(evidence, Assessment(score, verdict, signals, explanations, ("203.0.113.0", "203.0.113.1")))


class _Structure(HTMLParser):
    """Collects tags and checks they nest; only our own attribute-free tags may appear."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        links_out = tag == "a" and len(attrs) == 1 and attrs[0][0] == "href" and (attrs[0][1] or "").startswith("https://")
        if tag not in ALLOWED_TAGS or (attrs and not links_out):
            self.problems.append(f"unexpected <{tag} {attrs}>")
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_well_formed(html_text: str) -> str:
    parser = _Structure()
    parser.feed(html_text)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    # Every & starts a whole entity: nothing was cut in the middle of one.
    assert re.findall(r"&(?!(?:amp|lt|gt|quot|#x27);)", html_text) == []
    return "".join(parser.text)


class TestContent:
    def test_summary_comes_before_timeline_and_baseline(self) -> None:
        """Verdict and score, the next steps, then the signals, the addresses and the baseline."""
        text = enrichment_comment(_incident(), [_report()], max_chars=30_000, generated_at=NOW)

        positions = [
            text.index(marker)
            for marker in ("Token replay likely", "85/100", "Next steps", "<b>Evidence</b>", "<b>Addresses</b>", "Baseline")
        ]
        assert positions == sorted(positions)

    def test_strongest_signals_in_plain_english_heaviest_first(self) -> None:
        """Every signal's sentence is listed, heaviest first, before the addresses."""
        text = enrichment_comment(_incident(), [_report()], max_chars=30_000, generated_at=NOW)

        order = [
            text.index(s) for s in ("Session used from", "ASN 64500 never seen", "MFA satisfied by a claim", "Sign-ins at 03:00")
        ]
        assert order == sorted(order)
        assert text.index("Sign-ins at 03:00") < text.index("<b>Addresses</b>")

    def test_suspect_ips_say_whether_anything_explains_them(self) -> None:
        """A suspect IP without explanation says so; an explained IP names its explanation."""
        text = enrichment_comment(_incident(), [_report()], max_chars=30_000, generated_at=NOW)

        assert "<b>203.0.113.0</b>: <b>suspect</b>: no benign explanation" in text
        assert "<b>203.0.113.2</b>: explained: in 203.0.113.0/30" in text

    def test_data_warnings_are_visible(self) -> None:
        """Truncation and partial-result warnings are shown near the top of the account's section."""
        report = _report(truncated=True, warnings=("Log Analytics returned a partial result: E_QUERY_RESULT_SET_TOO_LARGE",))

        text = enrichment_comment(_incident(), [report], max_chars=30_000, generated_at=NOW)

        assert text.index("truncated at the row cap") < text.index("<b>Addresses</b>")
        assert "partial result: E_QUERY_RESULT_SET_TOO_LARGE" in text

    def test_missing_evidence_is_said_with_what_it_left_unevaluated(self) -> None:
        """An insufficient-evidence account shows the verdict, each gap and the signals it left unevaluated."""
        report = _report(verdict=Verdict.INSUFFICIENT_EVIDENCE, score=0)
        gap = Gap("AADNonInteractiveUserSignInLogs", "not read: evidence query: workspace returned no data (204)", ("new_app",))
        assessment = replace(report.assessment, signals=(), suspect_ips=(), gaps=(gap,))

        text = enrichment_comment(_incident(), [AccountReport(report.evidence, assessment)], max_chars=30_000, generated_at=NOW)

        assert "<b>Insufficient evidence: score 0/100</b>" in text
        assert "1 account(s): 0 replay likely, 0 suspicious, 1 insufficient evidence, 0 benign." in text
        assert (
            "<li>AADNonInteractiveUserSignInLogs: not read: evidence query: workspace returned no data (204); "
            "not evaluated: new_app</li>"
        ) in text
        assert "No replay signal in the evidence that could be read." in text

    def test_tuned_scoring_is_named_and_the_stock_one_is_not(self) -> None:
        """Thresholds or weights changed from the defaults are named near the top; a stock deployment shows no such line."""
        tuning = ("REPLAY_THRESHOLD_LIKELY is 60 (default 70)", "signal new_app weighs 0 (default 8)")

        tuned = enrichment_comment(_incident(), [_report()], max_chars=30_000, generated_at=NOW, tuning=tuning)
        stock = enrichment_comment(_incident(), [_report()], max_chars=30_000, generated_at=NOW)

        assert "Scoring tuned for this tenant</b>: REPLAY_THRESHOLD_LIKELY is 60 (default 70); signal new_app weighs 0" in tuned
        assert tuned.index("Scoring tuned") < tuned.index("Token replay likely: score")
        assert "Scoring tuned" not in stock

    def test_empty_baseline_is_said_plainly(self) -> None:
        """No history: the comment says the usual IPs are unknown instead of showing zeros."""
        report = _report()
        evidence = UserEvidence(report.evidence.account, AT, WINDOW, report.evidence.signins, _baseline(empty=True))

        text = enrichment_comment(_incident(), [AccountReport(evidence, report.assessment)], max_chars=30_000, generated_at=NOW)

        assert "no sign-ins in the baseline" in text

    def test_several_accounts_most_severe_first_with_an_overview(self) -> None:
        """Accounts are listed by severity, then score, with an overview table first."""
        reports = [
            _report("benign@contoso.com", verdict=Verdict.BENIGN, score=5),
            _report("likely@contoso.com", verdict=Verdict.REPLAY_LIKELY, score=90),
            _report("sus@contoso.com", verdict=Verdict.SUSPICIOUS, score=50),
        ]

        text = enrichment_comment(_incident(), reports, max_chars=30_000, generated_at=NOW)

        headings = re.findall(r"<h4>([^<]+)</h4>", text)
        assert headings == ["likely@contoso.com", "sus@contoso.com", "benign@contoso.com"]
        assert "1 replay likely, 1 suspicious, 1 benign" in text
        assert text.index("<th>Account</th>") < text.index("<h4>")

    def test_unresolved_accounts_are_named(self) -> None:
        """Account entities without an Entra identity are listed as not assessed."""
        text = enrichment_comment(_incident(unresolved=("CORP\\svc",)), [_report()], max_chars=30_000, generated_at=NOW)

        assert "not assessed: CORP\\svc" in text

    def test_address_list_is_bounded(self) -> None:
        """Beyond the row limit the address list says how many addresses it left out."""
        text = enrichment_comment(_incident(), [_report(ips=TIMELINE_ROWS + 12)], max_chars=100_000, generated_at=NOW)

        assert text.count("<li><b>") == TIMELINE_ROWS
        assert "12 more addresses not shown" in text


class TestEscaping:
    def test_every_row_value_is_escaped(self) -> None:
        """A hostile app name, city, user agent, signal text, title and UPN appear as text, never as markup."""
        report = _report("x<i>@contoso.com", hostile=HOSTILE)

        text = enrichment_comment(_incident(title=HOSTILE), [report], max_chars=30_000, generated_at=NOW)

        visible = _check_well_formed(text)
        assert "<script" not in text
        assert 'onmouseover="' not in text
        assert HOSTILE[:40] in visible
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text

    def test_clipping_never_splits_an_entity(self) -> None:
        """A value of quotes clipped to 20 characters keeps whole `&quot;` entities and stays within 20."""
        clipped = esc('"' * 100, 20)

        assert len(clipped) <= 20
        assert clipped == "&quot;" * 3 + "\u2026"

    def test_notices_escape_what_they_echo(self) -> None:
        """The failure and no-account comments escape the error, the hint and the entity names."""
        failure = failure_comment(
            _incident(), what="query the sign-in logs", error=HOSTILE, hint=HOSTILE, max_chars=3000, generated_at=NOW
        )
        nobody = no_account_comment(_incident(unresolved=(HOSTILE,), kinds=(("Host", 2),)), max_chars=3000, generated_at=NOW)

        for text in (failure, nobody):
            _check_well_formed(text)
            assert "<script" not in text
        assert "What to check" in failure
        assert "2 Host" in nobody


class TestSize:
    @pytest.mark.slow
    def test_a_huge_incident_fits_the_limit(self) -> None:
        """Sixty accounts with 300 IPs each fit in 30,000 characters, with notes saying what was left out."""
        reports = [_report(f"user{i}@contoso.com", ips=300, score=99 - i) for i in range(60)]

        text = enrichment_comment(_incident(), reports, max_chars=30_000, generated_at=NOW)

        assert len(text) <= 30_000
        _check_well_formed(text)
        assert "not shown" in text
        assert text.startswith("<h3>Token replay enrichment: incident #84")

    def test_the_smallest_limit_still_gives_the_verdict(self) -> None:
        """At 1,000 characters the header and the first account's verdict survive."""
        text = enrichment_comment(
            _incident(title=HOSTILE * 20), [_report(ips=500, hostile=HOSTILE)], max_chars=1000, generated_at=NOW
        )

        assert len(text) <= 1000
        _check_well_formed(text)
        assert "Token replay likely" in text

    @settings(max_examples=40, deadline=None)
    @given(
        max_chars=st.integers(min_value=1000, max_value=40_000),
        accounts=st.integers(min_value=1, max_value=8),
        ips=st.integers(min_value=0, max_value=120),
        junk=st.text(alphabet=st.sampled_from(list("<>&\"'ab /=\u00e9\u2028")), max_size=300),
    )
    def test_any_incident_stays_within_the_limit_and_well_formed(
        self, max_chars: int, accounts: int, ips: int, junk: str
    ) -> None:
        """Whatever the size and content, the comment is within the limit, well-formed and entity-safe."""
        reports = [_report(f"u{i}@contoso.com", ips=ips, hostile=junk, warnings=(junk,) * 3) for i in range(accounts)]

        text = enrichment_comment(_incident(title=junk), reports, max_chars=max_chars, generated_at=NOW)

        assert len(text) <= max_chars
        _check_well_formed(text)
