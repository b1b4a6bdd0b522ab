# Copyright (c) inferops.disagg contributors
# Apache License 2.0 (see LICENSE)
"""Known request errors in bench_serving output: named, counted, with a hint where to look.

bench_serving 0.5.2 (``--backend sglang``) prints one line per failed request that raised an
exception: ``output.error='Traceback (most recent call last):\\n ...'`` (the ``repr`` of the whole
traceback, so one line). Other clients and older logs print the exception as a bare line or as a
multi-line traceback. Each known error has a stable key, the signature it is recognised by (a
regular expression found in any of those forms) and a hint.

``transfer_encoding_400``: aiohttp's ``TransferEncodingError`` (HTTP parser code 400): a chunked
response (the token stream) ended before its last chunk, i.e. the server side closed the
connection mid-stream. The seed sees it at concurrency 512+ through its proxy. It appears as
``aiohttp.http_exceptions.TransferEncodingError: 400, message:`` + ``Not enough data to satisfy
transfer length header.`` (aiohttp >= 3.9, two lines), ``TransferEncodingError: 400,
message='Not enough data ...'`` (aiohttp 3.8) and wrapped, ``aiohttp.client_exceptions.
ClientPayloadError: Response payload is not completed: <TransferEncodingError: 400,
message='Not enough data ...'>``; aiohttp before 3.8.2 spells it ``Not enough data for
satisfy``. The message is in every form, so it is the signature.

Counting: an ``output.error=`` line is one failed request (``requests``); outside those lines one
traceback (with its chained causes) or one bare line is one occurrence (``lines``), so the cause
and the ``ClientPayloadError`` that wraps it are not counted twice.
"""

from __future__ import annotations

import re

from .text import clean_lines

ROUTER_SETTINGS = (
    "router_request_timeout_secs",
    "router_disable_retries",
    "router_retry_*",
    "router_cb_*",
    "router_queue_size",
    "router_queue_timeout_secs",
    "router_max_concurrent_requests",
)
ROUTER_SETTINGS_DOC = "roles/router/README.md, 'Settings that matter under benchmark load'"

KNOWN_ERRORS: dict[str, dict[str, str]] = {
    "transfer_encoding_400": {
        "name": "TransferEncodingError",
        "description": "400, not enough data for the transfer length header",
        "signature": r"Not enough data (?:to|for) satisfy transfer length header",
        "hint": (
            "see router settings "
            + ", ".join(f"`{s}`" for s in ROUTER_SETTINGS)
            + f" ({ROUTER_SETTINGS_DOC}); the streamed (chunked) response was closed before its "
            "last chunk: the router, or a worker behind it, ended the stream"
        ),
    },
}
_SIGNATURES = [(key, re.compile(spec["signature"])) for key, spec in KNOWN_ERRORS.items()]
_REQUEST_LINE_RE = re.compile(r"(?:^|\s)output\.error=")
_TRACEBACK = "Traceback (most recent call last):"
_CHAIN_SEPARATORS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)


def classify_error(text: str) -> str | None:
    """The key of the known error ``text`` shows (``None`` when it shows none)."""
    for key, pattern in _SIGNATURES:
        if pattern.search(text):
            return key
    return None


class ErrorTally:
    """Known errors of one run, fed line by line (cleaned lines, outside result blocks).

    :meth:`feed` takes any line: an ``output.error=`` line is one failed request
    (:meth:`request_line`); other lines go to :meth:`line`, which follows tracebacks so that one
    chained traceback counts once.
    """

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.lines: dict[str, int] = {}
        self.state = "none"  # none | frames | exception | separator
        self.prefix = ""
        self.seen: set[str] = set()

    def feed(self, text: str) -> bool:
        """One line of the log; True when it is an ``output.error=`` line."""
        if _REQUEST_LINE_RE.search(text):
            self.request_line(text)
            return True
        self.line(text)
        return False

    def request_line(self, text: str) -> None:
        """One ``output.error=...`` line: one failed request."""
        self.state = "none"
        key = classify_error(text)
        if key:
            self.requests[key] = self.requests.get(key, 0) + 1

    def line(self, text: str) -> None:
        """Any other line of the log."""
        if _TRACEBACK in text:
            if self.state != "separator":
                self.seen = set()  # a new chain (or one nested in an exception message)
            if self.state == "none":
                self.prefix = text[: text.index(_TRACEBACK)]  # "node0 | ", kept by the chain
            self.state = "frames"
        elif self.state != "none":
            self._in_traceback(text)
        key = classify_error(text)
        if key is None:
            return
        if self.state != "none":
            if key in self.seen:
                return
            self.seen.add(key)
        self.lines[key] = self.lines.get(key, 0) + 1

    def _in_traceback(self, text: str) -> None:
        """Move through a traceback: frames, exception line(s), chain separators, its end."""
        if self.prefix and text.startswith(self.prefix.rstrip()):
            text = text[len(self.prefix) :]
        if not text.strip():
            return  # a blank line of the traceback (with the prefix)
        indented = text[:1].isspace()
        if text.strip() in _CHAIN_SEPARATORS:
            self.state = "separator"
        elif self.state == "frames":
            self.state = "frames" if indented else "exception"
        elif self.state == "exception" and indented:
            return  # the exception message goes on (aiohttp >= 3.9 indents it)
        else:
            self.state = "none"  # the line after the traceback

    def counts(self) -> dict[str, dict[str, int]]:
        """``{key: {"requests": n, "lines": m}}`` of the known errors seen."""
        keys = [k for k in KNOWN_ERRORS if k in self.requests or k in self.lines]
        return {
            k: {"requests": self.requests.get(k, 0), "lines": self.lines.get(k, 0)} for k in keys
        }


def scan_known_errors(text: str) -> dict[str, dict[str, int]]:
    """Known errors of a whole log, blocks or not (a run that crashed before its result block)."""
    tally = ErrorTally()
    for _number, line in clean_lines(text):
        tally.feed(line)
    return tally.counts()


def count_known_errors(errors: list) -> dict[str, dict[str, int]]:
    """Known errors of a ``--output-file`` record's ``errors`` list (``--output-details``)."""
    tally = ErrorTally()
    for error in errors:
        if error:
            tally.request_line(str(error))
    return tally.counts()


def known_error_total(counts: dict) -> int:
    """Affected requests of one known error: its ``requests``, else its ``lines``."""
    return int(counts.get("requests") or counts.get("lines") or 0)
