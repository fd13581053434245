"""Body size limits (413) with a server started with small limits, both for
a declared Content-Length and for chunked bodies without one; and the
per-request image limit."""
import json
import socket
import time

import pytest

from conftest import expect_error

LIMIT = 4096


@pytest.fixture
def small(start_server):
    return start_server(args=["--max-body", str(LIMIT), "--max-upload", str(LIMIT),
                              "--max-batch", "5"])


def _chunks(data, size=1000):
    def gen():
        for i in range(0, len(data), size):
            yield data[i:i + size]
    return gen()


def _big_run_body():
    # valid JSON, but over the limit: the padding is in an unknown field
    body = json.dumps({"model": "linear", "pad": "x" * (LIMIT + 100)}).encode()
    assert len(body) > LIMIT
    return body


def test_json_body_over_limit_with_content_length(small):
    c = small.client
    r = c.post("/runs", data=_big_run_body(), headers={"Content-Type": "application/json"})
    expect_error(r, "/runs", "post", 413, "body_too_large", str(LIMIT))


def test_json_body_over_limit_chunked(small):
    c = small.client
    r = c.post("/runs", data=_chunks(_big_run_body()), headers={"Content-Type": "application/json"})
    assert "Content-Length" not in r.request.headers
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    expect_error(r, "/runs", "post", 413, "body_too_large", str(LIMIT))


def test_body_just_under_limit_is_read(small):
    c = small.client
    body = json.dumps({"model": "linear", "steps": 0, "x": ""}).encode()
    body = body.replace(b'"x": ""', b'"x": "' + b"y" * (LIMIT - len(body)) + b'"')
    assert len(body) == LIMIT
    r = c.post("/runs", data=body, headers={"Content-Type": "application/json"})
    # read in full, then refused for its content, not its size
    expect_error(r, "/runs", "post", 400, "bad_field", "x")
    r = c.post("/runs", data=_chunks(body), headers={"Content-Type": "application/json"})
    expect_error(r, "/runs", "post", 400, "bad_field", "x")


def test_predict_over_limit(small):
    c = small.client
    js = json.dumps({"pixels": [0.25] * 784}).encode()
    assert len(js) > LIMIT
    r = c.post("/predict", data=js, headers={"Content-Type": "application/json"})
    expect_error(r, "/predict", "post", 413, "body_too_large")
    raw = b"\x00" * (784 * 6)
    r = c.post("/predict", data=raw, headers={"Content-Type": "application/octet-stream"})
    expect_error(r, "/predict", "post", 413, "body_too_large")
    r = c.post("/predict", data=_chunks(raw), headers={"Content-Type": "application/octet-stream"})
    expect_error(r, "/predict", "post", 413, "body_too_large")


def test_evaluate_over_limit(small):
    c = small.client
    body = json.dumps({"dataset": "x" * (LIMIT + 10)}).encode()
    r = c.post("/runs/1/evaluate", data=body, headers={"Content-Type": "application/json"})
    expect_error(r, "/runs/{id}/evaluate", "post", 413, "body_too_large")


def test_upload_over_limit_and_nothing_stored(small, mnist, validate):
    c = small.client
    csv = mnist.csv("train", 3).encode()
    assert len(csv) > LIMIT
    r = c.post("/datasets", params={"name": "big"}, data=csv, headers={"Content-Type": "text/csv"})
    expect_error(r, "/datasets", "post", 413, "body_too_large", str(LIMIT))
    r = c.post("/datasets", params={"name": "big"}, data=_chunks(csv),
               headers={"Content-Type": "text/csv"})
    expect_error(r, "/datasets", "post", 413, "body_too_large", str(LIMIT))
    expect_error(c.get("/datasets/big"), "/datasets/{name}", "get", 404, "not_found")
    names = [d["name"] for d in validate(c.get("/datasets"), "/datasets", "get", 200)["datasets"]]
    assert "big" not in names


