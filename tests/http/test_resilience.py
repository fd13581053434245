"""Issue 11, items 1-3: a run does not die of a passing problem of its
environment. A store busy for a while (another process holding SQLite's
write lock) delays a run, never fails it; a run resumed while its dataset
is missing waits in the queue until the data is back; a failed or
cancelled run with a checkpoint continues on POST /runs/<id>/resume; and a
second server on one SQLite file refuses to start."""
import math
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import _data_dir, expect_error, require_bin

# Quick runs with many periods (~10 steps each): long enough to interrupt.
MANY_PERIODS = {"model": "linear", "steps": 600, "periods": 60, "batch_size": 20, "seed": 7}
PERIOD_METRICS = ("period", "step", "train_log_loss", "validation_log_loss", "validation_accuracy")


def _same_periods(a, b):
    """Periods a and b computed the same numbers (seconds aside)."""
    assert len(a) == len(b), (len(a), len(b))
    for x, y in zip(a, b):
        for k in PERIOD_METRICS:
            assert math.isclose(x[k], y[k], rel_tol=1e-6, abs_tol=1e-9), (k, x, y)


def _reference(client, spec):
    """The periods of an undisturbed run of spec."""
    return client.train(spec, timeout=120)["periods"]


# ---------------------------------------------------------------- item 3


