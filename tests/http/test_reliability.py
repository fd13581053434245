"""Reliability and security: crash safety under SIGKILL at random moments,
graceful stop on SIGTERM/SIGINT with requests in flight, slow clients
against --max-conns-per-ip/--timeout, and --max-run-memory.

The crash test prints its seed; set MNISTD_KILL_SEED=<seed> to replay the
same kill delays and workload choices (MNISTD_KILLS sets how many kills).
"""
import http.client
import json
import math
import os
import random
import re
import signal
import socket
import sqlite3
import threading
import time
from collections import defaultdict

import pytest

from conftest import DNN_SMALL, TERMINAL, expect_error, time_scale

WORKERS = 2

# ---------------------------------------------------------------- helpers


def _read_reply(sock, timeout):
    """Reads one HTTP/1.1 reply with a Content-Length from sock. Returns
    (status, headers dict lower-cased, body bytes), or None when the server
    closed or reset the connection before a complete reply."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            if len(rest) >= n:
                return status, headers, rest[:n]
        if time.monotonic() > deadline:
            raise AssertionError(f"no complete reply within {timeout} s: {buf[:300]!r}")
        try:
            chunk = sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            return None
        if not chunk:
            return None
        buf += chunk


def _closed_by_peer(sock, timeout):
    """Waits up to timeout s for the server to close sock (EOF or reset).
    Returns the seconds it took, or None if it stayed open. Bytes the
    server may send first (an error reply) are skipped."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        if not chunk:
            return time.monotonic() - t0


def _request_bytes(method, path, body=b"", ctype="application/json"):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _scaled(img):
    return [b / 255.0 for b in img]


# ---------------------------------------------------------------- crash safety

KILL_SPECS = [
    # small dnn runs with several periods: checkpoints are written often
    {"model": "dnn", "hidden_units": [64], "steps": 600, "periods": 6, "seed": 11},
    # adam state and the dropout generator live in the checkpoint too
    {"model": "dnn", "hidden_units": [64], "steps": 900, "periods": 6, "seed": 12,
     "optimizer": "adam", "learning_rate": 0.003, "dropout": 0.2},
    {"model": "linear", "steps": 300, "periods": 3, "seed": 13},
]
UPLOAD_ROWS = 2000
METRICS = ("train_log_loss", "validation_log_loss", "validation_accuracy")


