"""HTTPS: `mnistd serve --tls-cert FILE --tls-key FILE` (or MNISTD_TLS_CERT,
MNISTD_TLS_KEY) serves through libmicrohttpd's TLS. The certificates are made
here with openssl (a self-signed P-256 certificate for 127.0.0.1) and every
client verifies the server against that certificate, never verify=False.

Over HTTPS: the JSON routes, the event stream (SSE) of a training run, raw
bytes predict. Plain HTTP to the HTTPS port is refused cleanly and the server
keeps serving. Bad files are a one-line start-up error naming the file, exit
2, before the database is touched."""
import json
import os
import socket
import subprocess

import pytest
import requests

from conftest import LONG_RUN, Client, Server, require_bin, time_scale
from test_events import SSE

# a linear run with a few periods that trains in about a second
SMALL = {"model": "linear", "steps": 300, "periods": 3, "seed": 5}


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pair(d, name, cn="127.0.0.1"):
    """A self-signed P-256 certificate for 127.0.0.1 and its key, as
    d/name.pem and d/name-key.pem (PEM, key unencrypted)."""
    cert, key = d / f"{name}.pem", d / f"{name}-key.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1")
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    cert, key = make_pair(d, "server")
    other_cert, other_key = make_pair(d, "other")
    locked = d / "locked-key.pem"   # the same key, with a password
    openssl("pkey", "-in", str(key), "-out", str(locked), "-aes256",
            "-passout", "pass:secret")
    junk = d / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                    "-----END CERTIFICATE-----\n")
    empty = d / "empty.pem"
    empty.write_bytes(b"")
    return {"cert": cert, "key": key, "other_cert": other_cert, "other_key": other_key,
            "locked": locked, "junk": junk, "empty": empty, "dir": d,
            "missing": d / "no-such.pem"}


def https_client(port, cert):
    c = Client(f"https://127.0.0.1:{port}")
    c.http.verify = str(cert)   # trust exactly the test's certificate
    # ... also when REQUESTS_CA_BUNDLE is set: requests lets it override a
    # session's verify unless the session ignores the environment
    c.http.trust_env = False
    return c


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, data_dir, certs):
    s = Server(tmp_path_factory.mktemp("tls-server"),
               args=["--tls-cert", certs["cert"], "--tls-key", certs["key"]])
    s.start()
    s.client = https_client(s.port, certs["cert"])
    yield s
    s.stop()


def test_json_routes_over_https(tls_server, validate, certs):
    c = tls_server.client
    assert validate(c.get("/healthz"), "/healthz", "get", 200)["status"] == "ok"
    run = c.train(SMALL, timeout=60)
    assert run["status"] == "succeeded" and len(run["periods"]) == 3
    body = validate(c.get("/runs"), "/runs", "get", 200)
    assert run["id"] in [x["id"] for x in body["runs"]]
    r = c.get("/runs/999999")
    assert validate(r, "/runs/{id}", "get", 404)["error"]["code"] == "not_found"
    # the server really speaks TLS with this certificate: a client that
    # trusts only the system's authorities refuses it
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(c.url("/healthz"), timeout=10 * time_scale())
    assert "listening on https://127.0.0.1:" in tls_server.stderr()


def test_event_stream_over_https(tls_server):
    """A live stream (progress events come only while the run trains,
    through a suspended and resumed connection), then its end on cancel."""
    c = tls_server.client
    run = c.create_run(LONG_RUN)
    names = []
    with SSE(c, run["id"], timeout=60 * time_scale()) as s:
        assert s.r.headers["Content-Type"] == "text/event-stream"
        for event, data, _ in s:
            names.append(event)
            if event == "progress" and names.count("progress") == 2:
                c.cancel(run["id"])
            if event == "end":
                end = json.loads(data)
                break
    assert names.count("progress") >= 2, names
    assert end == {"id": run["id"], "status": "cancelled", "error": None}


