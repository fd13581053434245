"""Durability: runs, periods, models and uploads survive a graceful restart;
a run interrupted by a crash (SIGKILL) or a graceful stop (SIGTERM) is not
left 'running': it resumes from its checkpoint, keeping its periods."""
import math
import sqlite3
import time

import pytest

from conftest import DNN_SMALL, LINEAR_SMALL, LONG_RUN, expect_error

# ~100 steps per period and many periods: long enough to interrupt.
LONG_DNN = {"model": "dnn", "steps": 100000, "periods": 1000, "seed": 1}
# serve flags for a checkpoint at every period end (no pacing)
EVERY_PERIOD = ("--checkpoint-interval", "0")
PERIOD_METRICS = ("period", "step", "train_log_loss", "validation_log_loss", "validation_accuracy")


def _predict(client, validate, rid, imgs):
    r = client.post_json("/predict", {"run": rid, "pixels": [[b / 255.0 for b in i] for i in imgs]})
    return validate(r, "/predict", "post", 200)


def _same_metrics(a, b):
    """Periods a and b computed the same numbers (seconds aside)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in PERIOD_METRICS:
            assert math.isclose(x[k], y[k], rel_tol=1e-6, abs_tol=1e-9), (k, x, y)


def _wait_periods(client, rid, n, timeout=120):
    return client.wait_for_run(rid, ("running", "succeeded"), timeout=timeout,
                               until=lambda run: len(run["periods"]) >= n)


def test_graceful_restart_keeps_everything(start_server, validate, mnist, tmp_path):
    db = tmp_path / "restart.db"
    a = start_server(db=db, name="first")
    c = a.client
    imgs, _ = mnist.images("test", 20)

    # a fresh store has no model to serve
    r = c.post_json("/predict", {"pixels": [0.0] * 784})
    expect_error(r, "/predict", "post", 409, "no_model", "POST /runs")

    lin = c.create_run(LINEAR_SMALL)
    dnn = c.create_run(DNN_SMALL)
    lin = c.wait_for_run(lin["id"], "succeeded")
    dnn = c.wait_for_run(dnn["id"], "succeeded")
    cancelled = c.create_run(LONG_RUN)
    c.cancel(cancelled["id"])
    cancelled = c.wait_for_run(cancelled["id"], "cancelled", timeout=30)
    e = validate(c.post_json(f"/runs/{dnn['id']}/evaluate", {}), "/runs/{id}/evaluate", "post", 200)
    up = validate(c.post("/datasets", params={"name": "keep"}, data=mnist.csv("train", 30).encode(),
                         headers={"Content-Type": "text/csv"}), "/datasets", "post", 201)

    before_runs = validate(c.get("/runs"), "/runs", "get", 200)["runs"]
    before_pred = {rid: _predict(c, validate, rid, imgs) for rid in (lin["id"], dnn["id"])}
    before_conf = validate(c.get(f"/runs/{dnn['id']}/confusion", params={"set": "test"}),
                           "/runs/{id}/confusion", "get", 200)
    before_w = validate(c.get(f"/runs/{lin['id']}/weights"), "/runs/{id}/weights", "get", 200)

    rc, took = a.stop()
    assert rc == 0 and took < 10

    b = start_server(db=db, name="second")
    c = b.client
    after_runs = validate(c.get("/runs"), "/runs", "get", 200)["runs"]
    assert after_runs == before_runs
    for rid in (lin["id"], dnn["id"]):
        assert _predict(c, validate, rid, imgs) == before_pred[rid]
    assert validate(c.get(f"/runs/{dnn['id']}/confusion", params={"set": "test"}),
                    "/runs/{id}/confusion", "get", 200) == before_conf
    assert c.run(dnn["id"])["test_accuracy"] == e["accuracy"]
    assert validate(c.get(f"/runs/{lin['id']}/weights"), "/runs/{id}/weights", "get", 200) == before_w
    assert validate(c.get("/datasets/keep"), "/datasets/{name}", "get", 200) == up
    # the newest succeeded run still serves by default
    body = validate(c.post_json("/predict", {"pixels": [0.0] * 784}), "/predict", "post", 200)
    assert body["run"] == dnn["id"]
    # new ids continue after the old ones; the upload trains after a restart
    new = c.create_run({"model": "linear", "steps": 4, "periods": 1, "seed": 5, "dataset": "keep",
                        "examples": 30, "validation_examples": 10, "batch_size": 10})
    assert int(new["id"]) > max(int(x["id"]) for x in before_runs)
    c.wait_for_run(new["id"], "succeeded")


def test_crash_resumes_from_last_period(start_server, validate, tmp_path):
    db = tmp_path / "crash.db"
    # a checkpoint at every period end (unpaced): the resume is at the last one
    a = start_server(db=db, name="crashing", args=EVERY_PERIOD)
    c = a.client
    run = c.create_run(LONG_DNN)
    rid = run["id"]
    seen = _wait_periods(c, rid, 2)
    assert seen["status"] == "running"
    killed_step = seen["progress"]["step"]
    rc, _ = a.kill()
    assert rc == -9

    b = start_server(db=db, name="recovered", args=EVERY_PERIOD)
    c = b.client
    after = c.run(rid)
    assert after["status"] in ("queued", "running")
    kept = after["periods"]
    assert len(kept) >= len(seen["periods"])
    _same_metrics(kept[:len(seen["periods"])], seen["periods"])
    assert kept[:len(seen["periods"])] == seen["periods"]  # identical, seconds too
    assert "queued again to resume" in b.stderr()

    # it trains on past the point of the crash, periods numbered on
    resumed = c.wait_for_run(rid, "running", timeout=60,
                             until=lambda r: r["progress"]["step"] > killed_step
                             and len(r["periods"]) > len(kept))
    assert resumed["periods"][:len(kept)] == kept
    assert [p["period"] for p in resumed["periods"]] == list(range(1, len(resumed["periods"]) + 1))
    assert [p["step"] for p in resumed["periods"]] == [100 * p["period"] for p in resumed["periods"]]
    events = [e for e in b.events() if e.get("run") == int(rid)]
    starts = [e for e in events if e.get("event") == "resumed"]
    assert starts, f"no 'resumed' event: {events}"
    resume_step = int(starts[0]["detail"].rsplit(" ", 1)[1])
    # from the checkpoint of the last period stored before the crash
    assert resume_step in [p["step"] for p in kept]
    assert resume_step >= seen["periods"][-1]["step"]

    # the numbers after the resume are those of a run that never stopped
    ref = c.create_run(LONG_DNN)
    n = len(resumed["periods"])
    ref_done = _wait_periods(c, ref["id"], n)
    now = c.run(rid)
    _same_metrics(ref_done["periods"][:n], now["periods"][:n])

    for x in (rid, ref["id"]):
        c.cancel(x)
    for x in (rid, ref["id"]):
        c.wait_for_run(x, "cancelled", timeout=30)
    assert c.run(rid)["periods"][:n] == now["periods"][:n]


def test_sigterm_mid_training_checkpoints_and_resumes(start_server, validate, tmp_path):
    db = tmp_path / "term.db"
    a = start_server(db=db, name="stopping")
    c = a.client
    run = c.create_run(LONG_DNN)
    rid = run["id"]
    _wait_periods(c, rid, 2)
    # stop in the middle of a period
    time.sleep(0.05)
    seen = c.run(rid)
    assert seen["status"] == "running"
    step_seen = seen["progress"]["step"]
    rc, took = a.stop()
    assert rc == 0 and took < 10
    requeued = [e for e in a.events() if e.get("run") == int(rid) and e.get("event") == "requeued"]
    assert requeued, a.stderr()

    b = start_server(db=db, name="resumed")
    c = b.client
    after = c.run(rid)
    assert after["status"] in ("queued", "running")
    n_before = len(seen["periods"])
    assert after["periods"][:n_before] == seen["periods"]
    last_period_step = after["periods"][-1]["step"]

    deadline = time.monotonic() + 60
    resume_step = None
    while time.monotonic() < deadline and resume_step is None:
        for e in b.events():
            if e.get("run") == int(rid) and e.get("event") == "resumed":
                resume_step = int(e["detail"].rsplit(" ", 1)[1])
        cur = c.run(rid)
        if cur["status"] == "running":
            # progress never goes back to 0 (nor below what was stored)
            assert cur["progress"]["step"] >= last_period_step > 0
        time.sleep(0.05)
    assert resume_step is not None, b.stderr()
    # resumed from the checkpoint taken at the stop, not from step 0 and
    # not from the last period's end
    assert resume_step >= step_seen > 0
    progressed = c.wait_for_run(rid, "running", timeout=60,
                                until=lambda r: r["progress"]["step"] > resume_step
                                and len(r["periods"]) > len(after["periods"]))
    assert progressed["periods"][:len(after["periods"])] == after["periods"]
    assert [p["period"] for p in progressed["periods"]] == \
        list(range(1, len(progressed["periods"]) + 1))

    # a resume mid-period computes what an uninterrupted run computes
    ref = c.create_run(LONG_DNN)
    n = len(progressed["periods"])
    ref_done = _wait_periods(c, ref["id"], n)
    _same_metrics(ref_done["periods"][:n], c.run(rid)["periods"][:n])

    for x in (rid, ref["id"]):
        c.cancel(x)
    for x in (rid, ref["id"]):
        c.wait_for_run(x, "cancelled", timeout=30)
    rc, took = b.stop()
    assert rc == 0 and took < 10


def test_crash_before_the_first_period_restarts_from_step_0(start_server, tmp_path):
    db = tmp_path / "early.db"
    a = start_server(db=db, name="early")
    c = a.client
    run = c.create_run({"model": "dnn", "steps": 50000, "periods": 1, "seed": 2})
    rid = run["id"]
    c.wait_for_run(rid, "running", timeout=30, until=lambda r: r["progress"]["step"] > 0)
    a.kill()

    b = start_server(db=db, name="early-recovered")
    c = b.client
    after = c.run(rid)
    assert after["status"] in ("queued", "running") and after["periods"] == []
    c.wait_for_run(rid, "running", timeout=30, until=lambda r: r["progress"]["step"] > 0)
    events = [e for e in b.events() if e.get("run") == int(rid)]
    assert any(e.get("event") == "started" for e in events), events
    assert not any(e.get("event") == "resumed" for e in events), "no checkpoint to resume from"
    c.cancel(rid)
    done = c.wait_for_run(rid, "cancelled", timeout=30)
    assert done["periods"] == [] and done["finished_at"] is not None


@pytest.mark.sqlite_only
def test_crash_with_paced_checkpoints_redoes_periods_with_equal_numbers(start_server, tmp_path):
    """Checkpoints at most once a second: a crash resumes from the last one,
    possibly some periods back; those periods are computed again, with the
    same numbers, and stored in place of the first ones."""
    db = tmp_path / "paced.db"
    paced = ("--checkpoint-interval", "1")
    a = start_server(db=db, name="paced", args=paced)
    c = a.client
    rid = c.create_run(LONG_DNN)["id"]
    t0 = time.monotonic()
    seen = _wait_periods(c, rid, 3)
    while time.monotonic() - t0 < 2.5:
        time.sleep(0.05)
    seen = c.run(rid)
    a.kill()

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    ckpt = [s for (s,) in con.execute(
        "SELECT step FROM checkpoints WHERE run_id = ? AND kind = 'latest'", (int(rid),))]
    stored = [s for (s,) in con.execute(
        "SELECT step FROM periods WHERE run_id = ? ORDER BY period", (int(rid),))]
    con.close()
    assert ckpt and ckpt[0] in stored and ckpt[0] <= stored[-1], (ckpt, stored)

    b = start_server(db=db, name="paced-recovered", args=paced)
    c = b.client
    n = len(stored) + 2
    resumed = _wait_periods(c, rid, n)
    events = [e for e in b.events() if e.get("run") == int(rid)]
    starts = [e for e in events if e.get("event") == "resumed"]
    assert starts and starts[0]["detail"] == f"resuming at step {ckpt[0]}", events
    periods = resumed["periods"][:n]
    assert [p["period"] for p in periods] == list(range(1, n + 1))
    assert [p["step"] for p in periods] == [100 * p["period"] for p in periods]
    _same_metrics(periods[:len(seen["periods"])], seen["periods"])

    ref = c.create_run(LONG_DNN)
    ref_done = _wait_periods(c, ref["id"], n)
    _same_metrics(ref_done["periods"][:n], c.run(rid)["periods"][:n])
    for x in (rid, ref["id"]):
        c.cancel(x)
    for x in (rid, ref["id"]):
        c.wait_for_run(x, "cancelled", timeout=30)


def test_a_cancel_accepted_just_before_sigterm_is_kept(start_server, tmp_path):
    """A cancel answered 202 must end the run `cancelled` even when SIGTERM
    follows at once: a run just claimed by a worker (its cancel still on the
    pool's pending list) or one whose stop flag the cancel raised must not be
    requeued by the shutdown and train again after the restart."""
    long_run = {"model": "dnn", "steps": 100000, "periods": 10, "seed": 1}
    for trial in range(4):
        db = tmp_path / f"cancel-{trial}.db"
        a = start_server(db=db, workers=1, name=f"cancel{trial}")
        c = a.client
        ids = [c.create_run(long_run)["id"] for _ in range(2)]
        time.sleep(0.05)
        for rid in ids:
            r = c.post(f"/runs/{rid}/cancel")
            assert r.status_code in (200, 202), r.text
        rc, _ = a.stop()
        assert rc == 0
        b = start_server(db=db, workers=1, name=f"cancel{trial}-after")
        for rid in ids:
            run = b.client.run(rid)
            assert run["status"] == "cancelled", (trial, rid, run["status"], a.stderr())
        b.stop()
