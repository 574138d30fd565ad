"""
The Function App's entry point: the one `DFApp` and the blueprints registered on it, nothing else.

The Functions worker imports this module to index the app, and one failing import hides every
function, so it stays thin: no settings read, no client built, no I/O here. The blueprints build what
they need on first use (`playbooks.wiring`); the bot is built on its first request.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from playbooks import wiring
from playbooks.functions.approval_flow import bp as approval_orchestration
from playbooks.functions.bot_api import approval_blueprint
from playbooks.functions.http_api import bp as incident_api
from playbooks.functions.orchestrator import bp as incident_orchestration

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(incident_api)
app.register_functions(incident_orchestration)
app.register_functions(approval_orchestration)
app.register_functions(approval_blueprint(lambda: wiring.current().bot()))
