"""``ternpynq serve``: run the classification service with waitress."""

from __future__ import annotations

import argparse
from pathlib import Path

import ternpynq
from ternpynq.runtime import backends


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve image classification over HTTP",
        description="Run the JSON classification service (POST /v1/classify, "
        "GET /v1/model, /openapi.json, an upload page at /) with waitress. "
        "For gunicorn: gunicorn 'ternpynq.serve:create_app()'.",
    )
    p.add_argument("--model", type=Path, default=ternpynq.DEFAULT_MODEL)
    p.add_argument("--backend", default="emu", choices=backends.names())
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import waitress

    from ternpynq.serve.app import create_app

    app = create_app({"MODEL": str(args.model), "BACKEND": args.backend})
    # load the model and open the backend now: a bad model fails here, as one line
    app.extensions["ternpynq"]()
    print(f"serving {args.model} on http://{args.host}:{args.port}/ ({args.backend})")
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads)
    return 0