def _db_snapshot(path):
    """Reads the database of a dead server read-only: asserts its integrity
    and returns its runs, periods, latest checkpoints and datasets."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        ic = [r[0] for r in con.execute("PRAGMA integrity_check")]
        assert ic == ["ok"], f"integrity_check: {ic[:10]}"
        fk = con.execute("PRAGMA foreign_key_check").fetchall()
        assert fk == [], f"foreign_key_check: {fk[:10]}"
        runs = {str(i): {"status": st, "steps": steps, "periods": periods}
                for i, st, steps, periods in
                con.execute("SELECT id, status, steps, periods FROM runs")}
        periods = defaultdict(list)
        for row in con.execute("SELECT run_id, period, step, train_log_loss,"
                               " validation_log_loss, validation_accuracy"
                               " FROM periods ORDER BY run_id, period"):
            periods[str(row[0])].append(
                {"period": row[1], "step": row[2], **dict(zip(METRICS, row[3:]))})
        ckpt = {str(i): step for i, step in con.execute(
            "SELECT run_id, step FROM checkpoints WHERE kind = 'latest'")}
        datasets = {}
        for name, n, rows, cols, npx, nlab in con.execute(
                "SELECT name, examples, \"rows\", cols, length(pixels), length(labels)"
                " FROM datasets"):
            assert npx == n * rows * cols and nlab == n, f"dataset {name} is torn"
            datasets[name] = n
        return {"runs": runs, "periods": periods, "ckpt": ckpt, "datasets": datasets}
    finally:
        con.close()


def _check_period_steps(run):
    p = run["params"]
    for i, e in enumerate(run["periods"]):
        assert e["period"] == i + 1, run["periods"]
        assert e["step"] == p["steps"] * e["period"] // p["periods"], run["periods"]


class _Workload:
    """What keeps a server busy until it is killed: a slow CSV upload and a
    loop of predictions, each in a thread. Failures before the kill are
    errors; after it, connection errors are expected."""

    def __init__(self, port, name, csv, pixels, chunked, kill_time):
        self.port, self.name, self.csv, self.pixels = port, name, csv, pixels
        self.chunked = chunked
        self.kill_time = kill_time          # [t]: set just before SIGKILL
        self.errors = []
        self.upload_status = None
        self.predictions = defaultdict(int)
        self.threads = [threading.Thread(target=self._upload, daemon=True),
                        threading.Thread(target=self._predict, daemon=True)]
        for t in self.threads:
            t.start()

    def _before_kill(self):
        return self.kill_time[0] is None

    def _upload(self):
        data, step = self.csv, 48 * 1024
        head = (f"POST /datasets?name={self.name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: text/csv\r\n")
        head += ("Transfer-Encoding: chunked\r\n\r\n" if self.chunked
                 else f"Content-Length: {len(data)}\r\n\r\n")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
                s.sendall(head.encode())
                for i in range(0, len(data), step):
                    part = data[i:i + step]
                    if self.chunked:
                        part = b"%x\r\n" % len(part) + part + b"\r\n"
                    s.sendall(part)
                    time.sleep(0.015)       # slow: the kill may land mid-upload
                if self.chunked:
                    s.sendall(b"0\r\n\r\n")
                reply = _read_reply(s, 20)
        except OSError as e:
            if self._before_kill():
                self.errors.append(f"upload {self.name}: {e!r}")
            return
        if reply is None:
            if self._before_kill():
                self.errors.append(f"upload {self.name}: closed without a reply")
            return
        self.upload_status = reply[0]
        if reply[0] != 201:
            self.errors.append(f"upload {self.name}: {reply[0]} {reply[2][:300]!r}")

    def _predict(self):
        body = json.dumps({"pixels": self.pixels}).encode()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
                while self._before_kill():
                    s.sendall(_request_bytes("POST", "/predict", body))
                    reply = _read_reply(s, 20)
                    if reply is None:
                        if self._before_kill():
                            self.errors.append("predict: closed without a reply")
                        return
                    self.predictions[reply[0]] += 1
                    # 409 no_model until a run has succeeded
                    if reply[0] not in (200, 409):
                        self.errors.append(f"predict: {reply[0]} {reply[2][:300]!r}")
        except OSError as e:
            if self._before_kill():
                self.errors.append(f"predict: {e!r}")

    def join(self):
        for t in self.threads:
            t.join(timeout=20)
            assert not t.is_alive(), "a workload thread hangs after the kill"


class _Chaos:
    """The state the crash test keeps across kills."""

    def __init__(self, validate, imgs):
        self.validate = validate
        self.imgs = [_scaled(i) for i in imgs]
        self.created = {}        # run id -> spec index
        self.golden = {}         # run id -> {"periods", "predictions"} once succeeded
        self.seen = {}           # run id -> periods as last seen over HTTP
        self.ref = {}            # spec index -> periods of its first succeeded run
        self.uploads_ok = set()  # uploads answered 201
        self.interrupted = set() # runs found 'running' in the db of a killed server
        self.resumes = 0         # resumes checked against the newest checkpoint
        self.fresh_starts = 0    # interrupted before their first checkpoint

    def runs(self, c, history=True):
        body = self.validate(c.get("/runs", params={"limit": 1000}), "/runs", "get", 200)
        by_id = {r["id"]: r for r in body["runs"]}
        n_running = sum(r["status"] == "running" for r in by_id.values())
        assert n_running <= WORKERS, f"{n_running} runs 'running' with {WORKERS} workers"
        for rid, r in by_id.items() if history else ():
            # list items are summaries: a run's periods come with the run
            run = self.validate(c.get(f"/runs/{rid}"), "/runs/{id}", "get", 200)
            assert run["periods_done"] >= r["periods_done"], (r, run)
            r["periods"] = run["periods"]
        return by_id

    def predict(self, c, rid):
        r = c.post_json("/predict", {"run": rid, "pixels": self.imgs})
        return self.validate(r, "/predict", "post", 200)["predictions"]

    def check_restart(self, srv, snap):
        """After a restart on the db of a killed server: nothing lost,
        nothing stuck, interrupted runs resumed from their newest
        checkpoint, succeeded runs unchanged."""
        c = srv.client
        runs = self.runs(c)
        assert set(runs) == set(snap["runs"]), "runs differ from the db"
        assert set(self.created) <= set(runs), "an accepted run was lost"
        was_running = [rid for rid, r in snap["runs"].items() if r["status"] == "running"]
        self.interrupted.update(was_running)
        for rid, run in runs.items():
            if rid in was_running:
                assert run["status"] in ("queued", "running", "succeeded"), run
            if rid in self.golden:
                assert snap["runs"][rid]["status"] == "succeeded"
                assert run["status"] == "succeeded", run
                assert run["periods"] == self.golden[rid]["periods"]
            # every period seen before is still there, unchanged
            seen = self.seen.get(rid, [])
            assert run["periods"][:len(seen)] == seen, (rid, seen, run["periods"])
            stored = snap["periods"].get(rid, [])
            assert len(run["periods"]) >= len(stored)
            for a, b in zip(run["periods"], stored):
                assert (a["period"], a["step"]) == (b["period"], b["step"])
                for k in METRICS:
                    assert math.isclose(a[k], b[k], rel_tol=1e-8), (rid, k, a, b)
            _check_period_steps(run)

        # the interrupted runs are picked up again (never left 'running'
        # by no worker), and resume from their newest checkpoint
        deadline = time.monotonic() + 30 * time_scale()
        pending = set(was_running)
        while pending:
            runs = self.runs(c, history=False)
            for rid in list(pending):
                st = runs[rid]["status"]
                assert st in ("queued", "running", "succeeded"), runs[rid]
                if st == "queued":
                    continue
                events = [e for e in srv.events() if e.get("run") == int(rid)]
                if not any(e.get("event") == "started" for e in events):
                    continue            # the log line follows the claim
                resumed = [e for e in events if e.get("event") == "resumed"]
                step = snap["ckpt"].get(rid)
                if step is None:
                    assert not resumed, (rid, events)
                    self.fresh_starts += 1
                else:
                    if not resumed:
                        continue        # logged right after 'started'
                    stored = snap["periods"][rid]
                    assert stored and step == stored[-1]["step"], (rid, step, stored)
                    assert resumed[0]["detail"] == f"resuming at step {step}", resumed
                    self.resumes += 1
                pending.discard(rid)
            if pending:
                assert time.monotonic() < deadline, \
                    f"runs {sorted(pending)} not picked up again within 30 s: " \
                    f"{[runs[r] for r in pending]}"
                time.sleep(0.03)

        for rid, g in self.golden.items():
            assert self.predict(c, rid) == g["predictions"], f"predictions of run {rid} changed"

        body = self.validate(c.get("/datasets"), "/datasets", "get", 200)
        uploaded = {d["name"]: d for d in body["datasets"] if not d["builtin"]}
        assert set(uploaded) == set(snap["datasets"])
        assert self.uploads_ok <= set(uploaded), "an upload answered 201 was lost"
        for name, d in uploaded.items():
            assert d["examples"] == UPLOAD_ROWS, f"partial upload listed: {d}"
        self.record(c)

    def record(self, c):
        """Notes the periods of every run, and the predictions of newly
        succeeded ones (compared with their spec's first run)."""
        for rid, run in self.runs(c).items():
            self.seen[rid] = run["periods"]
            if run["status"] != "succeeded" or rid in self.golden:
                continue
            p = run["params"]
            assert len(run["periods"]) == p["periods"], run
            assert run["progress"]["step"] == p["steps"], run
            self.golden[rid] = {"periods": run["periods"], "predictions": self.predict(c, rid)}
            k = self.created[rid]
            if k not in self.ref:
                self.ref[k] = (rid, run["periods"], self.golden[rid]["predictions"])
                continue
            # interrupted or not, a spec and seed compute the same numbers
            ref_id, ref_periods, ref_pred = self.ref[k]
            for a, b in zip(run["periods"], ref_periods):
                for m in METRICS:
                    assert math.isclose(a[m], b[m], rel_tol=1e-6, abs_tol=1e-9), \
                        (f"run {rid} vs {ref_id}", m, a, b)
            for a, b in zip(self.golden[rid]["predictions"], ref_pred):
                assert a["class"] == b["class"]
                for x, y in zip(a["probabilities"], b["probabilities"]):
                    assert math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-7), \
                        (f"run {rid} vs {ref_id}", a, b)