@pytest.mark.sqlite_only
def test_second_server_on_one_sqlite_file_refuses_to_start(start_server, tmp_path):
    db = tmp_path / "one.db"
    a = start_server(db=db, name="first")
    run = a.client.create_run(MANY_PERIODS)
    proc = subprocess.run(
        [str(require_bin()), "serve", "--port", "0", "--db", str(db),
         "--data-dir", str(_data_dir()), "--workers", "1"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, err
    assert f"in use by process {a.proc.pid}" in err, err
    assert f"port {a.port}" in err, err
    assert "one server per SQLite database" in err, err
    assert b"listening" not in proc.stdout
    # the first server's run is unaffected: not requeued, it ends well
    done = a.client.wait_for_run(run["id"], "succeeded", timeout=120)
    assert [e for e in a.events() if e.get("run") == int(run["id"])
            and e.get("event") == "resumed"] == []
    assert len(done["periods"]) == MANY_PERIODS["periods"]
    # a dead server's lock goes with it (kill -9): a new server starts
    a.kill()
    b = start_server(db=db, name="second")
    assert b.client.run(run["id"])["status"] == "succeeded"


# ---------------------------------------------------------------- item 1

# 20 steps a period: the run is still early when the store is locked
BUSY_RUN = {"model": "linear", "steps": 1200, "periods": 60, "batch_size": 20, "seed": 11}
LOCK_SECONDS = 12

HOLD_LOCK = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@pytest.mark.sqlite_only
def test_busy_store_delays_a_run_and_never_fails_it(start_server, tmp_path):
    db = tmp_path / "busy.db"
    a = start_server(db=db, name="busy", workers=1)
    c = a.client
    run = c.create_run(BUSY_RUN)
    rid = run["id"]
    c.wait_for_run(rid, "running", until=lambda r: len(r["periods"]) >= 1)
    # another process holds the write lock for longer than the busy timeout
    holder = subprocess.Popen(["/usr/bin/python3", "-c", HOLD_LOCK, str(db), str(LOCK_SECONDS)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        mid = c.run(rid)               # readers are not blocked (WAL)
        assert mid["status"] == "running", mid
        assert len(mid["periods"]) < BUSY_RUN["periods"]
        done = c.wait_for_run(rid, "succeeded", timeout=120)
        assert time.monotonic() - t0 > LOCK_SECONDS - 2  # it did wait for the lock
    finally:
        holder.wait(timeout=LOCK_SECONDS + 30)
    assert holder.returncode == 0
    assert done["error"] is None
    busy = [e for e in a.events() if e.get("event") == "store_unavailable"]
    assert busy, a.stderr()
    # the same numbers as an undisturbed run of the same seed
    _same_periods(done["periods"], _reference(c, BUSY_RUN))


# ---------------------------------------------------------------- item 2

# 50 steps a period: long enough to be interrupted mid-run
LONG_ENOUGH = {"model": "linear", "steps": 3000, "periods": 60, "batch_size": 20, "seed": 5}


def test_resume_without_its_dataset_waits_queued_until_it_is_back(start_server, tmp_path):
    db = tmp_path / "wait.db"
    a = start_server(db=db, name="first", workers=1)
    rid = a.client.create_run(LONG_ENOUGH)["id"]
    a.client.wait_for_run(rid, "running", until=lambda r: len(r["periods"]) >= 2)
    a.kill()

    nodata = tmp_path / "nodata"
    nodata.mkdir()
    b = start_server(db=db, name="no-data", workers=1, args=("--data-dir", str(nodata)))
    run = b.client.wait_for_run(rid, "queued", timeout=30,
                                until=lambda r: r["waiting"] is not None)
    assert "dataset unavailable" in run["waiting"], run
    assert run["error"] is None and run["finished_at"] is None
    time.sleep(3)                  # tried again (2 s), still waiting, not failed
    run = b.client.run(rid)
    assert run["status"] in ("queued", "running"), run
    waits = [e for e in b.events() if e.get("run") == int(rid) and e.get("event") == "waiting"]
    assert len(waits) >= 2, b.stderr()
    b.stop()

    c = start_server(db=db, name="data-back", workers=1)
    done = c.client.wait_for_run(rid, "succeeded", timeout=120)
    assert done["waiting"] is None
    _same_periods(done["periods"], _reference(c.client, LONG_ENOUGH))


def test_a_cancelled_run_resumes_from_where_it_stopped(start_server, validate, tmp_path):
    s = start_server(name="resume", workers=1)
    c = s.client
    rid = c.create_run(LONG_ENOUGH)["id"]
    c.wait_for_run(rid, "running", until=lambda r: len(r["periods"]) >= 3)
    c.cancel(rid)
    stopped = c.wait_for_run(rid, "cancelled", timeout=30)
    assert len(stopped["periods"]) < LONG_ENOUGH["periods"]
    r = c.post(f"/runs/{rid}/resume")
    run = validate(r, "/runs/{id}/resume", "post", 202)
    assert run["status"] in ("queued", "running"), run
    assert run["finished_at"] is None and run["error"] is None
    assert run["periods"][:len(stopped["periods"])] == stopped["periods"]
    done = c.wait_for_run(rid, "succeeded", timeout=120)
    resumed = [e for e in s.events() if e.get("run") == int(rid) and e.get("event") == "resumed"]
    assert resumed, s.stderr()
    # from the checkpoint the cancel stored (at or past its last period)
    resume_step = int(resumed[-1]["detail"].rsplit(" ", 1)[1])
    assert resume_step >= stopped["periods"][-1]["step"]
    _same_periods(done["periods"], _reference(c, LONG_ENOUGH))


def test_resume_conflicts(start_server, validate):
    s = start_server(name="conflicts", workers=1)
    c = s.client
    small = dict(LONG_ENOUGH, steps=40, periods=2)
    ok = c.train(small)
    expect_error(c.post(f"/runs/{ok['id']}/resume"), "/runs/{id}/resume", "post", 409,
                 "run_not_resumable", ok["id"], "succeeded")
    long = c.create_run(dict(LONG_ENOUGH, steps=10**6, periods=10))
    queued = c.create_run(small)   # one worker: this one waits in the queue
    c.wait_for_run(long["id"], "running")
    expect_error(c.post(f"/runs/{long['id']}/resume"), "/runs/{id}/resume", "post", 409,
                 "run_not_resumable", "running")
    expect_error(c.post(f"/runs/{queued['id']}/resume"), "/runs/{id}/resume", "post", 409,
                 "run_not_resumable", "queued")
    # cancelled while queued: it never trained, so it has no checkpoint
    c.cancel(queued["id"])
    c.wait_for_run(queued["id"], "cancelled", timeout=30)
    expect_error(c.post(f"/runs/{queued['id']}/resume"), "/runs/{id}/resume", "post", 409,
                 "no_checkpoint", queued["id"])
    expect_error(c.post("/runs/999999/resume"), "/runs/{id}/resume", "post", 404, "not_found")
    c.cancel(long["id"])
    c.wait_for_run(long["id"], "cancelled", timeout=30)
