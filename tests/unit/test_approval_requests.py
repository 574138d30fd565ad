"""The approval requests the enrichment prepares: which accounts get a card, bound to what, linking where."""

from __future__ import annotations

from common.settings import Settings
from enrichment.domain.model import Account
from playbooks.domain.approval import NO_OBJECT_ID, approval_requests
from playbooks.domain.incident import SentinelIncident
from playbooks.domain.plan import plan_containment
from playbooks.render.card import parse_action_data
from playbooks.services.enrich import AccountOutcome
from tests.unit import card_samples as s

SETTINGS = Settings.from_values({"REPLAY_APPROVAL_TIMEOUT_HOURS": "4"})
INCIDENT = SentinelIncident(
    "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
    "soc-rg",
    "soc-ws",
    s.INCIDENT.incident_id,
    4711,
    "Token replay",
    "High",
    s.AT,
    (Account(s.UPN, s.USER_ID),),
    url="https://portal.azure.com/#asset/x",
    provider_url="https://security.microsoft.com/incidents/4711?tid=t",
)


def _outcome(account: Account) -> AccountOutcome:
    evidence, assessment = s.typical()
    return AccountOutcome(evidence, assessment, plan_containment(INCIDENT.name, account, assessment, SETTINGS))


def test_the_card_links_the_defender_portal_and_is_bound_to_the_object_id() -> None:
    """The card's "Open incident" and its button data carry providerIncidentUrl; the click is bound to the suspect's object id."""
    (request,) = approval_requests(
        INCIDENT, [_outcome(Account(s.UPN, s.USER_ID))], parent_instance_id="incident-x", requested_at=s.AT, settings=SETTINGS
    ).values()

    assert request.card is not None
    opens = [a["url"] for a in request.card["actions"] if a["type"] == "Action.OpenUrl"]
    _verb, data = parse_action_data(request.card["actions"][0]["data"])
    assert opens == ["https://security.microsoft.com/incidents/4711?tid=t"]
    assert (data.incident_url, data.user_object_id) == ("https://security.microsoft.com/incidents/4711?tid=t", s.USER_ID)


def test_a_suspect_without_an_object_id_gets_no_card_and_a_reason() -> None:
    """A plan whose suspect has no object id is never put on a card: the request carries why instead."""
    (request,) = approval_requests(
        INCIDENT, [_outcome(Account(s.UPN, ""))], parent_instance_id="incident-x", requested_at=s.AT, settings=SETTINGS
    ).values()

    assert request.card is None
    assert request.problem == NO_OBJECT_ID.format(upn=s.UPN)


def test_the_directory_s_reason_is_kept_when_it_could_not_resolve_the_suspect() -> None:
    """A problem found while resolving the suspect replaces the card for that account only."""
    requests = approval_requests(
        INCIDENT,
        [_outcome(Account(s.UPN, s.USER_ID)), _outcome(Account("other@contoso.example", ""))],
        parent_instance_id="incident-x",
        requested_at=s.AT,
        settings=SETTINGS,
        problems={1: "the directory did not answer"},
    )

    assert requests[0].card is not None
    assert (requests[1].card, requests[1].problem) == (None, "the directory did not answer")