@pytest.mark.sqlite_only
def test_sigkill_at_random_moments(start_server, validate, mnist, tmp_path):
    seed = int(os.environ.get("MNISTD_KILL_SEED") or random.randrange(1 << 32))
    n_kills = int(os.environ.get("MNISTD_KILLS") or 24)
    print(f"\ncrash test: seed {seed}, {n_kills} kills "
          f"(MNISTD_KILL_SEED={seed} replays the delays)")
    rng = random.Random(seed)
    db = tmp_path / "chaos.db"
    imgs, _ = mnist.images("test", 20)
    csv = mnist.csv("train", UPLOAD_ROWS).encode()
    chaos = _Chaos(validate, imgs)
    t_start = time.monotonic()
    delays = []

    # a checkpoint at every period end (no pacing): resumes are checked
    # against the last stored period
    every_period = ("--checkpoint-interval", "0")
    srv = start_server(db=db, name="start-0", workers=WORKERS, args=every_period)
    for k in range(n_kills):
        c = srv.client
        # keep the server busy: new runs (bounded backlog), a slow upload,
        # predictions
        runs = chaos.runs(c)
        unfinished = sum(r["status"] not in TERMINAL for r in runs.values())
        for _ in range(max(0, 4 - unfinished)):
            i = rng.randrange(len(KILL_SPECS))
            run = c.create_run(KILL_SPECS[i])
            chaos.created[run["id"]] = i
        kill_time = [None]
        work = _Workload(srv.port, f"up{k}", csv, chaos.imgs, chunked=k % 2 == 1,
                         kill_time=kill_time)
        delay = rng.uniform(0.05, 1.5) * time_scale()
        delays.append(delay)
        time.sleep(delay)
        kill_time[0] = time.monotonic()
        rc, _ = srv.kill()
        assert rc == -signal.SIGKILL, rc
        work.join()
        assert not work.errors, work.errors
        if work.upload_status == 201:
            chaos.uploads_ok.add(work.name)

        snap = _db_snapshot(db)         # the process is dead: read-only
        for rid in chaos.golden:
            assert snap["runs"][rid]["status"] == "succeeded"

        srv = start_server(db=db, name=f"start-{k + 1}", workers=WORKERS,
                           args=every_period)
        chaos.check_restart(srv, snap)

    # the end: every run succeeds, with all its periods, and every run that
    # was interrupted computed what an uninterrupted run computes
    c = srv.client
    deadline = time.monotonic() + 90 * time_scale()
    while True:
        runs = chaos.runs(c)
        bad = [r for r in runs.values() if r["status"] in ("failed", "cancelled")]
        assert not bad, bad
        if all(r["status"] == "succeeded" for r in runs.values()):
            break
        assert time.monotonic() < deadline, [r for r in runs.values() if r["status"] != "succeeded"]
        time.sleep(0.05)
    chaos.record(c)
    for rid, run in runs.items():
        assert run["periods"][:len(chaos.seen[rid])] == chaos.seen[rid]
        assert len(run["periods"]) == run["params"]["periods"]
    assert set(chaos.golden) == set(runs)
    rc, took = srv.stop()
    assert rc == 0 and took < 10
    snap = _db_snapshot(db)
    assert all(r["status"] == "succeeded" for r in snap["runs"].values())

    elapsed = time.monotonic() - t_start
    print(f"crash test: {n_kills} kills survived in {elapsed:.1f} s (seed {seed}); "
          f"{len(runs)} runs, {len(chaos.interrupted)} interrupted while running, "
          f"{chaos.resumes} resumes checked against the newest checkpoint, "
          f"{chaos.fresh_starts} restarts before a first checkpoint; "
          f"{len(chaos.uploads_ok)}/{n_kills} uploads completed, "
          f"{len(snap['datasets'])} stored; delays {min(delays):.2f}..{max(delays):.2f} s")
    # the workload must have produced what the test claims to check
    assert chaos.interrupted, "no kill landed while a run trained"
    assert chaos.resumes, "no run resumed from a checkpoint"
    assert len(chaos.uploads_ok) < n_kills, "no kill landed during an upload"


