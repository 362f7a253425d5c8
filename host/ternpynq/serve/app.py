"""Flask app factory for the classification service.

One classifier per app, opened lazily on the first request that needs it: the device behind a
backend is shared by the whole process. Request threads decode their images in parallel, at
most MAX_DECODES at once (each can cost ~90 MB, and a PYNQ-Z2 has 512 MB); a ``Batcher``
worker is the only caller of the backend, so concurrent requests share batches.
"""

from __future__ import annotations

import atexit
import hmac
import os
import re
import threading
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, render_template_string, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import HTTPException, Unauthorized

import ternpynq
from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.io import load
from ternpynq.bundle.schema import InputSpec
from ternpynq.bundle.stats import model_stats
from ternpynq.runtime import backends
from ternpynq.runtime.classifier import Classifier
from ternpynq.runtime.preprocess import preprocess
from ternpynq.serve.batcher import Batcher
from ternpynq.serve.commands import DEFAULT_DECODES, TOKEN_ENV
from ternpynq.serve.openapi import spec
from ternpynq.serve.page import UPLOAD_PAGE
from ternpynq.serve.worker import ProcessBackend

MAX_IMAGES = 16
# onnxruntime's spinning idle threads would take the cores the request threads need: at one
# client they tripled the server's CPU time per request (docs/serving.md)
SERVING_OPTIONS = {"onnx": {"spin": False}}
# emu runs in a child process by default, off the request threads' GIL (worker.py). onnx
# releases the GIL while it runs and gained nothing measurable there (docs/serving.md); the
# board's driver stays in the server's process, the one owner of the overlay
PROCESS_BACKENDS = ("emu",)
OPEN_PATHS = ("/", "/healthz")  # the page holds no data; it asks for the token itself
_TOP = re.compile(r"[0-9]{1,4}")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app.

    Config keys: MODEL (path), BACKEND (name), MAX_CONTENT_LENGTH (bytes), DEFAULT_TOP,
    MAX_BATCH, BATCH_WINDOW_MS and BATCH_ADAPTIVE (dynamic batching), MAX_DECODES (images
    decoded at once, across requests), BACKEND_PROCESS (run emu in a child process), TOKEN
    (a bearer token every endpoint but / and /healthz then requires; default
    $TERNPYNQ_TOKEN, else none).
    """
    app = Flask(__name__)
    app.config.from_mapping(
        MODEL=str(ternpynq.IMAGENET_MODEL),
        BACKEND="emu",
        MAX_CONTENT_LENGTH=16 << 20,
        DEFAULT_TOP=5,
        MAX_BATCH=16,
        BATCH_WINDOW_MS=2.0,
        BATCH_ADAPTIVE=True,
        MAX_DECODES=DEFAULT_DECODES,
        BACKEND_PROCESS=True,
        TOKEN=os.environ.get(TOKEN_ENV) or None,
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    state: dict = {}
    lock = threading.Lock()
    decodes = threading.BoundedSemaphore(app.config["MAX_DECODES"])

    def decode(name: str, data: bytes, spec: InputSpec) -> np.ndarray:
        with decodes:  # decoding is CPU-bound: more at once than cores only costs memory
            return preprocess(data, spec, name)

    def classifier() -> Classifier:
        with lock:
            if "clf" not in state:
                name = backends.resolve(app.config["BACKEND"])
                options = SERVING_OPTIONS.get(name, {})
                bundle = load(Path(app.config["MODEL"]))  # a bad model fails here, in-process
                start = None  # a child process is sent the next batch while it computes
                if app.config["BACKEND_PROCESS"] and name in PROCESS_BACKENDS:
                    child = ProcessBackend(bundle, name, **options)
                    clf = Classifier(bundle, backend=child)
                    start = clf.start
                else:
                    clf = Classifier(bundle, backend=name, **options)
                batcher = Batcher(
                    clf.logits,
                    app.config["MAX_BATCH"],
                    app.config["BATCH_WINDOW_MS"] / 1000,
                    app.config["BATCH_ADAPTIVE"],
                    start=start,
                )
                state.update(clf=clf, batcher=batcher)
                atexit.register(clf.close)
                atexit.register(batcher.close)  # runs first: no batch is left mid-flight
            return state["clf"]

    app.extensions["ternpynq"] = classifier

    @app.before_request
    def check_token():
        token = app.config["TOKEN"]
        if not token or request.path in OPEN_PATHS:
            return
        supplied = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(supplied, f"Bearer {token}".encode()):
            raise Unauthorized(
                "send the server's token as 'Authorization: Bearer <token>'",
                www_authenticate=WWWAuthenticate("bearer"),
            )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # werkzeug's own response keeps the headers the status needs (Allow, WWW-Authenticate)
        response = exc.get_response()
        response.set_data(app.json.dumps({"error": exc.name, "detail": exc.description}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(BundleError)
    @app.errorhandler(OSError)
    def unavailable(exc: Exception):
        # the server's model or device is at fault, not the request; the details (paths)
        # go to the server's log, not to the client
        app.logger.error("model or device unavailable: %s", exc)
        return jsonify(error="Service Unavailable", detail="model or device unavailable"), 503

    @app.errorhandler(ValueError)
    def bad_input(exc: ValueError):
        return jsonify(error="Bad Request", detail=str(exc)), 400

    @app.get("/")
    def index():
        about = ""
        if not app.config["TOKEN"]:  # behind a token the page says nothing about the model
            b = classifier().bundle
            source = b.extra.get("source")
            about = f"{b.model} ({len(b.labels)} classes{', from ' + source if source else ''})"
        return render_template_string(UPLOAD_PAGE, model=about, token=bool(app.config["TOKEN"]))

    @app.get("/healthz")
    def health():
        return jsonify(status="ok")

    @app.get("/v1/model")
    def model():
        clf = classifier()
        b = clf.bundle
        stats = model_stats(b)
        return jsonify(
            model=b.model,
            # where the network came from and how it was compressed, as its bundle records it
            about={k: b.extra[k] for k in ("source", "method", "published_top1") if k in b.extra},
            backend=clf.backend_name,
            labels=b.labels,
            g=b.g,
            input={"size": list(b.input.size), "channels": b.input.channels},
            compression={
                k: stats[k] for k in ("density", "s_min", "cr", "float_bytes", "stream_bytes")
            },
        )

    @app.post("/v1/classify")
    def classify():
        top = _top(request.args.get("top"), app.config["DEFAULT_TOP"])
        images = _uploads()
        clf = classifier()
        codes = np.stack([decode(name, data, clf.bundle.input) for name, data in images])
        ranked = clf.rank(state["batcher"].submit(codes), min(top, clf.bundle.num_classes))
        results = [
            {"image": name, "top": [vars(p) for p in preds]}
            for (name, _), preds in zip(images, ranked, strict=True)
        ]
        return jsonify(model=clf.bundle.model, backend=clf.backend_name, results=results)

    @app.get("/openapi.json")
    def openapi():
        return jsonify(spec(token=bool(app.config["TOKEN"])))

    return app


def _top(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not _TOP.fullmatch(raw) or not 1 <= int(raw) <= 1000:
        raise ValueError("top must be an integer from 1 to 1000")
    return int(raw)


def _uploads() -> list[tuple[str, bytes]]:
    """The request's images as (name, bytes): multipart field 'image', or a raw image/* body."""
    if request.mimetype == "multipart/form-data":
        files = request.files.getlist("image")
        if not files:
            raise ValueError("send images as multipart field 'image' (at least one file)")
        images = [(f.filename or "upload", f.read()) for f in files]
    elif request.mimetype.startswith("image/"):
        images = [("body", request.get_data())]
    else:
        raise ValueError("send images as multipart field 'image' or a raw image/* body")
    if len(images) > MAX_IMAGES:
        raise ValueError(f"at most {MAX_IMAGES} images per request")
    for name, data in images:
        if not data:
            raise ValueError(f"{name}: empty upload")
    return images
