"""
The composition root of the Function App: settings, the query engine, the Sentinel, Graph and Bot Connector adapters, the bot.

Nothing is built at import time (indexing imports every module, and one failure there hides every
function). Each piece is built on first use and kept for the life of the worker process: the
credential and HTTP connection pools are meant to be reused across invocations. Tests install their
own `Services` (pointing at the fake servers) with `install`; production code only calls `current`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from common.errors import SettingsError
from common.settings import Settings

if TYPE_CHECKING:
    from enrichment.ports import QueryEngine
    from playbooks.adapters.bot_connector import BotConnector
    from playbooks.adapters.graph import GraphDirectory
    from playbooks.adapters.sentinel import SentinelIncidents
    from playbooks.adapters.teams_bot import ApprovalBot

EngineFactory = Callable[[Settings], "QueryEngine"]
SentinelFactory = Callable[[Settings], "SentinelIncidents"]
GraphFactory = Callable[[Settings], "GraphDirectory"]
ConnectorFactory = Callable[[Settings], "BotConnector"]


def _log_analytics(settings: Settings) -> QueryEngine:
    from enrichment.adapters.loganalytics import LogAnalyticsEngine

    return LogAnalyticsEngine.create(settings)


def _sentinel(settings: Settings) -> SentinelIncidents:
    from playbooks.adapters.sentinel import SentinelIncidents

    return SentinelIncidents.create(settings)


def _graph(settings: Settings) -> GraphDirectory:
    """Graph as the containment identity: the only one holding the containment permissions."""
    from common.credentials import containment_async_credential
    from playbooks.adapters.graph import create_graph_directory

    return create_graph_directory(settings, credential=containment_async_credential(settings))


def _bot_graph(settings: Settings) -> GraphDirectory:
    """Graph as the bot's identity: directory reads only (the approver check), so a click from Teams can never reach a write."""
    from common.credentials import bot_async_credential
    from playbooks.adapters.graph import create_graph_directory

    return create_graph_directory(settings, credential=bot_async_credential(settings))


def _connector(settings: Settings) -> BotConnector:
    from playbooks.adapters.bot_connector import BotConnector

    return BotConnector(settings)


class Services:
    """
    What the functions use, built lazily from the app settings.

    `settings()` validates everything at once, including what the Function App cannot run
    without (`Settings.missing_for_azure`), and raises one `SettingsError` naming every problem.
    A failure is not cached, so fixed app settings take effect on the next invocation.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        engine: EngineFactory = _log_analytics,
        sentinel: SentinelFactory = _sentinel,
        graph: GraphFactory = _graph,
        connector: ConnectorFactory = _connector,
        bot_graph: GraphFactory = _bot_graph,
    ) -> None:
        self._environ = environ
        self._engine_factory = engine
        self._sentinel_factory = sentinel
        self._graph_factory = graph
        self._connector_factory = connector
        self._bot_graph_factory = bot_graph
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._engine: QueryEngine | None = None
        self._sentinel: SentinelIncidents | None = None
        self._graph: GraphDirectory | None = None
        self._bot_graph: GraphDirectory | None = None
        self._connector: BotConnector | None = None
        self._bot: ApprovalBot | None = None

    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                settings = Settings.from_environ(os.environ if self._environ is None else self._environ)
                missing = settings.missing_for_azure()
                if missing:
                    raise SettingsError(missing)
                self._settings = settings
            return self._settings

    def engine(self) -> QueryEngine:
        settings = self.settings()
        with self._lock:
            if self._engine is None:
                self._engine = self._engine_factory(settings)
            return self._engine

    def sentinel(self) -> SentinelIncidents:
        settings = self.settings()
        with self._lock:
            if self._sentinel is None:
                self._sentinel = self._sentinel_factory(settings)
            return self._sentinel

    def graph(self) -> GraphDirectory:
        """
        The Graph adapter (async) as the containment identity. Built on first use inside an async
        function, so its HTTP pool belongs to the worker's event loop, which runs every async function
        of the process.
        """
        settings = self.settings()
        with self._lock:
            if self._graph is None:
                self._graph = self._graph_factory(settings)
            return self._graph

    def connector(self) -> BotConnector:
        """Posting and refreshing approval cards with the bot's identity."""
        settings = self.settings()
        with self._lock:
            if self._connector is None:
                self._connector = self._connector_factory(settings)
            return self._connector

    def bot_graph(self) -> GraphDirectory:
        """
        The Graph adapter (async) as the bot's identity, which may read users and group membership and
        nothing else: the approver check and the clicker's UPN, the suspect's object id before a card.
        """
        settings = self.settings()
        with self._lock:
            if self._bot_graph is None:
                self._bot_graph = self._bot_graph_factory(settings)
            return self._bot_graph

    def bot(self) -> ApprovalBot:
        """The approval bot behind POST /api/messages, built once: its key, token and decision caches live with the worker."""
        from playbooks.adapters.teams_bot import ApprovalBot

        settings = self.settings()
        directory = self.bot_graph()
        with self._lock:
            if self._bot is None:
                self._bot = ApprovalBot(settings, directory)
            return self._bot


_current: Services | None = None
_current_lock = threading.Lock()


def configure() -> None:
    """
    Route structlog through stdlib logging (idempotent, no I/O).

    Every function entry point calls it, through `current()` or directly (the orchestrator, which
    needs no services): a worker may run an orchestrator replay before anything else, and an
    unconfigured structlog would print past the Functions host instead of through it.
    """
    from common.logs import configure_logging

    configure_logging()


def current() -> Services:
    """The process's services (created on first call, with logging configured)."""
    global _current  # noqa: PLW0603 - the one process-wide composition root
    with _current_lock:
        if _current is None:
            configure()
            _current = Services()
        return _current


def install(services: Services | None) -> Services | None:
    """Replace the process's services (tests point them at fakes); returns the previous ones."""
    global _current
    with _current_lock:
        previous, _current = _current, services
        return previous
