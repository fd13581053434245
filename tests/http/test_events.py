"""GET /runs/<id>/events: a run's live progress as Server-Sent Events.

The stream replays the stored periods, then (while the run trains) sends
throttled `progress` events and one `period` event per finished period, and
ends with an `end` event carrying the run's status, after which the server
closes it. Clients that go away must not hurt the server."""
import json
import socket
import time

import pytest
import requests

from conftest import api

PERIOD_FIELDS = {"period", "step", "train_log_loss", "validation_log_loss",
                 "validation_accuracy", "seconds"}
# small enough to train in a second or two, long enough to see progress
DNN_EVENTS = {"model": "dnn", "hidden_units": [32], "steps": 600, "periods": 6, "seed": 3}
# a run that trains for minutes unless cancelled
LONG_RUN = {"model": "linear", "steps": 1000000, "periods": 10, "seed": 1}


class SSE:
    """A Server-Sent Events stream read with requests: iterating yields
    (event, data, id) for each event (comments are collected apart)."""

    def __init__(self, client, run_id, headers=None, timeout=60):
        self.r = client.http.get(client.url(f"/runs/{run_id}/events"), stream=True,
                                 timeout=(10, timeout), headers=headers or {})
        self.comments = []
        self._chunks = None
        self._buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.r.close()

    def _lines(self):
        if self._chunks is None:
            self._chunks = self.r.iter_content(chunk_size=None)
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                yield line.decode().rstrip("\r")
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return
            self._buf += chunk

    def __iter__(self):
        event, data, eid = None, [], None
        for line in self._lines():
            if line == "":
                if data or event:
                    yield event or "message", "\n".join(data), eid
                event, data, eid = None, [], None
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
                elif field == "id":
                    eid = value

    def read_all(self, deadline_s=120):
        """Every event until the server closes the stream, as (event, obj, id)."""
        out = []
        t_end = time.monotonic() + deadline_s
        for event, data, eid in self:
            out.append((event, json.loads(data), eid))
            assert time.monotonic() < t_end, "stream did not end in time"
        return out


def check_stream(events, run):
    """The invariants of a complete stream of run (its final GET object)."""
    names = [e for e, _, _ in events]
    assert names and names[-1] == "end", names
    assert names.count("end") == 1
    assert set(names) <= {"progress", "period", "end"}, names
    periods = [d for e, d, _ in events if e == "period"]
    assert [p["period"] for p in periods] == list(range(1, run["progress"]["periods"] + 1))
    for p in periods:
        assert set(p) == PERIOD_FIELDS
    # ids of period events are their period numbers (for Last-Event-ID)
    assert [i for e, _, i in events if e == "period"] == [str(p["period"]) for p in periods]
    # the same numbers as the run object
    assert periods == run["periods"]
    steps = [d["step"] for e, d, _ in events if e == "progress"]
    assert steps == sorted(steps), f"progress steps go back: {steps}"
    for e, d, _ in events:
        if e == "progress":
            assert set(d) == {"step", "steps", "period", "periods"}
            assert d["steps"] == run["progress"]["steps"]
            assert d["periods"] == run["progress"]["periods"]
            assert 0 <= d["step"] <= d["steps"] and 0 <= d["period"] <= d["periods"]
    end = events[-1][1]
    assert end == {"id": run["id"], "status": run["status"], "error": run["error"]}


def test_live_stream_in_order_and_ends_with_the_run(client):
    run = client.create_run(DNN_EVENTS)
    with SSE(client, run["id"]) as s:
        assert s.r.status_code == 200
        assert s.r.headers["Content-Type"] == "text/event-stream"
        assert s.r.headers.get("Cache-Control") == "no-cache"
        events = s.read_all()
    final = client.run(run["id"])
    assert final["status"] == "succeeded"
    check_stream(events, final)
    assert events[-1][1]["status"] == "succeeded"
    # it was live: progress came before the last period
    names = [e for e, _, _ in events]
    assert "progress" in names
    assert names.index("progress") < len(names) - 2


def test_ended_run_replays_at_once(client, trained):
    run = client.run(trained["dnn"]["id"])
    t0 = time.monotonic()
    with SSE(client, run["id"], timeout=10) as s:
        events = s.read_all(deadline_s=10)
        assert any("events of run" in c for c in s.comments)
    assert time.monotonic() - t0 < 5
    assert [e for e, _, _ in events] == ["period"] * len(run["periods"]) + ["end"]
    check_stream(events, run)


def test_last_event_id_skips_replayed_periods(client, trained):
    run = client.run(trained["linear"]["id"])
    n = len(run["periods"])
    assert n >= 2
    with SSE(client, run["id"], headers={"Last-Event-ID": "1"}) as s:
        events = s.read_all(deadline_s=10)
    assert [d["period"] for e, d, _ in events if e == "period"] == list(range(2, n + 1))
    assert events[-1][0] == "end"


def test_cancelled_run_ends_with_cancelled(client, cancelled_run):
    with SSE(client, cancelled_run["id"]) as s:
        events = s.read_all(deadline_s=10)
    assert events[-1] == ("end", {"id": cancelled_run["id"], "status": "cancelled",
                                  "error": None}, None)