# ---------------------------------------------------------------- graceful stop

GRACE_RUN = {"model": "dnn", "hidden_units": [64], "steps": 4000, "periods": 40}
N_BATCH = 2000


@pytest.fixture(scope="module")
def big_batch(mnist):
    imgs, _ = mnist.images("test", N_BATCH)
    js = json.dumps({"pixels": [_scaled(i) for i in imgs]}).encode()
    return js, b"".join(imgs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.sqlite_only
def test_graceful_stop_finishes_in_flight_requests(start_server, validate, big_batch,
                                                   tmp_path, sig):
    db = tmp_path / "grace.db"
    a = start_server(db=db, name="before", workers=WORKERS)
    c = a.client
    model = c.train(DNN_SMALL)
    runs = [c.create_run(dict(GRACE_RUN, seed=s))["id"] for s in (1, 2)]
    for rid in runs:
        c.wait_for_run(rid, "running", timeout=60, until=lambda r: len(r["periods"]) >= 2)

    js, raw = big_batch
    # requests in flight when the signal comes: two big predict bodies of
    # which the last bytes are held back, and a GET /runs sent in full
    holds = []
    for body, ctype, path in ((js, "application/json", "/predict"),
                              (raw, "application/octet-stream", f"/predict?run={model['id']}")):
        if ctype == "application/json":
            body = body[:-1] + f', "run": "{model["id"]}"}}'.encode()
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
        req = _request_bytes("POST", path, body, ctype)
        s.sendall(req[:-500])
        holds.append((s, req[-500:]))
    idle = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    idle.sendall(_request_bytes("GET", "/healthz"))
    assert _read_reply(idle, 10)[0] == 200      # a kept-alive connection
    listing = socket.create_connection(("127.0.0.1", a.port), timeout=10)
    listing.sendall(_request_bytes("GET", "/runs?limit=1000"))
    time.sleep(0.3)                             # the server has read the heads

    name = "SIGTERM" if sig == signal.SIGTERM else "SIGINT"
    t_sig = time.monotonic()
    a.proc.send_signal(sig)
    deadline = t_sig + 5
    while f"{name}: stopping" not in a.stderr():
        assert time.monotonic() < deadline, f"no reaction to {name}: {a.stderr()[-2000:]}"
        time.sleep(0.02)
    # an impatient second signal does not cut the stop short
    a.proc.send_signal(sig)

    # after the signal: a new connection is refused, or closed, or 503
    try:
        with socket.create_connection(("127.0.0.1", a.port), timeout=3) as s:
            s.sendall(_request_bytes("GET", "/healthz"))
            reply = _read_reply(s, 3)
            assert reply is None or reply[0] == 503, reply
    except ConnectionRefusedError:
        pass
    # a new request on a kept-alive connection: 503 shutting_down, or closed
    try:
        idle.sendall(_request_bytes("GET", "/runs"))
        reply = _read_reply(idle, 5)
    except (BrokenPipeError, ConnectionResetError):
        reply = None
    if reply is not None:
        assert reply[0] == 503, reply
        assert json.loads(reply[2])["error"]["code"] == "shutting_down"
    idle.close()

    # the requests in flight complete
    reply = _read_reply(listing, 10)
    assert reply is not None, f"an in-flight GET /runs was cut off by {name}"
    assert reply[0] == 200, reply
    assert {r["id"] for r in json.loads(reply[2])["runs"]} >= set(runs)
    listing.close()
    for s, rest in holds:
        s.sendall(rest)
        reply = _read_reply(s, 10)
        assert reply is not None, f"an in-flight /predict was cut off by {name}"
        assert reply[0] == 200, reply
        body = json.loads(reply[2])
        assert body["run"] == model["id"] and len(body["predictions"]) == N_BATCH
        s.close()

    rc, _ = a.stop(sig, timeout=max(0.5, 10 - (time.monotonic() - t_sig)))
    took = time.monotonic() - t_sig
    assert rc == 0 and took < 10, (rc, took)
    for rid in runs:
        assert any(e.get("run") == int(rid) and e.get("event") == "requeued"
                   for e in a.events()), f"run {rid} not requeued at the stop"

    # the interrupted runs resume from their checkpoints and finish
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    ckpt = {str(i): s for i, s in con.execute(
        "SELECT run_id, step FROM checkpoints WHERE kind = 'latest'")}
    con.close()
    b = start_server(db=db, name="after", workers=WORKERS)
    c = b.client
    before = {rid: c.run(rid) for rid in runs}
    for rid, run in before.items():
        assert run["status"] in ("queued", "running"), run
        assert len(run["periods"]) >= 2
        assert ckpt[rid] >= run["periods"][-1]["step"] > 0
    deadline = time.monotonic() + 90 * time_scale()
    pending = set(runs)
    while pending:
        for rid in list(pending):
            run = c.run(rid)
            last = before[rid]["periods"][-1]["step"]
            if run["status"] == "running":
                # never back to step 0: at or after the last stored period
                assert run["progress"]["step"] >= last, (run["progress"], last)
            elif run["status"] == "succeeded":
                assert run["periods"][:len(before[rid]["periods"])] == before[rid]["periods"]
                assert len(run["periods"]) == GRACE_RUN["periods"]
                pending.discard(rid)
            else:
                assert run["status"] == "queued", run
        assert time.monotonic() < deadline, f"runs {pending} did not finish"
        time.sleep(0.05)
    for rid in runs:
        resumed = [e for e in b.events() if e.get("run") == int(rid) and e.get("event") == "resumed"]
        assert resumed and resumed[0]["detail"] == f"resuming at step {ckpt[rid]}", resumed


# ---------------------------------------------------------------- limits


def _connect_from(ip, port, timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def test_slow_clients_do_not_starve_others(start_server, validate):
    srv = start_server(args=["--max-conns-per-ip", "8", "--timeout", "2"], workers=1)
    port = srv.port
    slow = []
    t_open = time.monotonic()
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 2:   # part of the headers
            s.sendall(b"GET /runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: appl")
        else:       # the headers, then part of a declared body
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                      b'{"pixels": [0.5, 0.5, ')
        slow.append(s)
    time.sleep(0.2)

    # (a) a 9th connection from the same address is closed at once, unanswered
    t0 = time.monotonic()
    ninth = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        ninth.sendall(_request_bytes("GET", "/healthz"))
    except (BrokenPipeError, ConnectionResetError):
        pass
    took = _closed_by_peer(ninth, 1.0)
    assert took is not None, "a 9th connection from one address was served or held open"
    ninth.close()
    assert time.monotonic() - t0 < 1.0

    # (c) meanwhile another address is served quickly
    for path in ("/healthz", "/runs", "/healthz"):
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5,
                                          source_address=("127.0.0.2", 0))
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:300])
        conn.close()
        assert time.monotonic() - t0 < 1.0, f"{path} took {time.monotonic() - t0:.2f} s"
    other = _connect_from("127.0.0.2", port)
    other.sendall(_request_bytes("POST", "/runs", json.dumps(
        {"model": "linear", "steps": 10, "periods": 1, "seed": 1}).encode()))
    reply = _read_reply(other, 5)
    assert reply and reply[0] == 202, reply
    other.close()

    # (b) the server closes the slow sockets after --timeout 2
    for s in slow:
        left = t_open + 2 + 4 - time.monotonic()
        took = _closed_by_peer(s, max(left, 0.1))
        assert took is not None, "a half-sent request outlived --timeout 2 by 4 s"
        s.close()
    closed_after = time.monotonic() - t_open
    assert closed_after >= 1.5, f"slow sockets closed after {closed_after:.2f} s, before the timeout"

    # then the address is served again, up to its limit (the server may
    # count a closed connection for a few more ms: retry for up to 2 s)
    deadline = time.monotonic() + 2
    while True:
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
        replies = []
        for s in socks:
            try:
                s.sendall(_request_bytes("GET", "/healthz"))
                replies.append(_read_reply(s, 5))
            except (BrokenPipeError, ConnectionResetError):
                replies.append(None)
            s.close()
        if None not in replies or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert all(r and r[0] == 200 for r in replies), \
        f"8 connections from the address are not all served after the slow ones closed: {replies}"
    validate(srv.client.get("/healthz"), "/healthz", "get", 200)
    rc, took = srv.stop()
    assert rc == 0 and took < 10


