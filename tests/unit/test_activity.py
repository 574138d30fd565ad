"""What the suspect sessions did: parsing the scope rows, tying them to suspects, the activity signals, coverage sentences."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from enrichment.domain.activity import ActivityRecord, ActKind, DirectoryChange, Forwarding, InboxRule, Scope, Tie
from enrichment.domain.attribution import attacker_forwarding, attacker_rules, attribute, tied_identifiers
from enrichment.domain.directory_roles import privileged
from enrichment.domain.model import UserEvidence
from enrichment.domain.optional_tables import TableAnswer, gaps
from enrichment.domain.picture import picture
from enrichment.domain.scoring import assess
from enrichment.domain.signals import activity
from enrichment.domain.signals.rule import Cover, Rule
from enrichment.queries import rows
from tests.unit.factories import AT, ATTACKER, HOME, USER, USER_ID, evidence, ordinary_day, settings, signin

ATTACKER_IP, HOME_IP = ATTACKER[0], HOME[0]
LIFTED = "session-home"


def record(
    operation: str, *, ip: str = ATTACKER_IP, kind: ActKind = ActKind.MAILBOX, minutes: float = 10, **fields: Any
) -> ActivityRecord:
    values: dict[str, Any] = {
        "kind": kind,
        "source": "OfficeActivity" if kind is ActKind.MAILBOX else "MicrosoftGraphActivityLogs",
        "user": USER,
        "ip": ip,
        "operation": operation,
        "count": 1,
        "first": AT + timedelta(minutes=minutes),
        "last": AT + timedelta(minutes=minutes),
    }
    values.update(fields)
    return ActivityRecord(**values)


def rule(name: str, **fields: Any) -> InboxRule:
    values: dict[str, Any] = {
        "operation": "New-InboxRule",
        "name": name,
        "identity": f"Alice\\{name}",
        "mailbox": USER,
        "time": AT,
    }
    values.update(fields)
    return InboxRule(**values)


def replayed(*records: ActivityRecord) -> UserEvidence:
    """An ordinary day, then the home session replayed from the attacker's network with a script, and the scope's records."""
    stolen = [
        signin(ATTACKER, 5 + i, session_id=LIFTED, user_agent="python-requests/2.32", token_ids=(f"tok-{i}",)) for i in range(3)
    ]
    found = evidence(*ordinary_day(), *stolen)
    coverage = (TableAnswer("OfficeActivity", True, 100), TableAnswer("MicrosoftGraphActivityLogs", True, 100))
    return replace(found, scope=Scope(asked=True, coverage=coverage, records=records))


class TestParsing:
    def test_name_value_lists_are_read_even_when_cut_short(self) -> None:
        """A Parameters list cut by the query's length cap still gives its complete pairs."""
        text = json.dumps([{"Name": "Name", "Value": 'a "quoted" rule'}, {"Name": "MoveToFolder", "Value": "RSS Feeds"}])
        assert rows.name_values(text) == {"Name": 'a "quoted" rule', "MoveToFolder": "RSS Feeds"}
        assert rows.name_values(text[:-20]) == {"Name": 'a "quoted" rule'}
        assert rows.name_values("") == {}

    def test_a_cmdlet_rule_says_what_it_does(self) -> None:
        """New-InboxRule's parameters give the name, the folder, forwarding addresses and the conditions."""
        parameters = [
            {"Name": "Name", "Value": "eg"},
            {"Name": "ForwardTo", "Value": "Evil <SMTP:evil@evilcorp.example>;second@evilcorp.example"},
            {"Name": "MoveToFolder", "Value": "RSS Feeds"},
            {"Name": "From", "Value": "business@partner.example"},
            {"Name": "MarkAsRead", "Value": "True"},
        ]
        sample = {
            "at": "2026-03-10T14:05:00Z",
            "object": "srv/corp/Alice\\eg",
            "mailbox": "Alice@Contoso.example",
            "parameters": json.dumps(parameters),
        }
        found = rows.inbox_rule("New-InboxRule", sample, USER)
        assert (found.name, found.identity, found.mailbox, found.move_to) == (
            "eg",
            "srv/corp/Alice\\eg",
            "alice@contoso.example",
            "RSS Feeds",
        )
        assert found.forward_to == ("evil@evilcorp.example", "second@evilcorp.example")
        assert found.mark_read
        assert found.hides_mail
        assert found.conditions == (("From", "business@partner.example"),)

    def test_an_outlook_rule_is_read_from_its_operation_properties(self) -> None:
        """UpdateInboxRules describes the rule in OperationProperties (RuleName, RuleActions)."""
        properties = [{"Name": "RuleName", "Value": "x"}, {"Name": "RuleActions", "Value": '[{"ActionType":"Delete"}]'}]
        sample = {"at": "2026-03-10T14:05:00Z", "parameters": "", "properties": json.dumps(properties)}
        found = rows.inbox_rule("UpdateInboxRules", sample, USER)
        assert (found.name, found.delete, found.mailbox) == ("x", True, USER)

    def test_set_mailbox_gives_forwarding_only_when_it_sets_one(self) -> None:
        """ForwardingSmtpAddress becomes a Forwarding; clearing it ($null) is not forwarding."""
        setting = [
            {"Name": "ForwardingSmtpAddress", "Value": "smtp:drop@exfil.example"},
            {"Name": "DeliverToMailboxAndForward", "Value": "False"},
        ]
        sample = {"at": "2026-03-10T14:05:00Z", "mailbox": USER, "parameters": json.dumps(setting)}
        assert rows.forwarding(sample, USER) == Forwarding(USER, "drop@exfil.example", AT + timedelta(minutes=5), False)
        cleared = {**sample, "parameters": json.dumps([{"Name": "ForwardingSmtpAddress", "Value": "$null"}])}
        assert rows.forwarding(cleared, USER) is None

    @pytest.mark.parametrize(
        "samples",
        [
            [{"path": "/v1.0/me/messages"}, {"path": "/v1.0/me/mailfolders"}],
            json.dumps([{"path": "/v1.0/me/messages"}, {"path": "/v1.0/me/mailfolders"}]),
            [json.dumps({"path": "/v1.0/me/messages"}), json.dumps({"path": "/v1.0/me/mailfolders"})],
        ],
        ids=["decoded", "json-text", "list-of-json-texts"],
    )
    def test_a_graph_row_reads_the_same_however_the_engine_sent_its_samples(self, samples: object) -> None:
        """Log Analytics decodes dynamic values, DuckDB gives JSON text or a list of texts: one record either way."""
        row = {
            "Kind": "graph",
            "Source": "MicrosoftGraphActivityLogs",
            "User": USER_ID.upper(),
            "Ip": ATTACKER_IP,
            "TokenKey": "tok-1",
            "Operation": "mail_read",
            "Method": "GET",
            "Count": 22,
            "Bytes": 90112,
            "Failures": 1,
            "FirstSeen": "2026-03-10T14:05:00Z",
            "LastSeen": "2026-03-10T14:25:00Z",
            "Client": "python-requests/2.32",
            "Samples": samples,
        }
        parsed = rows.activity_record(row)
        assert (parsed.user, parsed.count, parsed.bytes, parsed.failures, parsed.token_id) == (USER_ID, 22, 90112, 1, "tok-1")
        assert parsed.samples == ("/v1.0/me/mailfolders", "/v1.0/me/messages")

    def test_a_row_of_an_unknown_kind_is_refused(self) -> None:
        """A scope row must say which workload it is from."""
        with pytest.raises(rows.RowError, match="names no activity"):
            rows.activity_record({"Kind": "teams"})

    def test_privileged_roles_are_picked_from_the_assigned_ones(self) -> None:
        """Global Administrator is privileged, Reports Reader is not; case does not matter."""
        assert privileged(["Reports Reader", "global administrator", "Security Administrator"]) == (
            "Security Administrator",
            "global administrator",
        )