def test_queued_run_cancelled_ends_the_stream(start_server):
    """A queued run cancelled by a request (not by a worker) still ends its
    open streams."""
    srv = start_server(workers=1)
    c = srv.client
    busy = c.create_run(LONG_RUN)
    c.wait_for_run(busy["id"], "running", timeout=30)
    queued = c.create_run(LONG_RUN)
    with SSE(c, queued["id"], timeout=30) as s:
        time.sleep(0.3)
        c.cancel(queued["id"])
        t0 = time.monotonic()
        events = s.read_all(deadline_s=30)
    assert time.monotonic() - t0 < 15
    assert events == [("end", {"id": queued["id"], "status": "cancelled", "error": None}, None)]
    c.cancel(busy["id"])
    c.wait_for_run(busy["id"], "cancelled", timeout=30)


def test_unknown_run_is_404(client, openapi):
    for rid in ("999999", "abc", "0", "1234567890123456789"):
        r = client.get(f"/runs/{rid}/events", timeout=10)
        assert r.status_code == 404, (rid, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
        body = r.json()
        openapi.check(body, openapi.schema("Error"))
        assert body["error"]["code"] == "not_found"


def test_progress_is_throttled(client):
    run = client.create_run(LONG_RUN)
    try:
        client.wait_for_run(run["id"], "running", timeout=30)
        with SSE(client, run["id"]) as s:
            t0 = None
            steps = []
            for event, data, _ in s:
                if event == "progress":
                    if t0 is None:
                        t0 = time.monotonic()
                    steps.append(json.loads(data)["step"])
                if t0 is not None and time.monotonic() - t0 > 2.0:
                    break
        took = time.monotonic() - t0
        # about 5 a second at most (one more for a period end, some slack)
        assert 3 <= len(steps) <= 5 * took + 4, (len(steps), took)
        assert steps == sorted(steps) and steps[-1] > steps[0]
    finally:
        client.cancel(run["id"])
        client.wait_for_run(run["id"], "cancelled", timeout=30)


def test_clients_that_disconnect_leave_the_server_healthy(client):
    run = client.create_run(LONG_RUN)
    try:
        client.wait_for_run(run["id"], "running", timeout=30)
        host, port = "127.0.0.1", int(client.base.rsplit(":", 1)[1])
        for i in range(30):
            if i % 3 == 0:
                # read a little of the stream, then drop it
                with SSE(client, run["id"]) as s:
                    for event, _, _ in s:
                        if event == "progress":
                            break
            elif i % 3 == 1:
                # send the request and vanish without reading anything
                sock = socket.create_connection((host, port), timeout=5)
                sock.sendall(f"GET /runs/{run['id']}/events HTTP/1.1\r\n"
                             f"Host: {host}\r\n\r\n".encode())
                sock.close()
            else:
                # reset the connection mid-stream
                sock = socket.create_connection((host, port), timeout=5)
                sock.sendall(f"GET /runs/{run['id']}/events HTTP/1.1\r\n"
                             f"Host: {host}\r\n\r\n".encode())
                sock.recv(512)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()
        r = client.get("/healthz", timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        # streams still work, and the run still ends them
        with SSE(client, run["id"]) as s:
            it = iter(s)
            event, _, _ = next(it)
            assert event in ("progress", "period")
            client.cancel(run["id"])
            rest = [(e, json.loads(d)) for e, d, _ in it]
        assert rest[-1][0] == "end" and rest[-1][1]["status"] == "cancelled"
    finally:
        client.post(f"/runs/{run['id']}/cancel")
        client.wait_for_run(run["id"], "cancelled", timeout=30)
    assert client.get("/healthz", timeout=10).status_code == 200


def test_shutdown_closes_open_streams(start_server):
    """SIGTERM with open streams (one on a training run, one on a queued
    run) exits 0 promptly and finishes the streams."""
    srv = start_server(workers=1)
    c = srv.client
    a = c.create_run(LONG_RUN)
    c.wait_for_run(a["id"], "running", timeout=30)
    b = c.create_run(LONG_RUN)
    streams = [SSE(c, a["id"], timeout=20), SSE(c, b["id"], timeout=20)]
    its = [iter(s) for s in streams]
    assert next(its[0])[0] in ("progress", "period")
    time.sleep(0.2)
    rc, took = srv.stop()
    assert rc == 0 and took < 8, took
    for s, it in zip(streams, its):
        t0 = time.monotonic()
        try:
            for _ in it:
                pass
        except requests.exceptions.RequestException:
            pass  # a connection cut at shutdown is fine too
        assert time.monotonic() - t0 < 5
        s.close()


def test_head_and_wrong_method(client, trained):
    rid = trained["linear"]["id"]
    r = client.request("POST", f"/runs/{rid}/events", timeout=10)
    assert r.status_code == 405
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert "GET" in allow and "POST" not in allow, allow
    api().check(r.json(), api().schema("Error"))
    # HEAD answers the stream's headers without a body, and ends
    r = client.request("HEAD", f"/runs/{rid}/events", timeout=10)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Type"] == "text/event-stream"
