"""Signals between the nodes of one service (issue 15): three mnistd
processes, one worker each, on one PostgreSQL database (the same db path
gives the same schema; skipped on SQLite). What one node is told, the others
act on at once, through the database (server/jobs/signals.h: LISTEN/NOTIFY,
and the run's row): a run posted to a busy node starts on an idle one
without waiting for the workers' one-second safety poll; a cancel sent to a
third node stops the run where it trains; a third node shows the live
progress and streams the periods of a run trained elsewhere, also when the
run moves to another node after its node is killed; every node predicts the
same with a run, and a run deleted through one is 404 on the others as soon
as its signal arrives (milliseconds; the test allows two seconds);
a dataset uploaded through one node trains through another, and deleted
through one it is gone on every other (uploaded again, it is the new one).

Which node trains a run is read from each node's GET /healthz (`training`:
its busy workers)."""
import json
import subprocess
import time

import pytest

from conftest import LONG_RUN, api, expect_error, pg_ctl, require_bin, time_scale
from test_events import SSE

pytestmark = pytest.mark.postgresql_only

SHORT = {"model": "linear", "steps": 30, "periods": 1, "seed": 5}
# some seconds of training in 8 periods (long enough to kill its node in
# the middle; short enough for the suite)
EVENTS_RUN = {"model": "dnn", "hidden_units": [64, 64], "steps": 4000,
              "periods": 8, "seed": 7}


