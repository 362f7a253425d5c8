"""``ternpynq serve``: run the classification service with waitress.

Every waitress limit that matters under load or attack is set here on purpose (the defaults
let 100 idle connections lock everyone out); docs/serving.md explains each one.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import time

import ternpynq
from ternpynq.runtime import backends

TOKEN_ENV = "TERNPYNQ_TOKEN"  # also read by create_app, so gunicorn workers see it too
# the cores this process may use (sched_getaffinity is Linux-only; the CLI imports this)
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
DEFAULT_DECODES = min(4, _CORES or 1)
QUEUE_WARNING_S = 10.0  # waitress's "all threads busy" warning, at most once per this
REQUEST_NICE = 10  # measured best of 0/5/10 for emu at 16 clients on 2 cores (docs/serving.md)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve image classification over HTTP",
        description="Run the JSON classification service (POST /v1/classify, "
        "GET /v1/model, /openapi.json, an upload page at /) with waitress. "
        "Listens on 127.0.0.1 unless --host says otherwise; any other address needs a "
        f"bearer token (--token or ${TOKEN_ENV}). "
        "For gunicorn: gunicorn 'ternpynq.serve:create_app()' (docs/serving.md).",
    )
    p.add_argument(
        "--model",
        type=ternpynq.resolve_model,
        default=ternpynq.IMAGENET_MODEL,
        help="a .tpq bundle, or a shipped model's name: imagenet (default), fashion-mnist",
    )
    p.add_argument("--backend", default="emu", choices=backends.names())
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port, 0 for any free one")
    p.add_argument(
        "--token",
        help=f"bearer token required on every endpoint but /healthz and / (or ${TOKEN_ENV})",
    )
    p.add_argument(
        "--threads", type=_positive, default=16, help="request threads; at least the clients"
    )
    p.add_argument(
        "--max-decodes",
        type=_positive,
        default=DEFAULT_DECODES,
        help=f"images decoded at once across requests ({DEFAULT_DECODES}: the cores, at most 4)",
    )
    p.add_argument("--max-batch", type=_positive, default=16, help="images per backend batch")
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        help="how long the first image of a batch waits for others (2 ms)",
    )
    p.add_argument(
        "--fixed-window",
        action="store_true",
        help="never stretch the batching window under load (docs/serving.md)",
    )
    p.add_argument(
        "--backend-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run emu in a child process, off the request threads' GIL (default)",
    )
    p.add_argument(
        "--request-nice",
        type=_nice,
        default=REQUEST_NICE,
        help=f"lower the request threads' CPU priority by this much ({REQUEST_NICE}; 0 keeps "
        "it), so the batcher and backend win a contended core (docs/serving.md)",
    )
    p.add_argument("--connection-limit", type=_positive, default=256)
    p.add_argument(
        "--channel-timeout",
        type=_positive,
        default=15,
        help="seconds before an idle connection closes",
    )
    p.set_defaults(func=run)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _nice(text: str) -> int:
    if not text.isdigit() or int(text) > 19:
        raise argparse.ArgumentTypeError(f"{text!r} is not a niceness of 0 to 19")
    return int(text)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses; a name that is not 'localhost' is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OnePerInterval(logging.Filter):
    """Let one record through per ``seconds``, saying how many were held back since.

    waitress warns on every request that finds all threads busy ("Task queue depth is N"):
    hundreds of lines a second under load, and a stderr pipe that nobody reads fills and
    stops the server."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.last, self.held = seconds, -float("inf"), 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            self.held += 1
            return False
        if self.held:
            record.msg = f"{record.msg} (and %d more such warnings in the last %.0f s)"
            record.args = (*(record.args or ()), self.held, now - self.last)
        self.last, self.held = now, 0
        return True


_QUEUE_FILTER = OnePerInterval(QUEUE_WARNING_S)


def run(args: argparse.Namespace) -> int:
    import waitress

    from ternpynq.cli import CommandError
    from ternpynq.serve.app import create_app

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        raise CommandError(
            f"--host {args.host} is reachable from other machines: set a bearer token with "
            f"--token or ${TOKEN_ENV} (or listen on 127.0.0.1)"
        )
    if not 0 <= args.batch_window_ms <= 1000:
        raise CommandError("--batch-window-ms must be 0 to 1000")
    app = create_app(
        {
            "MODEL": str(args.model),
            "BACKEND": args.backend,
            "TOKEN": token,
            "MAX_BATCH": args.max_batch,
            "BATCH_WINDOW_MS": args.batch_window_ms,
            "BATCH_ADAPTIVE": not args.fixed_window,
            "MAX_DECODES": args.max_decodes,
            "BACKEND_PROCESS": args.backend_process,
        }
    )
    # load the model and open the backend now: a bad model fails here, as one line
    app.extensions["ternpynq"]()
    # The batcher's threads and the backend's child exist now and keep their priority; the
    # request threads waitress starts below inherit this thread's lower one (nice is per
    # thread on Linux). HTTP work only matters as fast as the backend takes it, and under
    # load the request threads otherwise crowd the child off its core.
    if args.request_nice and hasattr(os, "nice"):  # not on Windows
        os.nice(args.request_nice)
    logging.getLogger("waitress.queue").addFilter(_QUEUE_FILTER)  # once, however often run
    server = waitress.create_server(  # binds now, so a port in use fails before we print
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        connection_limit=args.connection_limit,
        channel_timeout=args.channel_timeout,
        cleanup_interval=max(1, min(5, args.channel_timeout // 3)),
        max_request_body_size=app.config["MAX_CONTENT_LENGTH"] + (64 << 10),
        max_request_header_size=64 << 10,
        asyncore_use_poll=True,  # select() fails past 1024 descriptors
        ident="ternpynq",
    )
    listen = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    where = ", ".join(f"http://[{h}]:{p}/" if ":" in h else f"http://{h}:{p}/" for h, p in listen)
    auth = "bearer token required" if token else "no token"
    print(f"serving {args.model} on {where} ({args.backend}, {auth})", flush=True)
    server.run()
    return 0
