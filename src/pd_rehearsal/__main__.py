"""``python -m pd_rehearsal`` takes SGLang 0.5.2's ``launch_server`` flags and serves on CPU."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from .model import load_model
from .server import Engine
from .server_args import SGLangSourceError, parse_args


class _Http2Probe(logging.Filter):
    """sglang-router 0.3.2 probes every worker it adds with an HTTP/2 preface (is it gRPC?),
    which an HTTP/1 server refuses with 400, as SGLang's does. aiohttp logs that as a
    traceback; one line says what it is instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and "PRI/Upgrade" in str(exc):
            record.msg, record.args, record.exc_info, record.exc_text = (
                "refused an HTTP/2 preface with 400 (the router probing for gRPC)", (), None,
                None)
        return True


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="[%(asctime)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stdout,
    )
    logging.getLogger("aiohttp.server").addFilter(_Http2Probe())


async def _serve(engine: Engine) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(engine.start())
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({starting, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if starting in done and starting.exception() is not None:
        raise starting.exception()  # type: ignore[misc]
    await stop.wait()
    logging.getLogger("pd_rehearsal").info("shutting down")
    starting.cancel()
    await engine.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse SGLang's flags, load the rehearsal model, serve until SIGTERM."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SGLangSourceError as exc:  # no (or another) SGLang to read the flags from
        print(f"error: cannot read SGLang's launch_server flags: {exc}", file=sys.stderr)
        return 2
    _setup_logging(args.log_level)
    if args.node_rank and args.node_rank > 0:
        from .follower import run_follower

        return run_follower(args)
    try:
        model = load_model(
            args.model_path, args.served_model_name, args.rehearsal_kv_bytes_per_token
        )
    except (OSError, ValueError) as exc:
        print(f"error: cannot load rehearsal model {args.model_path!r}: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(Engine(args, model)))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