def test_max_run_memory_flag(start_server, validate):
    srv = start_server(args=["--max-run-memory", "64"], workers=1)
    c = srv.client
    big = {"model": "dnn", "hidden_units": [2048, 2048], "optimizer": "adam", "seed": 1}
    r = c.post_json("/runs", big)
    msg = expect_error(r, "/runs", "post", 400, "run_too_large", "MiB", "64")
    need = int(re.search(r"(\d+) MiB", msg).group(1))
    assert need > 64, msg
    # with adagrad (one state buffer less) it still does not fit; a small
    # net does
    r = c.post_json("/runs", dict(big, optimizer="adagrad"))
    expect_error(r, "/runs", "post", 400, "run_too_large", "MiB")
    assert validate(c.get("/runs"), "/runs", "get", 200)["runs"] == []
    ok = c.create_run({"model": "dnn", "hidden_units": [64], "steps": 20, "periods": 1, "seed": 1})
    c.wait_for_run(ok["id"], "succeeded", timeout=60)
    rc, took = srv.stop()
    assert rc == 0 and took < 10


def test_trickling_body_is_cut_off(start_server, validate):
    """A body that keeps arriving, one byte at a time, never trips the idle
    timeout; --body-timeout bounds the whole body instead."""
    srv = start_server(args=["--body-timeout", "2", "--timeout", "30"], workers=1)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
              b'{"pixels": [')
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 8:
        try:
            s.sendall(b"0,")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.25)
        s.settimeout(0.01)
        try:
            if s.recv(1024) == b"":
                closed = True
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
            break
    took = time.monotonic() - t0
    s.close()
    assert closed, "a trickling body was kept open for 8 s"
    assert 1.5 < took < 6, f"cut off after {took:.1f} s with --body-timeout 2"
    # the server is fine afterwards
    validate(srv.client.get("/healthz"), "/healthz", "get", 200)


@pytest.mark.sqlite_only
def test_runtime_errors_are_json_lines(start_server, validate):
    """A runtime error (here: a worker that cannot claim a corrupt queued
    run) is logged as one JSON line like the request and run lines."""
    srv = start_server(workers=1)
    db = sqlite3.connect(srv.db, timeout=10)
    with db:
        db.execute("INSERT INTO runs (status, model, dataset, params_json, steps,"
                   " periods, created_at) VALUES ('queued', 'dnn', 'mnist', '{}',"
                   " 'lots', 1, 0)")
    db.close()
    deadline = time.monotonic() + 15
    errors = []
    while not errors and time.monotonic() < deadline:
        time.sleep(0.2)
        errors = [e for e in srv.events() if e.get("event") == "worker_claim_failed"]
    assert errors, f"no worker_claim_failed line:\n{srv.stderr()}"
    e = errors[0]
    assert set(e) == {"ts", "event", "error"}, e
    assert isinstance(e["ts"], int) and "corrupt" in e["error"], e
    for line in srv.stderr().splitlines():
        if not line.startswith("mnistd: "):
            json.loads(line)  # every runtime line is JSON
    # the server still answers
    validate(srv.client.get("/healthz"), "/healthz", "get", 200)