def test_raw_bytes_predict_over_https(tls_server, validate, mnist):
    c = tls_server.client
    rid = c.train(SMALL, timeout=60)["id"]
    imgs, labels = mnist.images("test", 50)
    r = c.post(f"/predict?run={rid}", data=b"".join(imgs),
               headers={"Content-Type": "application/octet-stream"})
    raw = validate(r, "/predict", "post", 200)["predictions"]
    r = c.post_json("/predict", {"run": rid, "pixels": [mnist.scaled(i) for i in imgs]})
    js = validate(r, "/predict", "post", 200)["predictions"]
    assert [p["class"] for p in raw] == [p["class"] for p in js]
    # a trained linear model, not a constant: most of the 50 are right
    assert sum(p["class"] == y for p, y in zip(raw, labels)) >= 35


def test_plain_http_to_the_https_port_fails_cleanly(tls_server):
    port = tls_server.port
    for _ in range(5):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10 * time_scale())
        # what a plain client reads: no HTTP answer, and a closed connection
        with socket.create_connection(("127.0.0.1", port), timeout=10 * time_scale()) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            while chunk := s.recv(4096):
                got += chunk
            assert not got.startswith(b"HTTP/"), got[:200]
    assert tls_server.alive()
    assert tls_server.client.get("/healthz").status_code == 200


def test_the_environment_forms(tmp_path, data_dir, certs):
    s = Server(tmp_path, env={"MNISTD_TLS_CERT": str(certs["cert"]),
                              "MNISTD_TLS_KEY": str(certs["key"])})
    s.start()
    try:
        c = https_client(s.port, certs["cert"])
        assert c.get("/healthz").status_code == 200
    finally:
        s.stop()


# (flags, environment, the words of the one-line error), with the files
# named by certs' keys in {braces}
STARTUP_ERRORS = [
    (["--tls-cert", "{cert}"], {}, ["--tls-key is missing"]),
    (["--tls-key", "{key}"], {}, ["--tls-cert is missing"]),
    ([], {"MNISTD_TLS_CERT": "{cert}"}, ["--tls-key is missing", "MNISTD_TLS_KEY"]),
    (["--tls-cert", "{missing}", "--tls-key", "{key}"], {},
     ["--tls-cert {missing}: cannot read it: No such file"]),
    (["--tls-cert", "{cert}", "--tls-key", "{dir}"], {},
     ["--tls-key {dir}: cannot read it"]),
    (["--tls-cert", "{empty}", "--tls-key", "{key}"], {},
     ["--tls-cert {empty}: cannot read it: the file is empty"]),
    (["--tls-cert", "{junk}", "--tls-key", "{key}"], {},
     ["--tls-cert {junk}: no PEM certificate"]),
    (["--tls-cert", "{key}", "--tls-key", "{key}"], {},
     ["--tls-cert {key}: no PEM certificate"]),
    (["--tls-cert", "{cert}", "--tls-key", "{cert}"], {},
     ["--tls-key {cert}: no unencrypted PEM private key"]),
    (["--tls-cert", "{cert}", "--tls-key", "{locked}"], {},
     ["--tls-key {locked}: no unencrypted PEM private key"]),
    (["--tls-cert", "{cert}", "--tls-key", "{other_key}"], {},
     ["--tls-key {other_key} is not the key of the certificate in --tls-cert {cert}"]),
]


@pytest.mark.parametrize("args, env, words", STARTUP_ERRORS,
                         ids=[" ".join(w) for _, _, w in STARTUP_ERRORS])
def test_startup_errors_exit_2_with_a_one_line_reason(tmp_path, data_dir, certs,
                                                      args, env, words):
    fill = lambda s: s.format(**{k: str(v) for k, v in certs.items()})
    db = tmp_path / "t.db"
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MNISTD_TLS_CERT", "MNISTD_TLS_KEY", "MNISTD_TOKEN")}
    environ.update({k: fill(v) for k, v in env.items()})
    out = subprocess.run([str(require_bin()), "serve", "--port", "0", "--db", str(db),
                          "--data-dir", str(data_dir), *map(fill, args)],
                         capture_output=True, text=True, timeout=30 * time_scale(),
                         stdin=subprocess.DEVNULL, env=environ)
    assert out.returncode == 2, out
    assert out.stdout == "", out.stdout
    assert out.stderr.startswith("mnistd serve: ") and out.stderr.count("\n") == 1, out.stderr
    for w in words:
        assert fill(w) in out.stderr, out.stderr
    assert not db.exists(), "the database was touched before the files were checked"
