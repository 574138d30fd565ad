"""The shared helpers in common/: one copy each of GUID, URL, time and error-line handling, and the verdict names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from common.command import ArgumentParser
from common.errors import InputError, first_line
from common.identifiers import is_guid
from common.times import iso_z, parse_utc, utc_text
from common.urls import URL_LIMIT, https_url
from enrichment.domain.model import Verdict

GUID = "0c7f6a1e-52a3-4d7e-9b55-1f0e9d3c2b10"


class TestIdentifiers:
    def test_a_guid_is_accepted_in_either_case(self) -> None:
        """Entra and Azure ids are GUIDs in upper or lower case."""
        assert is_guid(GUID)
        assert is_guid(GUID.upper())

    @pytest.mark.parametrize("text", [f"{GUID}\n", f" {GUID}", f"{GUID}x", GUID[:-1], "", f"{GUID}' or 1==1"])
    def test_anything_around_or_short_of_a_guid_is_refused(self, text: str) -> None:
        """Only the whole string counts: a trailing newline, a prefix or a suffix make it no GUID."""
        assert not is_guid(text)


class TestUrls:
    def test_a_plain_https_url_is_kept_stripped(self) -> None:
        """An incident link is carried as given, without surrounding blanks."""
        url = "https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident/x"
        assert https_url(f"  {url}\n") == url

    @pytest.mark.parametrize(
        "value", ["http://example.com/", "javascript:alert(1)", "https://exa mple.com/", "https://", 42, None]
    )
    def test_anything_else_is_no_link(self, value: object) -> None:
        """Other schemes, blanks inside, no host or no string at all give '' (no link beats a bad one)."""
        assert https_url(value) == ""

    def test_a_link_longer_than_the_limit_is_dropped(self) -> None:
        """A link longer than URL_LIMIT is not carried into a card or comment."""
        assert https_url("https://example.com/" + "a" * URL_LIMIT) == ""


class TestTimes:
    def test_no_offset_means_utc(self) -> None:
        """A time written without an offset is UTC, never the machine's local time."""
        assert parse_utc("2026-06-15T12:00:00") == datetime(2026, 6, 15, 12, tzinfo=UTC)

    def test_offsets_are_converted_to_utc(self) -> None:
        """'Z' and explicit offsets both come back as aware UTC."""
        assert parse_utc(" 2026-06-15T12:00:00Z ") == datetime(2026, 6, 15, 12, tzinfo=UTC)
        assert parse_utc("2026-06-15T14:00:00+02:00") == datetime(2026, 6, 15, 12, tzinfo=UTC)

    def test_not_a_time_is_a_value_error(self) -> None:
        """Callers turn the ValueError into their own error naming the field."""
        with pytest.raises(ValueError, match="Invalid isoformat"):
            parse_utc("yesterday")

    def test_written_forms(self) -> None:
        """JSON fields are ISO 8601 with 'Z'; people read minutes (or seconds) in UTC."""
        moment = datetime(2026, 6, 15, 14, 5, 9, tzinfo=timezone(timedelta(hours=2)))
        assert iso_z(moment) == "2026-06-15T12:05:09Z"
        assert utc_text(moment) == "2026-06-15 12:05 UTC"
        assert utc_text(moment, seconds=True) == "2026-06-15 12:05:09 UTC"


class TestCommandLines:
    def test_usage_errors_are_bad_input(self) -> None:
        """A bad flag raises InputError (exit 2, one line) instead of argparse printing usage and exiting."""
        parser = ArgumentParser(prog="x")
        parser.add_argument("--n", type=int)
        with pytest.raises(InputError, match="invalid int value"):
            parser.parse_args(["--n", "many"])

    def test_first_line_of_an_error(self) -> None:
        """Only the first line of a long message is kept (clipped on request); an empty one names the type."""
        assert first_line(ValueError("one\ntwo\nthree")) == "one"
        assert first_line(ValueError("abcdef"), 3) == "abc"
        assert first_line(KeyError()) == "KeyError"


class TestVerdictNames:
    def test_every_verdict_has_words_a_label_and_a_concern(self) -> None:
        """The one table behind the text headline, the comment, the card and the incident label."""
        assert [(v.words, v.slug) for v in Verdict] == [
            ("token replay likely", "likely"),
            ("suspicious", "suspicious"),
            ("insufficient evidence", "insufficient-evidence"),
            ("benign", "benign"),
        ]
        assert sorted(Verdict, key=lambda v: -v.concern) == [
            Verdict.REPLAY_LIKELY,
            Verdict.SUSPICIOUS,
            Verdict.INSUFFICIENT_EVIDENCE,
            Verdict.BENIGN,
        ]
