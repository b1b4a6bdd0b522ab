"""Live progress on a terminal or a CI log, driven by runner events.

On a terminal: a line per play and per host result, plus one status line redrawn in place (a
spinner and the running task, or a bar ``[#####-----] attempt 5/30`` while an ``until`` loop
waits). In a log (not a TTY): the same lines, retry lines thinned to one per host every
``retry_every_s`` seconds, and a heartbeat line when nothing was printed for ``heartbeat_s``
seconds so a long wait never looks like a hang. Every line also goes to ``log_path`` unthinned.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TextIO

from pdctl.events import Event, Recorder, format_event, is_wait, waiting

_SPINNER = "|/-\\"


def bar(done: int, total: int, width: int = 20) -> str:
    """``[#####---------------]`` for ``done`` of ``total`` (clamped; unknown total -> empty)."""
    if total <= 0:
        return "[" + "-" * width + "]"
    filled = max(0, min(width, round(width * done / total)))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def status_line(recorder: Recorder, elapsed: float) -> str:
    """What is going on now: the furthest pending retry as a bar, else the running task."""
    if recorder.retries:
        retry = max(recorder.retries.values(), key=lambda r: (r.attempt, r.host))
        others = len(recorder.retries) - 1
        hosts = retry.host + (f" +{others}" if others else "")
        return (f"{waiting(retry.task)} {bar(retry.attempt, retry.total)} "
                f"attempt {retry.attempt}/{retry.total} on {hosts} ({elapsed:.0f}s)")
    if recorder.current_task:
        pending = sorted(recorder.running)
        where = f" on {', '.join(pending[:3])}{' …' if len(pending) > 3 else ''}" if pending else ""
        if is_wait(recorder.current_task):
            return f"{waiting(recorder.current_task)}{where} ({elapsed:.0f}s)"
        return f"running {recorder.current_task}{where} ({elapsed:.0f}s)"
    return ""


class Progress:
    """Prints progress lines for runner events; a background ticker animates or heartbeats."""

    def __init__(self, recorder: Recorder, stream: TextIO, *, tty: bool | None = None,
                 log_path: Path | None = None, heartbeat_s: float = 30.0,
                 retry_every_s: float = 10.0, quiet: bool = False) -> None:
        self.recorder = recorder
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.quiet = quiet
        self.heartbeat_s = heartbeat_s
        self.retry_every_s = retry_every_s
        self._log = log_path.open("a", encoding="utf-8") if log_path else None
        self._lock = threading.Lock()
        self._status_shown = False
        self._last_output = time.monotonic()
        self._task_started = time.monotonic()
        self._last_retry_line: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- output -------------------------------------------------------------------------------
    def _clear_status(self) -> None:
        if self._status_shown:
            self.stream.write("\r\x1b[2K")
            self._status_shown = False

    def line(self, text: str, *, to_screen: bool = True) -> None:
        """Print a permanent line (and log it)."""
        with self._lock:
            if self._log:
                self._log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
                self._log.flush()
            if self.quiet or not to_screen:
                return
            self._clear_status()
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_output = time.monotonic()

    # -- events -------------------------------------------------------------------------------
    def event(self, event: Event) -> None:
        """Show one runner event (the recorder must already have been fed with it)."""
        kind = event.get("event")
        if kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self._task_started = time.monotonic()
            self._last_retry_line.clear()
        text = format_event(event)
        if text is None:
            return
        to_screen = True
        if kind == "runner_retry":
            host = str((event.get("event_data") or {}).get("host"))
            now = time.monotonic()
            last = self._last_retry_line.get(host)
            # Terminal: the first retry line stays, the bar shows the rest. Log: thinned.
            if last is not None and (self.tty or now - last < self.retry_every_s):
                to_screen = False
            else:
                self._last_retry_line[host] = now
        self.line(text, to_screen=to_screen)

    # -- ticker -------------------------------------------------------------------------------
    def _tick(self) -> None:
        tick = 0
        while not self._stop.wait(0.25 if self.tty else 1.0):
            tick += 1
            elapsed = time.monotonic() - self._task_started
            with self._lock:
                if self.quiet:
                    continue
                text = status_line(self.recorder, elapsed)
                if self.tty and text:
                    self.stream.write(f"\r\x1b[2K  {_SPINNER[tick % 4]} {text}"[:200])
                    self.stream.flush()
                    self._status_shown = True
                elif text and time.monotonic() - self._last_output >= self.heartbeat_s:
                    self.stream.write(f"  ... still {text}\n")
                    self.stream.flush()
                    self._last_output = time.monotonic()

    def start(self) -> None:
        """Start the ticker thread."""
        self._thread = threading.Thread(target=self._tick, name="pdctl-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the ticker and clear the status line."""
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        with self._lock:
            self._clear_status()
            self.stream.flush()
            if self._log:
                self._log.close()
                self._log = None