class TestAttribution:
    def test_the_victims_own_acts_in_the_shared_session_are_never_the_attackers(self) -> None:
        """The lifted session carries both: a rule from the victim's address is hers, the one from the attacker's address is not."""
        mine = record("New-InboxRule", ip=HOME_IP, session_id=LIFTED, rules=(rule("KFC Spam", delete=True),))
        theirs = record("New-InboxRule", session_id=LIFTED, rules=(rule("..", move_to="RSS Feeds"),))
        (session,) = attribute(replayed(mine, theirs), {ATTACKER_IP})
        assert session.session_id == LIFTED
        assert [(r.name, a.tie, a.ip) for r, a in session.rules()] == [("..", Tie.ADDRESS, ATTACKER_IP)]

    def test_a_token_ties_a_record_from_another_address_and_a_session_one_without_any(self) -> None:
        """The suspect sign-in's token ties a Graph call from IPv6; the lifted session ties mail access that recorded no address."""
        graph = record("mail_send", kind=ActKind.GRAPH, ip="2001:db8::66", token_id="tok-1", user=USER_ID)
        access = record("MailItemsAccessed", ip="", session_id=LIFTED, items=40)
        unrelated = record("MailItemsAccessed", ip="", session_id="another-session")
        (session,) = attribute(replayed(graph, access, unrelated), {ATTACKER_IP})
        assert [(a.record.operation, a.tie, a.ip) for a in session.acts] == [
            ("mail_send", Tie.TOKEN, ATTACKER_IP),
            ("MailItemsAccessed", Tie.SESSION, ATTACKER_IP),
        ]

    def test_no_suspect_or_no_scope_means_nothing_attributed(self) -> None:
        """Without suspects nothing is tied; without a scope there is nothing to tie."""
        found = replayed(record("Send"))
        assert attribute(found, set()) == ()
        assert attribute(replace(found, scope=None), {ATTACKER_IP}) == ()

    def test_the_identifiers_followed_are_the_suspect_sign_ins(self) -> None:
        """Token ids and sessions come from the sign-ins made from the suspect addresses only."""
        tokens, sessions = tied_identifiers(replayed(), {ATTACKER_IP})
        assert tokens == {"tok-0", "tok-1", "tok-2"}
        assert sessions == {LIFTED}

    def test_rules_and_forwarding_for_containment_are_listed_oldest_first(self) -> None:
        """Containment reads every attacker rule and forwarding with the address it came from."""
        forward = Forwarding(USER, "drop@exfil.example", AT + timedelta(minutes=20))
        first = record("New-InboxRule", rules=(rule("b", time=AT + timedelta(minutes=3)),))
        second = record("Set-Mailbox", ip="", token_id="tok-2", forwarding=(forward,), minutes=20)
        third = record("New-InboxRule", rules=(rule("a", time=AT + timedelta(minutes=1)),), minutes=11)
        sessions = attribute(replayed(first, second, third), {ATTACKER_IP})
        assert [r.name for r, _ in attacker_rules(sessions)] == ["a", "b"]
        assert [(f.address, a.ip, a.tie) for f, a in attacker_forwarding(sessions)] == [
            ("drop@exfil.example", ATTACKER_IP, Tie.TOKEN)
        ]


