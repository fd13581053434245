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

from conftest import _bin_path, _data_dir, expect_error

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


def test_second_server_on_one_sqlite_file_refuses_to_start(start_server, tmp_path):
    db = tmp_path / "one.db"
    a = start_server(db=db, name="first")
    run = a.client.create_run(MANY_PERIODS)
    proc = subprocess.run(
        [str(_bin_path()), "serve", "--port", "0", "--db", str(db),
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
    assert [e for e in a.events() if e.get("run") == run["id"]
            and e.get("event") == "resumed"] == []
    assert len(done["periods"]) == MANY_PERIODS["periods"]
    # a dead server's lock goes with it (kill -9): a new server starts
    a.kill()
    b = start_server(db=db, name="second")
    assert b.client.run(run["id"])["status"] == "succeeded"
