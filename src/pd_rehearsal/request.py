"""What the HTTP layer hands the engine with each request: the PD room and client errors.

Shared by the engine (``server``) and its HTTP API (``http_api``), so neither imports the other
at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from .pd import FAKE_BOOTSTRAP_HOST


class RequestError(Exception):
    """A client error (HTTP 400) with a message for the caller."""


@dataclass
class Room:
    """PD fields the router adds to a request."""

    host: str | None
    port: int | None
    room: int | None

    @property
    def fake(self) -> bool:
        """True for SGLang's health-check marker: no KV transfer."""
        return self.host == FAKE_BOOTSTRAP_HOST