class TestActivitySignals:
    def _signals(self, *records: ActivityRecord) -> set[str]:
        view, suspects = picture(replayed(*records)), frozenset({ATTACKER_IP})
        found = (r.evaluate(view, Cover(), suspects) for r in vars(activity).values() if isinstance(r, Rule))
        return {s.id for s in found if s is not None}

    def test_the_four_attacker_acts_fire(self) -> None:
        """A hiding rule, outside forwarding, a scripted bulk read and consent to an unknown app each fire their signal."""
        consent = DirectoryChange("Consent to application", AT, "Mail Sync Pro", "5a5a5a5a-0000-4000-8000-00000000a550")
        fired = self._signals(
            record("New-InboxRule", rules=(rule("sn", move_to="Junk Email"),)),
            record("Set-Mailbox", forwarding=(Forwarding(USER, "drop@exfil.example", AT),)),
            record("mail_read", kind=ActKind.GRAPH, user=USER_ID, count=25, client="python-requests/2.32"),
            record("Consent to application", kind=ActKind.DIRECTORY, changes=(consent,)),
        )
        assert fired == {"inbox_rule_hides_mail", "mail_forwarded_outside", "mass_mail_access_scripted", "consent_to_unknown_app"}

    def test_look_alikes_from_the_suspect_session_that_are_not_attacks_do_not_fire(self) -> None:
        """A rule that only flags, forwarding inside the domain, a browser reading mail, a few scripted reads, consent to a known app: nothing."""
        known_app = DirectoryChange("Consent to application", AT, "Outlook", detail="9199bf20-a13f-4107-85dc-02114787ef48")
        fired = self._signals(
            record("New-InboxRule", rules=(rule("flag", forward_to=("boss@contoso.example",)),)),
            record("Set-Mailbox", forwarding=(Forwarding(USER, "team@sales.contoso.example", AT),)),
            record("mail_read", kind=ActKind.GRAPH, user=USER_ID, count=500, client="Mozilla/5.0 Firefox/131.0"),
            record("mail_read", kind=ActKind.GRAPH, user=USER_ID, count=5, client="curl/8.0", method="POST"),
            record("Consent to application", kind=ActKind.DIRECTORY, changes=(known_app,)),
        )
        assert fired == set()

    def test_the_same_acts_from_the_users_own_address_do_not_fire(self) -> None:
        """The benign look-alike: her own rule and forwarding from her laptop's address count for nothing."""
        fired = self._signals(
            record("New-InboxRule", ip=HOME_IP, session_id=LIFTED, rules=(rule("News", move_to="Newsletters"),)),
            record("Set-Mailbox", ip=HOME_IP, forwarding=(Forwarding(USER, "me@gmail.example", AT),)),
        )
        assert fired == set()

    def test_activity_adds_its_weight_to_the_assessment(self) -> None:
        """The acts add their points to the assessment's signals, implicating the attacker's address."""
        before = assess(replayed(), settings())
        after = assess(
            replayed(record("New-InboxRule", rules=(rule("eg", move_to="RSS Feeds", forward_to=("evil@evilcorp.example",)),))),
            settings(),
        )
        added = {s.id: s.weight for s in after.signals}.items() - {s.id: s.weight for s in before.signals}.items()
        assert dict(added) == {"inbox_rule_hides_mail": 30, "mail_forwarded_outside": 35}
        assert ATTACKER_IP in after.suspect_ips


