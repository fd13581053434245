"""GET /runs/{id}/events (Server-Sent Events), GET /metrics, the dashboard
(GET /, GET /static/{name}) and --token authorization."""
import json
import re
import threading
import time

import pytest

from conftest import DNN_SMALL, LONG_RUN, api, expect_error, parse_sse, route_cases


def _events(client, validate, rid, headers=None, timeout=60):
    r = client.get(f"/runs/{rid}/events", headers=headers or {}, timeout=timeout)
    text = validate(r, "/runs/{id}/events", "get", 200)
    assert r.headers["Content-Type"].startswith("text/event-stream")
    return parse_sse(text)


def _check_stream(events, rid):
    """Validates every event's data; returns (periods, progress, end)."""
    a = api()
    assert events[0]["comments"] == [f"events of run {rid}"]
    assert any(e.get("retry") == "3000" for e in events)
    periods, progress, end = [], [], []
    for e in events:
        kind = e.get("event")
        if kind is None:
            continue
        data = json.loads(e["data"])
        if kind == "period":
            a.check(data, a.schema("Period"))
            assert e["id"] == str(data["period"])
            periods.append(data)
        elif kind == "progress":
            a.check(data, a.schema("Progress"))
            progress.append(data)
        elif kind == "end":
            a.check(data, a.schema("RunEnd"))
            end.append(data)
        else:
            raise AssertionError(f"unknown event {kind!r}")
    assert len(end) == 1 and [e.get("event") for e in events if e.get("event")][-1] == "end"
    assert end[0]["id"] == rid
    return periods, progress, end[0]


def test_events_of_a_finished_run_replay_and_end(client, validate, trained):
    run = trained["dnn"]
    periods, progress, end = _check_stream(_events(client, validate, run["id"]), run["id"])
    assert periods == run["periods"]
    assert progress == []
    assert end == {"id": run["id"], "status": "succeeded", "error": None}


def test_events_last_event_id_skips_replayed_periods(client, validate, trained):
    run = trained["linear"]
    events = _events(client, validate, run["id"], headers={"Last-Event-ID": "1"})
    periods, _, end = _check_stream(events, run["id"])
    assert periods == run["periods"][1:]
    assert end["status"] == "succeeded"


def test_events_follow_a_live_run(client, validate):
    spec = dict(DNN_SMALL, steps=600, periods=3, seed=11)
    run = client.create_run(spec)
    periods, progress, end = _check_stream(_events(client, validate, run["id"]), run["id"])
    done = client.wait_for_run(run["id"], "succeeded", timeout=10)
    assert end == {"id": run["id"], "status": "succeeded", "error": None}
    assert periods == done["periods"] and [p["period"] for p in periods] == [1, 2, 3]
    steps = [p["step"] for p in progress]
    assert steps == sorted(steps) and all(p["steps"] == 600 and p["periods"] == 3 for p in progress)


def test_events_end_when_a_running_run_is_cancelled(client, validate):
    run = client.create_run(LONG_RUN)
    client.wait_for_run(run["id"], "running", timeout=30)
    out = {}

    def read():
        out["events"] = _events(client, validate, run["id"], timeout=30)

    t = threading.Thread(target=read)
    t.start()
    time.sleep(0.3)
    client.cancel(run["id"])
    t.join(30)
    assert not t.is_alive(), "the stream did not end after the cancel"
    _, progress, end = _check_stream(out["events"], run["id"])
    assert end["status"] == "cancelled" and progress


def test_events_of_a_cancelled_queued_run(client, validate, cancelled_run):
    _, _, end = _check_stream(_events(client, validate, cancelled_run["id"]), cancelled_run["id"])
    assert end["status"] == "cancelled"


def _metrics(client, validate):
    r = client.get("/metrics")
    text = validate(r, "/metrics", "get", 200)
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)", line)
        assert m, f"not a Prometheus sample line: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return text, samples