def test_max_batch(small):
    c = small.client
    r = c.post("/predict", json={"pixels": [[0.0]] * 6})
    expect_error(r, "/predict", "post", 400, "bad_pixels", "6", "5")
    r = c.post("/predict", data=b"\x00" * (784 * 5 + 784), headers={"Content-Type": "application/octet-stream"})
    # 6 images are 4704 bytes: over the body limit before the image limit
    expect_error(r, "/predict", "post", 413, "body_too_large")


def test_server_healthy_after_limits(small, validate):
    c = small.client
    for _ in range(2):
        r = c.post("/runs", data=_chunks(_big_run_body()), headers={"Content-Type": "application/json"})
        expect_error(r, "/runs", "post", 413, "body_too_large")
    body = validate(c.get("/healthz"), "/healthz", "get", 200)
    assert body["status"] == "ok"
    rc, took = small.stop()
    assert rc == 0 and took < 10


def test_queue_full_is_503(start_server, validate):
    s = start_server(args=["--max-queued", "1"], workers=1)
    c = s.client
    long_run = {"model": "linear", "steps": 1000000, "seed": 1}
    first = c.create_run(long_run)
    c.wait_for_run(first["id"], "running", timeout=30)
    second = c.create_run(long_run)          # waits: one queued
    r = c.post_json("/runs", long_run)
    expect_error(r, "/runs", "post", 503, "queue_full", "1")
    # a cancel frees the queue
    assert c.cancel(second["id"])["status"] == "cancelled"
    third = c.create_run(long_run)
    for run in (first, third):
        c.cancel(run["id"])
    for run in (first, third):
        c.wait_for_run(run["id"], "cancelled", timeout=30)
    rc, took = s.stop()
    assert rc == 0 and took < 10


def _raw_exchange(port, data, wait=10):
    """Sends raw bytes on one connection and reads until the server closes
    it (or `wait` seconds pass)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(data)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    return out


def test_early_413_closes_the_connection(small):
    """A body refused by its Content-Length is never read as requests: the
    connection closes after the one 413 (no request smuggling)."""
    inner = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    body = inner + b"z" * LIMIT
    req = (b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body + inner
    out = _raw_exchange(small.port, req)
    assert out.count(b"HTTP/1.1 ") == 1, out[:2000]
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), out[:500]
    assert b"connection: close" in head.lower()
    assert json.loads(rest)["error"]["code"] == "body_too_large"


def test_json_predict_over_limit_names_the_raw_form(small):
    """The remedy for a large JSON batch: raw bytes, and the batch limit."""
    c = small.client
    js = json.dumps({"pixels": [[0.25] * 784] * 2}).encode()
    r = c.post("/predict", data=js, headers={"Content-Type": "application/json"})
    expect_error(r, "/predict", "post", 413, "body_too_large", str(LIMIT),
                 "application/octet-stream", "n x 784 uint8", "at most 5 images")
    r = c.post("/predict", data=_chunks(js), headers={"Content-Type": "application/json"})
    expect_error(r, "/predict", "post", 413, "body_too_large", str(LIMIT),
                 "application/octet-stream", "at most 5 images")
    # the raw form itself is not sent to itself
    raw = b"\x00" * (784 * 6)
    r = c.post("/predict", data=raw, headers={"Content-Type": "application/octet-stream"})
    msg = expect_error(r, "/predict", "post", 413, "body_too_large")
    assert "octet-stream" not in msg


def test_every_503_carries_retry_after(start_server, tmp_path):
    """A 503 is transient: it says when to retry."""
    empty = tmp_path / "no-data"
    (empty / "mnist").mkdir(parents=True)
    s = start_server(args=["--data-dir", str(empty)])
    r = s.client.post_json("/runs", {"model": "linear", "steps": 10, "periods": 1})
    expect_error(r, "/runs", "post", 503, "dataset_unavailable", "mnist")
    assert int(r.headers["Retry-After"]) > 0
