"""Settings: parsed from app settings or local.settings.json, every problem reported by name."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from common.errors import SettingsError
from common.settings import Settings


class TestFromValues:
    def test_defaults_without_any_setting(self) -> None:
        """An empty environment gives the documented defaults."""
        settings = Settings.from_values({})

        assert (
            settings.baseline_days,
            settings.row_cap,
            settings.travel_watchlist,
            settings.threshold_likely,
            settings.threshold_suspicious,
        ) == (14, 20_000, "TravelRecords", 70, 40)

    def test_lists_are_comma_separated(self) -> None:
        """CIDRs (v4 and v6) and ASNs are comma-separated; an AS prefix is accepted."""
        settings = Settings.from_values(
            {"REPLAY_CORPORATE_CIDRS": "10.1.0.0/16, 2001:db8::/32", "REPLAY_TRUSTED_ASNS": "AS8075, 3598"}
        )

        assert (ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("2001:db8::/32")) == settings.corporate_cidrs
        assert frozenset({8075, 3598}) == settings.trusted_asns

    def test_the_sse_is_named_by_provider_and_by_dedicated_egress(self) -> None:
        """REPLAY_SSE_PROVIDER takes known providers (any case, comma-separated); REPLAY_SSE_CIDRS takes CIDRs."""
        settings = Settings.from_values({"REPLAY_SSE_PROVIDER": "Zscaler, entra_gsa", "REPLAY_SSE_CIDRS": "165.225.20.8/29"})

        assert settings.sse_providers == frozenset({"zscaler", "entra_gsa"})
        assert settings.sse_cidrs == (ipaddress.ip_network("165.225.20.8/29"),)

    def test_an_unknown_sse_provider_is_refused_with_the_known_ones(self) -> None:
        """A provider the product cannot recognise is an error that lists the ones it can."""
        with pytest.raises(
            SettingsError, match=r"REPLAY_SSE_PROVIDER: unknown provider\(s\) palo_alto; known: zscaler, netskope"
        ):
            Settings.from_values({"REPLAY_SSE_PROVIDER": "palo_alto"})

    def test_signal_weights_are_overrides_of_registered_signals(self) -> None:
        """REPLAY_SIGNAL_WEIGHTS takes signal_id=points pairs; 0 turns a signal off; the last pair for an id wins."""
        settings = Settings.from_values({"REPLAY_SIGNAL_WEIGHTS": "session_ip_switch=40, new_app=0, new_app=3"})

        assert settings.signal_weights == (("new_app", 3), ("session_ip_switch", 40))

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            ("sesion_ip_switch=40", "unknown signal 'sesion_ip_switch'; known: session_ip_switch"),
            ("new_app", "'new_app' is not signal_id=points"),
            ("new_app=many", "new_app: points must be a whole number from 0 to 100"),
            ("new_app=101", "new_app: points must be a whole number from 0 to 100"),
        ],
    )
    def test_a_bad_signal_weight_is_refused_by_name(self, raw: str, message: str) -> None:
        """A weight for an id the registry does not know, or not a number from 0 to 100, is a settings error."""
        with pytest.raises(SettingsError, match=message):
            Settings.from_values({"REPLAY_SIGNAL_WEIGHTS": raw})

    def test_scoring_changes_name_what_differs_from_the_defaults(self) -> None:
        """Thresholds and weights that differ from the defaults are listed with the default beside them; defaults are not."""
        tuned = Settings.from_values(
            {"REPLAY_THRESHOLD_LIKELY": "60", "REPLAY_SIGNAL_WEIGHTS": "new_app=0, session_ip_switch=35"}
        )

        assert tuned.scoring_changes() == ("REPLAY_THRESHOLD_LIKELY is 60 (default 70)", "signal new_app weighs 0 (default 8)")
        assert Settings().scoring_changes() == ()

    def test_every_bad_setting_is_reported_together(self) -> None:
        """Three bad settings produce one error naming all three."""
        with pytest.raises(SettingsError) as caught:
            Settings.from_values(
                {"REPLAY_ROW_CAP": "many", "REPLAY_VPN_CIDRS": "10.0.0.0/33", "REPLAY_OPTIONAL_ACTIONS": "nuke_tenant"}
            )

        names = [p.split(":")[0] for p in caught.value.problems]
        assert names == ["REPLAY_ROW_CAP", "REPLAY_VPN_CIDRS", "REPLAY_OPTIONAL_ACTIONS"]

    def test_thresholds_must_be_ordered(self) -> None:
        """A suspicious threshold above the likely threshold is refused."""
        with pytest.raises(SettingsError, match="REPLAY_THRESHOLD_SUSPICIOUS"):
            Settings.from_values({"REPLAY_THRESHOLD_LIKELY": "30", "REPLAY_THRESHOLD_SUSPICIOUS": "50"})

    def test_azure_requirements_are_named(self) -> None:
        """The Function App's required settings are listed by name when missing."""
        missing = Settings.from_values({}).missing_for_azure()

        assert [m.split(":")[0] for m in missing] == [
            "REPLAY_WORKSPACE_ID",
            "REPLAY_TENANT_ID",
            "REPLAY_BOT_APP_ID",
            "REPLAY_TEAMS_CHANNEL_ID",
            "REPLAY_APPROVER_GROUP_ID or REPLAY_APPROVER_OBJECT_IDS",
        ]

    def test_names_cover_every_field(self) -> None:
        """Every field is reachable through exactly one app setting name."""
        names = Settings.names()

        assert len(names) == len(Settings.__dataclass_fields__)
        assert all(n.startswith("REPLAY_") or n == "AZURE_CLIENT_ID" for n in names)


class TestFromFile:
    def test_reads_values_of_local_settings(self, tmp_path: Path) -> None:
        """The Values object of local.settings.json holds the app settings."""
        path = tmp_path / "local.settings.json"
        path.write_text(json.dumps({"IsEncrypted": False, "Values": {"REPLAY_BASELINE_DAYS": "7"}}), encoding="utf-8")

        assert Settings.from_file(path).baseline_days == 7

    @pytest.mark.parametrize(
        ("content", "message"),
        [("{not json", "not JSON"), ('{"Values": 3}', "no 'Values' object")],
    )
    def test_unusable_file_is_a_settings_error(self, tmp_path: Path, content: str, message: str) -> None:
        """A file that is not a settings document is refused with the reason."""
        path = tmp_path / "local.settings.json"
        path.write_text(content, encoding="utf-8")

        with pytest.raises(SettingsError, match=message):
            Settings.from_file(path)

    def test_missing_file_is_a_settings_error(self, tmp_path: Path) -> None:
        """A missing file names the path."""
        with pytest.raises(SettingsError, match="cannot read"):
            Settings.from_file(tmp_path / "absent.json")
