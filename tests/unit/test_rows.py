"""Rows from either engine parse into equal evidence values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from enrichment.domain.model import Account, Table, TimeWindow
from enrichment.queries import rows

AT = datetime(2026, 6, 15, 12, tzinfo=UTC)


def _evidence_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "SourceTable": "AADNonInteractiveUserSignInLogs",
        "User": "a@contoso.com",
        "UserId": "11111111-2222-3333-4444-555555555555",
        "IPAddress": "203.0.113.7",
        "Asn": "136787",
        "Country": "ng",
        "Latitude": 6.5,
        "Longitude": 3.4,
        "IsCompliant": "false",
        "TokenOnly": False,
        "RiskEvents": '["unfamiliarFeatures"]',
        "NetworkLocations": '[{"networkType":"trustedNamedLocation","networkNames":["HQ"]},{"networkType":"namedNetwork","networkNames":["Other"]}]',
        "Count": 4,
        "FirstSeen": datetime(2026, 6, 15, 11, 0),
        "LastSeen": "2026-06-15T11:05:00Z",
    }
    row.update(overrides)
    return row


class TestSignin:
    def test_duckdb_and_log_analytics_shapes_agree(self) -> None:
        """Naive UTC datetimes and JSON text parse the same as aware datetimes and decoded lists."""
        duckdb_shaped = rows.signin(_evidence_row())
        la_shaped = rows.signin(
            _evidence_row(
                FirstSeen=datetime(2026, 6, 15, 11, 0, tzinfo=UTC),
                LastSeen=datetime(2026, 6, 15, 11, 5, tzinfo=UTC),
                RiskEvents=["unfamiliarFeatures"],
                Asn=136787,
            )
        )

        assert duckdb_shaped == la_shaped

    def test_values_are_normalised(self) -> None:
        """Country upper-case, ASN an int, compliance a bool, only trusted named networks kept."""
        signin = rows.signin(_evidence_row())

        assert (
            signin.table,
            signin.asn,
            signin.country,
            signin.is_compliant,
            signin.trusted_networks,
            signin.risk_events,
            signin.count,
        ) == (Table.NON_INTERACTIVE, 136787, "NG", False, ("HQ",), ("unfamiliarFeatures",), 4)

    def test_unknown_table_is_a_row_error(self) -> None:
        """A row from a table the product does not know is refused, naming the column."""
        with pytest.raises(rows.RowError, match="SourceTable"):
            rows.signin(_evidence_row(SourceTable="SecurityEvent"))

    def test_missing_time_is_a_row_error(self) -> None:
        """A row without FirstSeen is refused, naming the column."""
        with pytest.raises(rows.RowError, match="FirstSeen"):
            rows.signin(_evidence_row(FirstSeen=None))

    def test_absent_values_are_empty_not_invented(self) -> None:
        """Missing ASN, coordinates and flags stay unknown."""
        signin = rows.signin(_evidence_row(Asn="", Latitude=None, Longitude=float("nan"), IsCompliant=""))

        assert (signin.asn, signin.latitude, signin.longitude, signin.is_compliant) == (None, None, None, None)


class TestBaseline:
    def test_table_and_day_rows_build_one_baseline(self) -> None:
        """Scope=table rows fill the per-table sets, Scope=day rows the daily series; empty strings are dropped."""
        window = TimeWindow(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 14, 12, tzinfo=UTC))
        baseline = rows.baseline(
            [
                {
                    "Scope": "table",
                    "SourceTable": "SigninLogs",
                    "Events": 10,
                    "DaysActive": 5,
                    "Ips": '["1.2.3.4",""]',
                    "Asns": '["7922"]',
                    "Hours": "[8,9]",
                    "CompliantDeviceIds": '["", "D1"]',
                },
                {
                    "Scope": "day",
                    "SourceTable": "SigninLogs",
                    "Day": datetime(2026, 6, 2),
                    "Events": 3,
                    "DistinctIps": 1,
                    "DistinctApps": 2,
                    "DistinctAsns": 1,
                },
            ],
            window,
        )

        assert baseline.interactive is not None
        assert (frozenset({"1.2.3.4"}), frozenset({7922}), frozenset({8, 9}), frozenset({"d1"})) == (
            baseline.interactive.ips,
            baseline.interactive.asns,
            baseline.interactive.hours,
            baseline.interactive.compliant_device_ids,
        )
        assert baseline.non_interactive is None
        assert [d.events for d in baseline.daily] == [3]


class TestMatching:
    def test_account_matches_by_upn_or_object_id(self) -> None:
        """Rows belong to an account by case-insensitive UPN or by object id."""
        by_upn = Account(upn="A@Contoso.com")
        by_id = Account(object_id="11111111-2222-3333-4444-555555555555")

        assert rows.belongs_to(by_upn, "a@contoso.com")
        assert rows.belongs_to(by_id, "guest@other.com", "11111111-2222-3333-4444-555555555555")
        assert not rows.belongs_to(by_id, "a@contoso.com", "")
