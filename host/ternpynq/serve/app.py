"""Flask app factory for the classification service.

One classifier per app, opened lazily on the first request that needs it: the device behind a
backend is shared by the whole process, and ``Classifier`` serialises calls to it.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from flask import Flask, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException

import ternpynq
from ternpynq.bundle.errors import BundleError
from ternpynq.bundle.io import load
from ternpynq.bundle.stats import model_stats
from ternpynq.runtime.classifier import Classifier
from ternpynq.serve.openapi import spec
from ternpynq.serve.page import UPLOAD_PAGE

MAX_IMAGES = 16


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. Config keys: MODEL (path), BACKEND (name), MAX_CONTENT_LENGTH (bytes)."""
    app = Flask(__name__)
    app.config.from_mapping(
        MODEL=str(ternpynq.DEFAULT_MODEL), BACKEND="emu", MAX_CONTENT_LENGTH=16 << 20, DEFAULT_TOP=5
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    state: dict = {}
    lock = threading.Lock()

    def classifier() -> Classifier:
        with lock:
            if "clf" not in state:
                clf = Classifier(load(Path(app.config["MODEL"])), backend=app.config["BACKEND"])
                state["clf"] = clf
                atexit.register(clf.close)
            return state["clf"]

    app.extensions["ternpynq"] = classifier

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.name, detail=exc.description), exc.code

    @app.errorhandler(BundleError)
    @app.errorhandler(OSError)
    def unavailable(exc: Exception):
        # the server's model or device is at fault, not the request
        return jsonify(error="Service Unavailable", detail=str(exc)), 503

    @app.errorhandler(ValueError)
    def bad_input(exc: ValueError):
        return jsonify(error="Bad Request", detail=str(exc)), 400

    @app.get("/")
    def index():
        return render_template_string(UPLOAD_PAGE, model=classifier().bundle.model)

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
        top = request.args.get("top", app.config["DEFAULT_TOP"], type=int)
        if top is None or not 1 <= top <= 1000:
            raise ValueError("top must be an integer from 1 to 1000")
        files = request.files.getlist("image")
        if files:
            images = [(f.filename or "upload", f.read()) for f in files]
        elif request.content_type and request.content_type.startswith("image/"):
            images = [("body", request.get_data())]
        else:
            raise ValueError("send images as multipart field 'image' or a raw image/* body")
        if len(images) > MAX_IMAGES:
            raise ValueError(f"at most {MAX_IMAGES} images per request")
        clf = classifier()
        results = []
        for name, data in images:
            if not data:
                raise ValueError(f"{name}: empty upload")
            preds = clf.classify([data], top=min(top, clf.bundle.num_classes))[0]
            results.append({"image": name, "top": [vars(p) for p in preds]})
        return jsonify(model=clf.bundle.model, backend=clf.backend_name, results=results)

    @app.get("/openapi.json")
    def openapi():
        return jsonify(spec())

    return app