def test_metrics(client, validate, trained):
    text, samples = _metrics(client, validate)
    for name in ("mnistd_http_requests_total", "mnistd_http_request_duration_seconds",
                 "mnistd_queue_depth", "mnistd_workers_busy", "mnistd_runs",
                 "mnistd_training_samples_total"):
        assert f"# TYPE {name} " in text, name
    assert samples['mnistd_http_requests_total{route="runs_create",status="202"}'] >= 2
    for status in ("succeeded", "cancelled", "failed", "queued", "running"):
        listed = validate(client.get("/runs", params={"status": status, "limit": 1000}),
                          "/runs", "get", 200)["runs"]
        assert samples[f'mnistd_runs{{status="{status}"}}'] == len(listed), status
    assert samples["mnistd_training_samples_total"] >= 2 * 200 * 30
    assert samples['mnistd_http_request_duration_seconds_bucket{le="+Inf"}'] == \
        samples["mnistd_http_request_duration_seconds_count"]
    # a request counts
    before = samples.get('mnistd_http_requests_total{route="misc_healthz",status="200"}', 0)
    validate(client.get("/healthz"), "/healthz", "get", 200)
    _, after = _metrics(client, validate)
    assert after['mnistd_http_requests_total{route="misc_healthz",status="200"}'] == before + 1


def test_dashboard(client, validate):
    r = client.get("/")
    page = validate(r, "/", "get", 200)
    assert r.headers["Content-Type"].startswith("text/html")
    assert "<html" in page.lower() or "<!doctype html" in page.lower()
    r2 = client.get("/static/index.html")
    assert validate(r2, "/static/{name}", "get", 200) == page
    for name in ("nope.js", "..%2Fopenapi.yaml", "index.htm"):
        expect_error(client.get(f"/static/{name}"), "/static/{name}", "get", 404, "not_found")


TOKEN = "s3cret-token"


@pytest.fixture
def guarded(start_server):
    return start_server(args=["--token", TOKEN])


def _routes(guarded):
    """The routes of the table that need the token (guarded) or not: those
    whose operation openapi.yaml marks open (`security: []`) need none. A
    route added to routes.c is covered."""
    doc = api().doc["paths"]
    return [(m, p, t) for m, p, t in route_cases()
            if (doc[t][m.lower()].get("security") != []) == guarded]


@pytest.mark.parametrize("method,path,template", _routes(guarded=True))
def test_token_required(guarded, method, path, template):
    c = guarded.client
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": "Bearer " + TOKEN[:-1]}):
        r = c.request(method, path, headers=headers)
        expect_error(r, template, method.lower(), 401, "unauthorized", "Bearer")
        assert r.headers.get("WWW-Authenticate") == "Bearer"


def test_open_routes_need_no_token(guarded):
    open_routes = _routes(guarded=False)
    assert open_routes, "openapi.yaml marks no operation open"
    for method, path, template in open_routes:
        r = guarded.client.request(method, path)
        assert r.status_code != 401, f"{method} {path}: {r.text[:300]}"


def test_token_accepted_and_open_routes(guarded, validate, mnist):
    c = guarded.client
    auth = {"Authorization": f"Bearer {TOKEN}"}
    validate(c.get("/runs", headers=auth), "/runs", "get", 200)
    validate(c.get("/datasets/mnist-test", headers=auth), "/datasets/{name}", "get", 200)
    run = validate(c.post("/runs", json={"model": "linear", "steps": 4, "periods": 1}, headers=auth),
                   "/runs", "post", 202)
    r = c.post("/predict", json={"pixels": [0.0] * 784}, headers=auth)
    validate(r, "/predict", "post")  # 200, or 409 while no run has succeeded
    assert r.status_code in (200, 409)
    # /healthz and the dashboard need no token
    validate(c.get("/healthz"), "/healthz", "get", 200)
    validate(c.get("/"), "/", "get", 200)
    validate(c.get("/static/index.html"), "/static/{name}", "get", 200)
    # checked before routing: unknown paths and wrong methods are 401 too
    api().validate_error(c.get("/nope"), 401)
    api().validate_error(c.request("PUT", "/runs"), 401)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = validate(c.get(f"/runs/{run['id']}", headers=auth), "/runs/{id}", "get", 200)
        if got["status"] == "succeeded":
            break
        time.sleep(0.05)
    assert got["status"] == "succeeded"


