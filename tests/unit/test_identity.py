"""The identity context: which source answered each facet, and how a fallback source fills the gaps."""

from __future__ import annotations

from datetime import UTC, datetime

from enrichment.domain.identity import Answer, Facet, IdentityContext, RiskDetection, merged

AT = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
GRAPH = "Microsoft Graph"


def test_a_facet_without_an_answer_is_unanswered() -> None:
    """A facet no source has spoken about is listed as unanswered, as is one whose source failed."""
    context = IdentityContext(answers=(Answer(Facet.PROFILE, "IdentityInfo"), Answer(Facet.RISK, "", "403 from Graph")))

    assert context.unanswered == (Facet.ROLES, Facet.RISK)


def test_fallback_fills_only_what_the_workspace_could_not_answer() -> None:
    """Graph's profile is ignored when IdentityInfo answered; Graph's risk is taken when AADRiskyUsers is absent."""
    workspace = IdentityContext(
        display_name="Marta Sanchez",
        department="Finance",
        answers=(
            Answer(Facet.PROFILE, "IdentityInfo"),
            Answer(Facet.ROLES, "IdentityInfo"),
            Answer(Facet.RISK, "", "AADRiskyUsers is not collected"),
        ),
    )
    detection = RiskDetection("anomalousToken", "high", AT, "159.203.57.40", "atRisk")
    graph = IdentityContext(
        display_name="M. Sanchez (Graph)",
        privileged_roles=("Global Administrator",),
        risk_level="high",
        risk_state="atRisk",
        risk_detections=(detection,),
        answers=(Answer(Facet.PROFILE, GRAPH), Answer(Facet.ROLES, GRAPH), Answer(Facet.RISK, GRAPH)),
    )

    result = merged(workspace, graph)

    assert (result.display_name, result.department, result.privileged_roles) == ("Marta Sanchez", "Finance", ())
    assert ("high", (detection,)) == (result.risk_level, result.risk_detections)
    assert tuple(result.answer(f).source for f in Facet) == ("IdentityInfo", "IdentityInfo", GRAPH)  # type: ignore[union-attr]
    assert result.unanswered == ()


def test_an_answered_empty_risk_is_not_overwritten() -> None:
    """'No risk recorded' from the workspace stands; a second source does not replace an answer with its own."""
    workspace = IdentityContext(answers=(Answer(Facet.RISK, "AADRiskyUsers"),))
    graph = IdentityContext(risk_level="low", answers=(Answer(Facet.RISK, GRAPH),))

    assert merged(workspace, graph).risk_level == ""


def test_both_sources_failing_keeps_both_reasons() -> None:
    """When neither source can answer, the facet stays unanswered and says why each failed."""
    workspace = IdentityContext(answers=(Answer(Facet.RISK, "", "AADRiskyUsers is not collected"),))
    graph = IdentityContext(answers=(Answer(Facet.RISK, "", "Graph answered 403: IdentityRiskyUser.Read.All missing"),))

    result = merged(workspace, graph)

    assert result.unanswered == (Facet.PROFILE, Facet.ROLES, Facet.RISK)
    assert (
        result.answer(Facet.RISK).problem
        == "AADRiskyUsers is not collected; Graph answered 403: IdentityRiskyUser.Read.All missing"
    )  # type: ignore[union-attr]