class TestCoverage:
    def test_an_absent_table_is_named_with_what_it_hides(self) -> None:
        """Not collected, collected but empty in the window, and failed each read as a sentence; a usable table says nothing."""
        found = gaps(
            (
                TableAnswer("MicrosoftGraphActivityLogs", False),
                TableAnswer("AuditLogs", True, 0),
                TableAnswer("OfficeActivity", True, 12),
                TableAnswer("CloudAppEvents", False),
            ),
            "2026-03-09T14:00:00Z",
            "2026-03-10T20:00:00Z",
        )
        assert found == (
            "MicrosoftGraphActivityLogs is not collected: Graph use by the stolen token cannot be seen",
            "AuditLogs holds no rows between 2026-03-09T14:00:00Z and 2026-03-10T20:00:00Z: "
            "consents, new application credentials and role assignments cannot be seen",
        )

    def test_microsoft_365_audit_is_missing_only_when_neither_table_can_answer(self) -> None:
        """OfficeActivity or CloudAppEvents is enough; without both, one sentence names both."""
        found = gaps((TableAnswer("OfficeActivity", False), TableAnswer("CloudAppEvents", True, 0)), "a", "b")
        assert found == (
            "Microsoft 365 audit is missing (OfficeActivity is not collected; CloudAppEvents holds no rows between a and b): "
            "inbox rules, forwarding, mail access, sent mail and file downloads cannot be seen",
        )
        assert gaps((TableAnswer("OfficeActivity", False), TableAnswer("CloudAppEvents", True, 3)), "a", "b") == ()


class TestMailboxFootholds:
    def test_the_attackers_rule_and_forwarding_reach_containment_and_the_users_own_do_not(self) -> None:
        """The rule and forwarding made from the suspect address become containment's footholds; the user's own, from home, stay out."""
        from playbooks.services.enrich import mailbox_footholds

        found = replayed(
            record("New-InboxRule", rules=(rule("eg", move_to="RSS Feeds"),)),
            record("Set-Mailbox", forwarding=(Forwarding(USER, "drop@exfil.example", AT),)),
            record("New-InboxRule", ip=HOME_IP, rules=(rule("newsletters", move_to="News"),)),
        )
        rules, forwarding = mailbox_footholds(found, assess(found, settings()))
        assert [(r.name, r.ip, r.operation, r.mailbox) for r in rules] == [("eg", ATTACKER_IP, "New-InboxRule", USER)]
        assert [(f.address, f.ip) for f in forwarding] == [("drop@exfil.example", ATTACKER_IP)]
