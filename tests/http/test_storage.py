"""Storage: what a run keeps in the store when it ends (docs/STORAGE.md),
paced checkpoints, and the write-ahead log under its limit with many short
periods. SQLite's: the tests read the database file with sqlite3
(PostgreSQL keeps the same rows through the same store code)."""
import os
import sqlite3
import threading
import time

import pytest

from conftest import time_scale

pytestmark = pytest.mark.sqlite_only

WAL_LIMIT = 64 << 20        # PRAGMA journal_size_limit (server/store/sqlite.c)
LINEAR_PARAMS = 784 * 10 + 10
CKPT_OVERHEAD = 256         # header and crc of a checkpoint, bytes (at most)


def _checkpoints(db, rid):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return {kind: (step, size) for kind, step, size in con.execute(
            "SELECT kind, step, length(data) FROM checkpoints WHERE run_id = ?", (int(rid),))}
    finally:
        con.close()


def _kept(db, rid, ok, timeout=10):
    """The run's checkpoints once ok(them) holds: they are trimmed in the
    transaction that follows the one that ends the run."""
    deadline = time.monotonic() + timeout * time_scale()
    while True:
        ck = _checkpoints(db, rid)
        if ok(ck) or time.monotonic() > deadline:
            return ck
        time.sleep(0.05)


def test_a_succeeded_run_keeps_its_parameters_only(start_server, tmp_path):
    db = tmp_path / "keep.db"
    srv = start_server(db=db)
    c = srv.client
    # adam: the optimizer state is twice the parameters
    run = c.train({"model": "linear", "steps": 200, "periods": 4, "seed": 3,
                   "optimizer": "adam", "learning_rate": 0.003})
    ck = _kept(db, run["id"], lambda ck: ck.get("latest", (0, 1 << 30))[1] < 1 << 16)
    assert set(ck) == {"latest"}, ck
    step, size = ck["latest"]
    assert step == 200
    assert LINEAR_PARAMS * 4 < size < LINEAR_PARAMS * 4 + CKPT_OVERHEAD, ck
    r = c.post_json("/predict", {"run": run["id"], "pixels": [0.0] * 784})
    assert r.status_code == 200, r.text


def test_a_cancelled_run_keeps_its_full_checkpoint(start_server, tmp_path):
    db = tmp_path / "cancel.db"
    srv = start_server(db=db)
    c = srv.client
    run = c.create_run({"model": "linear", "steps": 1000000, "periods": 10, "seed": 3,
                        "optimizer": "adam", "learning_rate": 0.003})
    c.wait_for_run(run["id"], "running", timeout=30, until=lambda r: r["progress"]["step"] > 0)
    c.cancel(run["id"])
    c.wait_for_run(run["id"], "cancelled", timeout=30)
    ck = _kept(db, run["id"], lambda ck: set(ck) == {"latest"})
    # the checkpoint at the stop, with the optimizer state (to resume)
    assert set(ck) == {"latest"}, ck
    step, size = ck["latest"]
    assert step > 0
    assert size > 3 * LINEAR_PARAMS * 4, ck


def test_many_short_periods_keep_the_log_under_its_limit(start_server, tmp_path):
    """5 runs of 1,000 tiny periods: every period is stored, the
    checkpoints are paced, and the -wal file stays under its limit."""
    db = tmp_path / "wal.db"
    srv = start_server(db=db, workers=2)
    c = srv.client
    wal = f"{db}-wal"
    biggest = [0]
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                biggest[0] = max(biggest[0], os.path.getsize(wal))
            except OSError:
                pass
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    try:
        runs = [c.create_run({"model": "linear", "steps": 1000, "periods": 1000, "seed": s,
                              "examples": 100, "validation_examples": 10, "batch_size": 10})
                for s in range(1, 6)]
        done = [c.wait_for_run(r["id"], "succeeded", timeout=180) for r in runs]
    finally:
        stop.set()
        t.join()
    for d in done:
        assert len(d["periods"]) == 1000
        assert [p["period"] for p in d["periods"]] == list(range(1, 1001))
    assert 0 < biggest[0] < WAL_LIMIT, f"the -wal file reached {biggest[0]} bytes"
    for r in runs:
        assert set(_kept(db, r["id"], lambda ck: set(ck) == {"latest"})) == {"latest"}
