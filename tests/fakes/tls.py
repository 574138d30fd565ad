"""
One throwaway certificate authority per test process, for fakes that must speak HTTPS.

azure-core refuses to send a bearer token over plain http, so every fake an SDK talks to is an
HTTPS server on 127.0.0.1. The CA is made once (key generation is the slow part) and its PEM is
written to a temporary file, because SDK clients take `connection_verify=<path>`, not a context.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import ssl
import tempfile
from dataclasses import dataclass

import trustme


@dataclass(frozen=True, slots=True)
class FakeTls:
    """A server-side SSL context for 127.0.0.1/localhost and the CA file clients verify it with."""

    ca_path: str
    _leaf: trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        """A fresh server context; each fake gets its own so none can reconfigure another's."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._leaf.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA, for tests that call a fake without an SDK."""
        return ssl.create_default_context(cafile=self.ca_path)


@functools.cache
def fake_tls() -> FakeTls:
    """The process-wide CA; its PEM file is removed when the interpreter exits."""
    ca = trustme.CA()
    handle, path = tempfile.mkstemp(prefix="fake-ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:
        out.write(ca.cert_pem.bytes())
    atexit.register(_remove, path)
    return FakeTls(ca_path=path, _leaf=ca.issue_cert("127.0.0.1", "localhost", "::1"))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
