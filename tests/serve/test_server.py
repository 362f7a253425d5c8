"""`ternpynq serve` as a real process on loopback, with waitress."""

import io
import json
import subprocess
import sys
import urllib.error

import numpy as np
from PIL import Image
from serve_harness import fetch, free_port, wait_until_listening


def test_server_answers_over_http(resnet20_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "ternpynq.cli",
        "serve",
        "--model",
        str(resnet20_path),
        "--port",
        str(port),
    ]
    with subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            wait_until_listening(proc, base)
            buf = io.BytesIO()
            Image.fromarray(np.zeros((28, 28), np.uint8)).save(buf, format="PNG")
            body = json.loads(fetch(f"{base}/v1/classify?top=2", buf.getvalue()))
            assert len(body["results"][0]["top"]) == 2
            try:
                fetch(f"{base}/v1/classify", b"junk")
                raise AssertionError("a non-image was accepted")
            except urllib.error.HTTPError as err:
                with err:
                    assert err.code == 400
                    assert "not a readable image" in json.loads(err.read())["detail"]
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_bad_model_fails_at_start_with_one_line(tmp_path):
    bad = tmp_path / "bad.tpq"
    bad.write_bytes(b"garbage")
    out = subprocess.run(
        [sys.executable, "-m", "ternpynq.cli", "serve", "--model", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
