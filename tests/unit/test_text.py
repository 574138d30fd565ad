"""Untrusted text cleaning (`common.text`) and the renderers' escape helpers that apply it."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.text import ELLIPSIS, capped_text, safe_text
from enrichment.render.html import account_html, esc
from enrichment.render.story import brief
from enrichment.render.timeline import timeline_svg
from playbooks.domain.incident import SentinelIncident
from playbooks.render.card import escape_markdown
from playbooks.render.comment import no_account_comment
from tests.unit import card_samples

#: What must never survive: C0 controls but tab/LF/CR, DEL, C1, bidi controls and marks, invisible formatting.
HIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]"
)
TROJAN = "admin\u202egnp.exe\u202c \x00NUL \x1b[31mred\x1b[0m \u2066isolate\u2069 zero\u200bwidth \ud800lone"


class TestSafeText:
    def test_controls_bidi_and_invisible_characters_are_removed(self) -> None:
        """NUL, ESC, bidi overrides and isolates, zero-width space are dropped; the visible letters stay in order."""
        assert safe_text(TROJAN) == "admingnp.exe NUL [31mred[0m isolate zerowidth \ufffdlone"

    @pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"])
    def test_every_bidi_override_and_isolate(self, char: str) -> None:
        """Each of U+202A-U+202E and U+2066-U+2069 is removed."""
        assert safe_text(f"a{char}b") == "ab"

    def test_ordinary_whitespace_and_scripts_stay(self) -> None:
        """Tabs, line breaks, accents, right-to-left scripts and emoji are text, not hidden characters."""
        text = "Zoë\tMüller\nשלום مرحبا\r\n😀 日本"

        assert safe_text(text) == text

    def test_lone_surrogate_becomes_a_visible_replacement(self) -> None:
        """A lone surrogate (from a JSON \\ud800 escape) becomes U+FFFD, so the text encodes as UTF-8."""
        text = safe_text(json.loads('"title \\ud800 end"'))

        assert text == "title \ufffd end"
        assert text.encode("utf-8")

    def test_a_surrogate_pair_decoded_by_json_is_kept(self) -> None:
        """A JSON escape pair is one astral character, not two lone surrogates."""
        assert safe_text(json.loads('"\\ud83d\\ude00"')) == "😀"

    def test_non_text_values_are_stringified(self) -> None:
        """A number or a structure from a hostile body is shown as its text."""
        assert safe_text(42) == "42"
        assert safe_text(["a\x00"]) == "['a\\x00']"

    @given(st.text())
    def test_nothing_hidden_survives(self, text: str) -> None:
        """Whatever the input, the output holds no hidden character and encodes as UTF-8."""
        cleaned = safe_text(text)

        assert not HIDDEN.search(cleaned)
        cleaned.encode("utf-8")


class TestCappedText:
    def test_short_text_is_kept(self) -> None:
        """Text within the limit comes back cleaned and whole."""
        assert capped_text("Token\u202e replay", 20) == "Token replay"

    def test_long_text_is_cut_with_an_ellipsis(self) -> None:
        """A 2 MB title becomes `limit` characters, the last an ellipsis."""
        capped = capped_text("A" * 2_000_000, 300)

        assert (len(capped), capped[-1]) == (300, ELLIPSIS)

    def test_hidden_characters_do_not_count(self) -> None:
        """The limit counts what a reader sees: a title padded with zero-width spaces is not cut early."""
        assert capped_text("\u200b" * 1000 + "visible", 10) == "visible"

    def test_limit_must_be_positive(self) -> None:
        """A zero limit is a programming error, not an empty string."""
        with pytest.raises(ValueError, match="at least 1"):
            capped_text("x", 0)

    @given(st.text(), st.integers(min_value=1, max_value=50))
    def test_never_over_the_limit(self, text: str, limit: int) -> None:
        """Every result is at most `limit` characters."""
        assert len(capped_text(text, limit)) <= limit


class TestRenderers:
    def test_comment_escape_drops_hidden_characters(self) -> None:
        """The comment's escape helper removes NUL, ESC and bidi controls before escaping for HTML."""
        out = esc("<b>\x00\x1b[2J\u202eevil\u2066</b>", 200)

        assert out == "&lt;b&gt;[2Jevil&lt;/b&gt;"

    def test_comment_escape_keeps_line_breaks(self) -> None:
        """Newlines and tabs are whitespace in HTML: kept as they are."""
        assert esc("a\nb\tc") == "a\nb\tc"

    def test_no_hidden_character_reaches_a_comment(self) -> None:
        """An incident value built without the parser (title, unresolved names, kinds) still renders clean."""
        incident = SentinelIncident(
            "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0",
            "soc-rg",
            "soc-ws",
            "73e01a99-5cd7-4139-a149-9f2736ff2ab5",
            84,
            TROJAN,
            "Medium",
            datetime(2026, 3, 1, 9, tzinfo=UTC),
            (),
            (TROJAN,),
            ((TROJAN, 1),),
        )

        html = no_account_comment(incident, max_chars=30_000, generated_at=datetime(2026, 3, 1, 10, tzinfo=UTC))

        assert "admingnp.exe" in html
        assert not HIDDEN.search(html)
        html.encode("utf-8")

    def test_card_escape_drops_hidden_characters(self) -> None:
        """The card's Markdown escape uses the same cleaning (and turns the line break into a space)."""
        assert escape_markdown("a\u202eb\x00c\nd\ud800") == "abc d\ufffd"

    def test_comment_and_svg_of_an_account_drop_bidi_from_sign_in_values(self) -> None:
        """A sign-in's city with a right-to-left override: neither the account's HTML nor its SVG timeline keeps it."""
        evidence, assessment = card_samples.typical()
        rows = tuple(dataclasses.replace(r, city="Par\u202eis\u2066\x00") for r in evidence.signins)
        hostile = dataclasses.replace(evidence, signins=rows)

        page = account_html(hostile, assessment, brief(hostile, assessment))
        svg = timeline_svg(hostile, assessment)

        assert "Paris" in page
        assert not HIDDEN.search(page)
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", svg)
