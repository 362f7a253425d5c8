"""The HTTP service as a client uses it: JSON results, JSON errors, an OpenAPI description."""

import io
import threading
import time

import numpy as np
import pytest
from openapi_spec_validator import validate
from PIL import Image
from serve_harness import Peak

import ternpynq
import ternpynq.serve.app as service
from ternpynq.runtime.network import Network
from ternpynq.runtime.preprocess import preprocess
from ternpynq.serve import create_app


@pytest.fixture
def app(resnet20_path):
    return create_app({"TESTING": True, "MODEL": str(resnet20_path), "BACKEND": "emu"})


@pytest.fixture
def client(app):
    return app.test_client()


def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_classify_matches_the_golden_model(client, resnet20_bundle):
    reply = client.post("/v1/classify?top=3", data={"image": (io.BytesIO(png()), "a.png")})
    assert reply.status_code == 200
    body = reply.get_json()
    top = body["results"][0]["top"]
    codes = preprocess(png(), resnet20_bundle.input)[None]
    expect = np.argsort(-Network(resnet20_bundle).run(codes)[0], kind="stable")[:3]
    assert [p["index"] for p in top] == expect.tolist()
    assert body["backend"] == "emu" and len(top) == 3


def test_raw_body_and_several_images(client):
    raw = client.post("/v1/classify", data=png(1), content_type="image/png")
    assert raw.status_code == 200 and raw.get_json()["results"][0]["image"] == "body"
    files = {"image": [(io.BytesIO(png(1)), "x.png"), (io.BytesIO(png(2)), "y.png")]}
    many = client.post("/v1/classify", data=files)
    assert [r["image"] for r in many.get_json()["results"]] == ["x.png", "y.png"]
    assert many.get_json()["results"][0] == raw.get_json()["results"][0] | {"image": "x.png"}


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"data": {"image": (io.BytesIO(b"not an image"), "x.png")}}, 400, "not a readable"),
        ({"data": {"image": (io.BytesIO(b""), "e.png")}}, 400, "empty upload"),
        ({"data": {"file": (io.BytesIO(b"x"), "x.png")}}, 400, "multipart field 'image'"),
        ({"data": b"{}", "content_type": "application/json"}, 400, "multipart field"),
        ({"query_string": {"top": "0"}, "data": png(), "content_type": "image/png"}, 400, "top"),
    ],
)
def test_bad_requests_get_json_errors(client, kwargs, status, detail):
    reply = client.post("/v1/classify", **kwargs)
    assert reply.status_code == status
    assert detail in reply.get_json()["detail"]


def test_too_large_upload_is_413(resnet20_path):
    app = create_app({"MODEL": str(resnet20_path), "MAX_CONTENT_LENGTH": 1000})
    reply = app.test_client().post("/v1/classify", data=b"x" * 5000, content_type="image/png")
    assert reply.status_code == 413 and reply.get_json()["error"] == "Request Entity Too Large"


def test_unknown_route_and_method_are_json(client):
    assert client.get("/nope").get_json()["error"] == "Not Found"
    assert client.get("/v1/classify").status_code == 405


def test_corrupt_or_missing_model_is_503_without_server_paths(tmp_path, caplog):
    bad = tmp_path / "bad.tpq"
    bad.write_bytes(b"\x00" * 64)
    for model in (bad, tmp_path / "missing.tpq"):
        reply = create_app({"MODEL": str(model)}).test_client().get("/v1/model")
        assert reply.status_code == 503
        assert reply.get_json()["detail"] == "model or device unavailable"
        assert str(tmp_path) not in reply.get_data(as_text=True)
    assert "container" in caplog.text  # the details are in the server's log


def test_top_must_be_an_integer(client):
    for top in ("abc", "1.5", "-1", "1001", ""):
        reply = client.post(f"/v1/classify?top={top}", data=png(), content_type="image/png")
        assert reply.status_code == 400 and "top" in reply.get_json()["detail"], top