# a wrong method gets the treatment of the path's right methods: a
# protected path asks for the token first (401 before 405), a public one
# answers 405 without it
WRONG_METHOD_AUTH = [
    ("PUT", "/runs", "/runs", True),
    ("POST", "/runs/1", "/runs/{id}", True),
    ("GET", "/runs/1/cancel", "/runs/{id}/cancel", True),
    ("DELETE", "/runs/1/weights.png", "/runs/{id}/weights.png", True),
    ("GET", "/predict", "/predict", True),
    ("PUT", "/datasets/mnist", "/datasets/{name}", True),
    ("POST", "/metrics", "/metrics", True),
    ("POST", "/healthz", "/healthz", False),
    ("POST", "/", "/", False),
    ("DELETE", "/static/index.html", "/static/{name}", False),
]


@pytest.mark.parametrize("method,path,template,protected", WRONG_METHOD_AUTH,
                         ids=[f"{m} {p}" for m, p, _, _ in WRONG_METHOD_AUTH])
def test_wrong_method_gets_the_paths_auth(guarded, method, path, template, protected):
    c = guarded.client
    r = c.request(method, path)
    if protected:
        body = api().validate_error(r, 401)
        assert body["error"]["code"] == "unauthorized"
        assert r.headers.get("WWW-Authenticate") == "Bearer"
        assert "Allow" not in r.headers  # nothing of the routes before the token
        r = c.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
    body = api().validate(r, template, method, 405)
    assert body["error"]["code"] == "method_not_allowed"
    assert r.headers.get("Allow")
    assert "WWW-Authenticate" not in r.headers


def test_token_from_environment(start_server, validate):
    s = start_server(env={"MNISTD_TOKEN": TOKEN})
    c = s.client
    expect_error(c.get("/runs"), "/runs", "get", 401, "unauthorized")
    validate(c.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"}), "/runs", "get", 200)


def test_token_scheme_is_case_insensitive(guarded, validate):
    c = guarded.client
    for scheme in ("bearer", "BEARER"):
        r = c.get("/runs", headers={"Authorization": f"{scheme} {TOKEN}"})
        validate(r, "/runs", "get", 200)


def test_listens_on_loopback_by_default(start_server, validate, tmp_path):
    """By default the server is reachable from this machine only (127.0.0.1);
    --host picks the address."""
    import socket
    s = start_server()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", s.port), timeout=2).close()
    validate(s.client.get("/healthz"), "/healthz", "get", 200)
    # its own database: one server per SQLite file
    t = start_server(args=["--host", "127.0.0.2"], name="host2", db=tmp_path / "host2.db")
    socket.create_connection(("127.0.0.2", t.port), timeout=2).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", t.port), timeout=2).close()


def test_request_log_lines_are_json_whatever_the_path(start_server):
    """Every request leaves one JSON line on stderr, even when its path holds
    quotes, backslashes, control or non-UTF-8 bytes (log pipelines parse it)."""
    import socket
    s = start_server()
    paths = [b"/healthz", b"/runs/%22q%22", b"/a%5Cb", b"/x%01y%09", b"/caf%C3%A9",
             b"/%FF%FE", b"/" + b"z" * 300, b"/runs/%FF"]
    for p in paths:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"GET " + p + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := c.recv(65536):
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200" if p == b"/healthz" else b"HTTP/1.1 404")
            if p != b"/healthz":  # a JSON error, whatever the bytes
                body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
                assert body["error"]["code"] == "not_found"
    deadline = time.time() + 5
    while time.time() < deadline:
        lines = [ln for ln in s.stderr().splitlines() if ln.startswith("{")]
        requests = [json.loads(ln) for ln in lines if '"method"' in ln]
        if len(requests) >= len(paths):
            break
        time.sleep(0.05)
    for ln in lines:
        json.loads(ln)  # every line is JSON
    assert [r["status"] for r in requests] == [200] + [404] * (len(paths) - 1)
    assert requests[1]["path"] == '/runs/"q"'
    assert requests[2]["path"] == "/a\\b"
    assert requests[3]["path"] == "/x\x01y\t"
    assert requests[4]["path"] == "/caf\u00c3\u00a9"  # bytes above ASCII one by one
    assert requests[6]["path"].startswith("/zzz") and len(requests[6]["path"]) < 128
    assert requests[7]["path"] == "/runs/\u00ff"
    for r in requests:
        assert r["method"] == "GET" and r["completed"] is True
        assert isinstance(r["ms"], (int, float)) and 0 <= r["ms"] < 5000
        assert isinstance(r["ts"], int)