def _serve_flags():
    out = subprocess.run([str(require_bin()), "serve", "--help"],
                         capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


def node_args(name):
    """--node-name (issue 15's nodes) when this build has it."""
    return ["--node-name", name] if "--node-name" in _serve_flags() else []


def has_leases():
    """Whether dead nodes' runs are taken over (issue 15's leases)."""
    return "--lease-seconds" in _serve_flags()


@pytest.fixture
def nodes(start_server, tmp_path):
    """Three nodes, one worker each, on one database."""
    db = tmp_path / "cluster.db"
    return [start_server(db=db, name=n, args=node_args(n), workers=1)
            for n in ("n1", "n2", "n3")]


def training(node):
    r = node.client.get("/healthz")
    assert r.status_code == 200, r.text
    return r.json()["training"]


def trainer_of(nodes, run_id, timeout=30):
    """The node that trains running run run_id (the only one whose worker
    is busy with it: the others are idle or known busy with other runs)."""
    t_end = time.monotonic() + timeout * time_scale()
    c = nodes[0].client
    while time.monotonic() < t_end:
        run = c.run(run_id)
        if run["status"] == "running":
            busy = [n for n in nodes if training(n)]
            if len(busy) == 1:
                return busy[0]
        time.sleep(0.05)
    pytest.fail(f"no single node trains run {run_id}")


def ms(stamp):
    """An ISO time of the API (2026-11-30T05:43:29.454Z) in ms."""
    from datetime import datetime
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1e3


def wake_up_waits(nodes, n_runs=8):
    """Makes two nodes busy with long runs, posts n_runs short runs to them
    one at a time (each is claimed by the idle node) and returns how long
    each waited between its creation and its start, in ms; then cancels the
    long runs. Waiting for the idle worker's one-second safety poll, a run
    would wait 0.5 s on average (at most 1 s); woken by the database's
    notification it starts within milliseconds."""
    a = nodes[0]
    longs = [a.client.create_run(LONG_RUN)["id"] for _ in range(2)]
    t_end = time.monotonic() + 30 * time_scale()
    while sum(training(n) for n in nodes) < 2:
        assert time.monotonic() < t_end, "the long runs did not start"
        time.sleep(0.05)
    idle = [n for n in nodes if not training(n)]
    assert len(idle) == 1
    busy = [n for n in nodes if n is not idle[0]]
    waits = []
    for i in range(n_runs):
        poster = busy[i % 2]
        run = poster.client.create_run(dict(SHORT, seed=i + 1))
        done = poster.client.wait_for_run(run["id"], "succeeded", timeout=60)
        waits.append(ms(done["started_at"]) - ms(done["created_at"]))
    for rid in longs:
        a.client.cancel(rid)
        a.client.wait_for_run(rid, "cancelled", timeout=30)
    return waits


def test_a_run_posted_to_a_busy_node_starts_on_the_idle_one_at_once(nodes):
    waits = wake_up_waits(nodes)
    assert sum(waits) / len(waits) < 250 * time_scale(), waits


def test_wake_ups_and_cancels_work_again_after_the_database_restarts(nodes):
    """Each node's listening connection is re-opened and listens again."""
    pg_ctl("restart")
    # every node reaches the database again (its request connections are
    # re-opened on their next use)
    t_end = time.monotonic() + 60 * time_scale()
    for n in nodes:
        while n.client.get("/runs").status_code != 200:
            assert time.monotonic() < t_end, "a node did not get the database back"
            time.sleep(0.1)
    time.sleep(1.0)   # the listeners re-open within about half a second
    waits = wake_up_waits(nodes)
    assert sum(waits) / len(waits) < 250 * time_scale(), waits


def test_cancel_through_a_third_node_stops_the_run_where_it_trains(nodes):
    poster = nodes[0]
    run = poster.client.create_run(LONG_RUN)
    trainer = trainer_of(nodes, run["id"])
    third = next(n for n in nodes if n is not trainer and n is not poster) \
        if trainer is not poster else nodes[1]
    r = third.client.post(f"/runs/{run['id']}/cancel")
    body = api().validate(r, "/runs/{id}/cancel", "post", 202)
    assert body["status"] in ("running", "cancelled")
    if body["status"] == "running":
        assert body["cancel_requested"] is True
    t0 = time.monotonic()
    done = third.client.wait_for_run(run["id"], "cancelled", timeout=30)
    stopped_in = time.monotonic() - t0
    assert done["error"] is None and done["cancel_requested"] is False
    # the trainer's worker is free again, and the run stopped where it was
    assert done["progress"]["step"] < LONG_RUN["steps"]
    assert training(trainer) == 0
    assert stopped_in < 10 * time_scale(), stopped_in
    # ended: 409 on every node
    for n in nodes:
        expect_error(n.client.post(f"/runs/{run['id']}/cancel"),
                     "/runs/{id}/cancel", "post", 409, "run_ended")


def test_live_progress_through_a_third_node(nodes):
    run = nodes[0].client.create_run(LONG_RUN)
    trainer = trainer_of(nodes, run["id"])
    other = next(n for n in nodes if n is not trainer)
    # the trainer has taken its first steps (a run just claimed is at 0)
    t_end = time.monotonic() + 30 * time_scale()
    while trainer.client.run(run["id"])["progress"]["step"] == 0:
        assert time.monotonic() < t_end, "the run takes no step"
        time.sleep(0.05)
    seen = []
    for _ in range(3):
        here = trainer.client.run(run["id"])["progress"]["step"]
        time.sleep(1.5)
        there = other.client.run(run["id"])
        assert there["status"] == "running"
        # at most about a second old: past what the trainer had 1.5 s ago
        assert there["progress"]["step"] >= here > 0, (here, there["progress"])
        seen.append(there["progress"]["step"])
    assert seen == sorted(seen) and seen[0] < seen[-1], seen
    listed = {r["id"]: r for r in other.client.get("/runs").json()["runs"]}
    assert listed[run["id"]]["progress"]["step"] >= seen[-1]
    other.client.cancel(run["id"])
    other.client.wait_for_run(run["id"], "cancelled", timeout=30)


def _check_periods(events, run, timed=True):
    """A complete stream of run: its periods once each, in order, equal to
    the stored ones (timed False: but for `seconds`, the wall time of a
    period, which a period redone after a takeover takes anew), steps that
    never go back, and the run's end."""
    names = [e for e, _, _ in events]
    assert names and names[-1] == "end" and names.count("end") == 1, names
    periods = [d for e, d, _ in events if e == "period"]
    assert [p["period"] for p in periods] == list(range(1, run["progress"]["periods"] + 1))
    if not timed:
        periods = [dict(p, seconds=None) for p in periods]
        stored = [dict(p, seconds=None) for p in run["periods"]]
    else:
        stored = run["periods"]
    assert periods == stored
    steps = [d["step"] for e, d, _ in events if e == "progress"]
    assert steps == sorted(steps), [(e, d.get("step")) for e, d, _ in events]
    assert events[-1][1] == {"id": run["id"], "status": run["status"],
                             "error": run["error"]}


def test_events_through_a_third_node(nodes):
    poster = nodes[0]
    run = poster.client.create_run(EVENTS_RUN)
    trainer = trainer_of(nodes, run["id"])
    third = next(n for n in nodes if n is not trainer)
    with SSE(third.client, run["id"], timeout=120 * time_scale()) as s:
        events = s.read_all(deadline_s=300 * time_scale())
    done = third.client.wait_for_run(run["id"], "succeeded", timeout=60)
    _check_periods(events, done)
    assert any(e == "progress" for e, _, _ in events)


@pytest.mark.skipif(not has_leases(), reason="needs issue 15's leases "
                    "(--lease-seconds, branch cluster) for the takeover")
def test_events_through_a_third_node_across_a_takeover(nodes):
    poster = nodes[0]
    run = poster.client.create_run(EVENTS_RUN)
    trainer = trainer_of(nodes, run["id"])
    watcher = next(n for n in nodes if n is not trainer)
    with SSE(watcher.client, run["id"], timeout=120 * time_scale()) as s:
        events = []
        killed = False
        for event, data, eid in s:
            events.append((event, json.loads(data), eid))
            if event == "period" and not killed:
                trainer.kill()          # kill -9 in the middle of the run
                killed = True
    assert killed
    done = watcher.client.wait_for_run(run["id"], "succeeded", timeout=60)
    _check_periods(events, done, timed=False)


def test_predictions_are_the_same_on_every_node_and_a_delete_is_404_everywhere(
        nodes, mnist):
    run = nodes[0].client.train(SHORT, timeout=120)
    imgs, _ = mnist.images("test", 3)
    body = {"run": run["id"], "pixels": [mnist.scaled(i) for i in imgs]}
    answers = []
    for n in nodes:       # each node loads the model into its cache
        r = n.client.post_json("/predict", body)
        answers.append(api().validate(r, "/predict", "post", 200))
        assert n.client.get(f"/runs/{run['id']}/weights").status_code == 200
    assert answers[0] == answers[1] == answers[2]
    r = nodes[1].client.delete(f"/runs/{run['id']}")
    assert r.status_code == 204, r.text
    # the deleting node at once; the others once its signal has dropped the
    # model from their caches (no store read per cached predict)
    expect_error(nodes[1].client.post_json("/predict", body), "/predict", "post",
                 404, "not_found")
    t_end = time.monotonic() + 2 * time_scale()
    for n in nodes:
        while n.client.post_json("/predict", body).status_code == 200:
            assert time.monotonic() < t_end, "a deleted run still predicts"
            time.sleep(0.01)
        expect_error(n.client.post_json("/predict", body), "/predict", "post",
                     404, "not_found")
        assert n.client.get(f"/runs/{run['id']}/weights").status_code == 404


def test_a_dataset_uploaded_on_one_node_trains_on_another_and_goes_everywhere(
        nodes, mnist):
    a, b, c = nodes

    def upload(n, rows, start=0):
        r = n.client.post("/datasets", params={"name": "shared"},
                          data=mnist.csv("train", rows, start).encode(),
                          headers={"Content-Type": "text/csv"})
        api().validate(r, "/datasets", "post", 201)

    upload(a, 200)
    spec = {"model": "linear", "dataset": "shared", "examples": 200,
            "validation_examples": 50, "steps": 40, "periods": 2, "seed": 1}
    run = b.client.train(spec, timeout=120)
    assert run["dataset"] == "shared"
    # every node reads it (and keeps it): evaluate through each
    for n in nodes:
        e = n.client.post_json(f"/runs/{run['id']}/evaluate",
                               {"dataset": "shared"})
        assert api().validate(e, "/runs/{id}/evaluate", "post", 200)["examples"] == 200
    r = b.client.delete("/datasets/shared")
    assert r.status_code == 204, r.text
    for n in (a, c):      # gone at once, from memory too
        assert n.client.get("/datasets/shared").status_code == 404
        expect_error(n.client.post_json(f"/runs/{run['id']}/evaluate",
                                        {"dataset": "shared"}),
                     "/runs/{id}/evaluate", "post", 400, "bad_field", "shared")
        expect_error(n.client.post_json("/runs", spec), "/runs", "post", 400,
                     "bad_field", "shared")
    # uploaded again with other rows: every node evaluates on the new one
    upload(a, 120, start=500)
    for n in nodes:
        e = n.client.post_json(f"/runs/{run['id']}/evaluate",
                               {"dataset": "shared"})
        assert api().validate(e, "/runs/{id}/evaluate", "post", 200)["examples"] == 120