def test_405_keeps_the_allow_header(client):
    reply = client.get("/v1/classify")
    assert reply.status_code == 405 and reply.is_json
    assert set(reply.headers["Allow"].split(", ")) >= {"POST"}


def test_image_field_is_required_in_the_spec(client):
    body = client.get("/openapi.json").get_json()["paths"]["/v1/classify"]["post"]
    multipart = body["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert multipart["required"] == ["image"]


def test_token_guards_every_endpoint_but_health_and_page(resnet20_path):
    app = create_app({"MODEL": str(resnet20_path), "TOKEN": "s3cret"})
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200 and b'id="token"' in client.get("/").data
    for auth in (None, "Bearer wrong", "s3cret", "Bearer s3cret "):
        headers = {"Authorization": auth} if auth else {}
        for path in ("/v1/model", "/openapi.json"):
            reply = client.get(path, headers=headers)
            assert reply.status_code == 401 and reply.is_json, (path, auth)
            assert reply.headers["WWW-Authenticate"].lower().startswith("bearer")
        reply = client.post("/v1/classify", data=png(), content_type="image/png", headers=headers)
        assert reply.status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/model", headers=good).status_code == 200
    reply = client.post("/v1/classify", data=png(), content_type="image/png", headers=good)
    assert reply.status_code == 200
    spec = client.get("/openapi.json", headers=good).get_json()
    assert spec["security"] == [{"bearer": []}]
    validate(spec)


def test_model_page_and_openapi(client, resnet20_bundle):
    info = client.get("/v1/model").get_json()
    assert info["labels"] == resnet20_bundle.labels and info["compression"]["cr"] > 1
    assert b"<form" in client.get("/").data
    validate(client.get("/openapi.json").get_json())  # raises if the description is invalid


def test_concurrent_requests_share_one_backend(app):
    results, errors = [], []

    def worker(seed):
        try:
            reply = app.test_client().post(
                "/v1/classify", data=png(seed % 3), content_type="image/png"
            )
            results.append((seed % 3, reply.get_json()["results"][0]["top"][0]["index"]))
        except Exception as exc:  # collected, then asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(results) == 12
    by_image = {}
    for image, index in results:
        by_image.setdefault(image, set()).add(index)
    assert all(len(v) == 1 for v in by_image.values())


def test_the_default_service_classifies_photos_with_imagenet_labels():
    # what a new user gets from `ternpynq serve`: the shipped ImageNet bundle, not Fashion-MNIST
    client = create_app({"TESTING": True}).test_client()
    about = client.get("/v1/model").get_json()
    assert about["model"] == "efficientnet-lite0" and len(about["labels"]) == 1000
    assert "not measured here" in about["about"]["published_top1"]
    assert "1000 classes" in client.get("/").get_data(as_text=True)
    with open(ternpynq.PHOTOS_DIR / "chelsea.jpg", "rb") as photo:
        reply = client.post("/v1/classify?top=3", data={"image": (photo, "chelsea.jpg")})
    assert reply.status_code == 200, reply.get_json()
    top = [t["label"] for t in reply.get_json()["results"][0]["top"]]
    assert set(top) == {"Egyptian cat", "tiger cat", "tabby"}


def test_decodes_across_requests_are_capped(resnet20_path, monkeypatch):
    # each decode of a large upload can cost ~90 MB; 16 request threads must not all decode
    # at once on a 512 MB board
    app = create_app({"TESTING": True, "MODEL": str(resnet20_path), "MAX_DECODES": 2})
    app.test_client().post("/v1/classify", data=png(), content_type="image/png")  # load once
    decoding = Peak()

    def slow_preprocess(*args, **kwargs):
        with decoding:
            time.sleep(0.2)
        return preprocess(*args, **kwargs)

    monkeypatch.setattr(service, "preprocess", slow_preprocess)
    codes = []
    threads = [
        threading.Thread(
            target=lambda: codes.append(
                app.test_client()
                .post("/v1/classify", data=png(), content_type="image/png")
                .status_code
            )
        )
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert codes == [200] * 6
    assert decoding.most == 2  # the cap holds, and the decodes still run in parallel up to it
