"""Fixtures the adapter tests share: the Bot Framework fake (OpenID metadata, keys, Bot Connector)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.botframework_server import BotFrameworkFake


@pytest.fixture
async def bf() -> AsyncIterator[BotFrameworkFake]:
    async with BotFrameworkFake() as fake:
        yield fake
