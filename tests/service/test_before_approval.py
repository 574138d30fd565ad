"""Before the click: identity context and footholds audits from the real Graph adapter against the Graph fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from common.settings import Settings
from enrichment.domain.identity import Answer, Facet, IdentityContext
from enrichment.domain.model import Account, Assessment, SecurityEvent, UserEvidence, Verdict
from playbooks.adapters.graph import GraphDirectory, create_graph_directory
from playbooks.domain.plan import plan_containment
from playbooks.render.identity import identity_facts, identity_of
from playbooks.services.before_approval import facts_before_approval, gather_account_facts
from tests.fakes.graph_server import FakeCredential, FakeGraph, running
from tests.service.test_containment import ASSESSMENT, AT, GLOBAL_ADMIN, NOW, SUSPECT, SUSPECT_IP, UPN, USER, evidence

DEVICE = "d0d0d0d0-1111-2222-3333-444444444444"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with running() as fake:
        fake.add_user(USER, UPN, displayName="Vic Tim", department="Finance", jobTitle="Controller")
        fake.add_method(USER, "password", "pw", createdDateTime="2023-01-01T00:00:00Z")
        fake.add_method(USER, "microsoftAuthenticator", "new", displayName="Pixel 7", createdDateTime="2026-06-15T15:51:30Z")
        fake.add_device(USER, DEVICE, "DESKTOP-ATTACK", operatingSystem="Windows", registrationDateTime="2026-06-15T15:52:20Z")
        fake.assign_role(USER, GLOBAL_ADMIN, "Global Administrator")
        fake.set_risk(USER, "high", "atRisk")
        fake.add_detection(USER, "anomalousToken", "high", "2026-06-15T15:55:00+00:00", SUSPECT_IP)
        yield fake


@pytest.fixture
async def directory(graph: FakeGraph) -> AsyncIterator[GraphDirectory]:
    adapter = create_graph_directory(Settings.from_values({"REPLAY_GRAPH_ENDPOINT": graph.base_url}), credential=FakeCredential())
    yield adapter
    await adapter.close()


def with_device_event() -> UserEvidence:
    event = SecurityEvent(AT - timedelta(minutes=8), "Register device", "success", UPN, SUSPECT_IP, "", "DESKTOP-ATTACK")
    base = evidence()
    return replace(base, security_events=(*base.security_events, event))


async def test_the_approver_sees_who_it_is_and_what_looks_like_the_attackers(graph: FakeGraph, directory: GraphDirectory) -> None:
    """Profile, roles, risk from Graph; the method and the device registered from the suspect IP flagged."""
    facts = await gather_account_facts(directory, with_device_event(), ASSESSMENT, NOW)
    assert facts.identity.unanswered == ()
    assert facts.mfa is not None
    assert [f.method.id for f in facts.mfa.flagged] == ["new"]
    assert facts.devices is not None
    assert [f.device.id for f in facts.devices.flagged] == [DEVICE]
    shown = dict(identity_facts(facts))
    assert shown["Job"] == "Controller, Finance (Microsoft Graph)"
    assert shown["Directory roles"] == "Global Administrator (Microsoft Graph)"
    assert shown["Entra ID risk"].startswith(
        "high, atRisk; detections: anomalousToken high at 2026-06-15 15:55 UTC from 203.0.113.9"
    )
    assert "1 from a suspect address: device 'DESKTOP-ATTACK'" in shown["Devices"]
    assert identity_of(facts, "From the incident").display_name == "Vic Tim"
    assert {r.method for r in graph.requests} == {"GET"}


async def test_graph_fills_only_what_the_workspace_could_not_answer(graph: FakeGraph, directory: GraphDirectory) -> None:
    """The workspace answered profile and roles: Graph is asked, and only its risk answer is taken."""
    workspace = IdentityContext(
        display_name="Vic (IdentityInfo)",
        privileged_roles=(),
        answers=(
            Answer(Facet.PROFILE, "IdentityInfo"),
            Answer(Facet.ROLES, "IdentityInfo"),
            Answer(Facet.RISK, problem="AADRiskyUsers is not collected"),
        ),
    )
    facts = await gather_account_facts(directory, evidence(), ASSESSMENT, NOW, workspace=workspace)
    assert facts.identity.display_name == "Vic (IdentityInfo)"
    assert facts.identity.privileged_roles == ()
    assert facts.identity.risk_level == "high"
    assert [a.source for a in facts.identity.answers] == ["IdentityInfo", "IdentityInfo", "Microsoft Graph"]


async def test_a_fully_answered_workspace_asks_graph_nothing_about_identity(graph: FakeGraph, directory: GraphDirectory) -> None:
    """Every facet answered by the workspace: no profile, role or risk read goes to Graph."""
    workspace = IdentityContext(answers=tuple(Answer(f, "IdentityInfo") for f in Facet))
    await gather_account_facts(directory, evidence(), ASSESSMENT, NOW, workspace=workspace)
    assert graph.calls("GET", "roleAssignments|riskyUsers|riskDetections") == []
    assert graph.calls("GET", f"^/users/{USER}$") == []


async def test_missing_read_permissions_are_named_and_the_rest_still_shown(graph: FakeGraph, directory: GraphDirectory) -> None:
    """403 on risk and on devices: each says the permission it lacks; profile, roles and methods still answer."""
    graph.fail("GET", "riskyUsers/", 403)
    graph.fail("GET", "registeredDevices", 403)
    facts = await gather_account_facts(directory, evidence(), ASSESSMENT, NOW)
    shown = dict(identity_facts(facts))
    assert "IdentityRiskyUser.Read.All" in shown["Entra ID risk"]
    assert shown["Entra ID risk"].startswith("could not be read: ")
    assert "the registered devices could not be read" in shown["Not read"]
    assert "User.Read.All" in shown["Not read"]
    assert facts.mfa is not None
    assert shown["Directory roles"] == "Global Administrator (Microsoft Graph)"


@pytest.mark.slow
async def test_throttled_reads_are_retried_by_the_sdk(graph: FakeGraph, directory: GraphDirectory) -> None:
    """A 429 with Retry-After on the method listing is retried once by kiota; the audit still answers."""
    graph.fail("GET", "authentication/methods", 429, retry_after=1)
    facts = await gather_account_facts(directory, evidence(), ASSESSMENT, NOW)
    assert facts.mfa is not None
    assert [c.status for c in graph.calls("GET", "authentication/methods")] == [429, 200]


async def test_only_accounts_awaiting_approval_are_read(graph: FakeGraph, directory: GraphDirectory) -> None:
    """A benign account costs no Graph call; the replay-likely one gets its facts, by account index."""
    benign = Assessment(3, Verdict.BENIGN, (), (), ())
    other = Account("other@contoso.com", "22222222-2222-3333-4444-555555555555")
    accounts = [
        (evidence(Account(other.upn, other.object_id)), benign, plan_containment("INC-7", other, benign, Settings())),
        (evidence(), ASSESSMENT, plan_containment("INC-7", SUSPECT, ASSESSMENT, Settings())),
    ]
    found = await facts_before_approval(directory, accounts, NOW)
    assert list(found) == [1]
    assert not [r for r in graph.requests if "22222222" in r.path]


async def test_the_evidence_identity_from_the_workspace_is_preferred(graph: FakeGraph, directory: GraphDirectory) -> None:
    """An account whose evidence carries a fully answered identity (the workspace tables) costs no identity read in Graph."""
    answered = IdentityContext(display_name="Vic (IdentityInfo)", answers=tuple(Answer(f, "IdentityInfo") for f in Facet))
    accounts = [(replace(evidence(), identity=answered), ASSESSMENT, plan_containment("INC-7", SUSPECT, ASSESSMENT, Settings()))]
    found = await facts_before_approval(directory, accounts, NOW)
    assert found[0].identity.display_name == "Vic (IdentityInfo)"
    assert graph.calls("GET", "roleAssignments|riskyUsers|riskDetections") == []
    assert graph.calls("GET", f"^/users/{USER}$") == []
