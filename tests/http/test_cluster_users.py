"""test_cluster_users.py: users (issue 16) on several nodes (issue 15).

Two mnistd processes, one worker each, on one PostgreSQL database (the same
db path gives the same schema; skipped on SQLite, as the other cluster
suites). Where the two features meet:

- users and tokens live in the database: a user added while the nodes run
  counts on every node, and GET /me answers the same on each;
- another user's run is 404 on every node, for reads, cancel and delete,
  also on the node that trains it and on the one that does not; its owner
  (and an admin) cancel it through the node that does not train it, and
  that node's audit line names the user;
- GET /nodes is open to every user, but a node's `runs` lists only the
  caller's own runs (an admin's: every run);
- fair share counts each owner's running runs on every node: with alice
  holding both nodes' workers and four more runs queued, bob's one run
  posted to one node starts on the other as soon as a worker there is free,
  before alice's older ones.

Which node trains a run is read from the run's `node`.
"""
import time

import pytest

from conftest import LONG_RUN, api, expect_error, time_scale
from test_cluster_signals import node_args
from test_users import add_user, bearer

pytestmark = pytest.mark.postgresql_only

NAMES = ("n1", "n2")


@pytest.fixture
def pair(start_server, tmp_path):
    """Two nodes, one worker each, on one database; each server's .name is
    its node name."""
    db = tmp_path / "cluster.db"
    nodes = []
    for n in NAMES:
        s = start_server(db=db, name=n, args=node_args(n), workers=1)
        s.name = n
        nodes.append(s)
    return nodes


def post_run(node, token, spec):
    r = node.client.post_json("/runs", spec, headers=bearer(token))
    return api().validate(r, "/runs", "post", 202)


def get_run(node, token, run_id):
    r = node.client.get(f"/runs/{run_id}", headers=bearer(token))
    return api().validate(r, "/runs/{id}", "get", 200)


def wait_status(node, token, run_id, statuses, timeout=60):
    """Polls run_id through node as token until its status is one of
    statuses; returns the run."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    t_end = time.monotonic() + timeout * time_scale()
    run = None
    while time.monotonic() < t_end:
        run = get_run(node, token, run_id)
        if run["status"] in statuses:
            return run
        time.sleep(0.05)
    pytest.fail(f"run {run_id} not {statuses}: {run}")


def audit_lines(node):
    return [e for e in node.events() if e.get("event") == "audit"]


def test_users_runs_me_nodes_and_cancel_across_nodes(pair, validate):
    db = pair[0].db
    alice = add_user(db, "alice")
    bob = add_user(db, "bob")
    root = add_user(db, "root", admin=True)
    # the users are known on every node from its next request
    for node in pair:
        expect_error(node.client.get("/runs"), "/runs", "get", 401, "unauthorized")
        for token, want in ((alice, {"name": "alice", "admin": False}),
                            (bob, {"name": "bob", "admin": False}),
                            (root, {"name": "root", "admin": True})):
            got = validate(node.client.get("/me", headers=bearer(token)), "/me", "get", 200)
            assert got == want, (node.name, got)

    # alice's long run trains on one of the nodes; the other is `other`
    rid = post_run(pair[0], alice, LONG_RUN)["id"]
    run = wait_status(pair[0], alice, rid, "running")
    assert run["owner"] == "alice" and run["node"] in NAMES and run["attempts"] == 1, run
    trainer = pair[NAMES.index(run["node"])]
    other = pair[1 - NAMES.index(run["node"])]

    for node in pair:
        # alice sees her run, its node and owner, on every node
        seen = get_run(node, alice, rid)
        assert (seen["owner"], seen["node"]) == ("alice", trainer.name), seen
        # bob: 404 on every node, as if it did not exist; nothing changes
        c = node.client
        expect_error(c.get(f"/runs/{rid}", headers=bearer(bob)), "/runs/{id}", "get", 404,
                     "not_found")
        expect_error(c.post(f"/runs/{rid}/cancel", headers=bearer(bob)),
                     "/runs/{id}/cancel", "post", 404, "not_found")
        expect_error(c.delete(f"/runs/{rid}", headers=bearer(bob)), "/runs/{id}", "delete",
                     404, "not_found")
        listed = validate(c.get("/runs", headers=bearer(bob)), "/runs", "get", 200)
        assert rid not in [r["id"] for r in listed["runs"]], listed
        # GET /nodes: every user sees both nodes; a node's runs are the
        # caller's own (bob: none; alice and the admin: the run, on its node)
        for token, want in ((bob, []), (alice, [rid]), (root, [rid])):
            nl = validate(c.get("/nodes", headers=bearer(token)), "/nodes", "get", 200)
            by = {n["name"]: n for n in nl["nodes"]}
            assert set(NAMES) <= set(by), nl
            assert by[trainer.name]["runs"] == want, (token.split(".")[0], nl)
            assert by[other.name]["runs"] == [], nl
    # bob's refusals left the run training where it was, not cancelled
    seen = get_run(trainer, alice, rid)
    assert seen["status"] == "running" and seen["cancel_requested"] is False, seen

    # alice cancels it through the node that does not train it
    r = other.client.post(f"/runs/{rid}/cancel", headers=bearer(alice))
    validate(r, "/runs/{id}/cancel", "post", 202)
    done = wait_status(trainer, alice, rid, "cancelled")
    assert done["owner"] == "alice", done
    # the admin's cancel of another run of hers, also through the other node
    rid2 = post_run(trainer, alice, LONG_RUN)["id"]
    wait_status(other, root, rid2, ("running",))
    validate(other.client.post(f"/runs/{rid2}/cancel", headers=bearer(root)),
             "/runs/{id}/cancel", "post", 202)
    wait_status(other, alice, rid2, "cancelled")

    # audit: the node that answered writes the line, naming the user; the
    # refused requests (404) wrote none
    for node in pair:
        node.stop()
    lines = [(e["node_seen"], e["user"], e["method"], e["route"], e["status"], e["resource"])
             for node in pair for e in ({**x, "node_seen": node.name} for x in audit_lines(node))]
    cancels = [x for x in lines if x[3] == "/runs/{}/cancel"]
    assert sorted(cancels) == sorted([
        (other.name, "alice", "POST", "/runs/{}/cancel", 202, {"run": rid}),
        (other.name, "root", "POST", "/runs/{}/cancel", 202, {"run": rid2}),
    ]), lines
    assert not [x for x in lines if x[1] == "bob"], lines
    creates = [x for x in lines if x[3] == "/runs"]
    assert sorted(creates, key=lambda x: x[5]["run"]) == [
        (pair[0].name, "alice", "POST", "/runs", 202, {"run": rid}),
        (trainer.name, "alice", "POST", "/runs", 202, {"run": rid2}),
    ], lines


def test_fair_share_across_nodes(pair):
    """alice holds both workers (one on each node) and queues four more
    runs; bob's one run, posted to the node whose worker stays busy, starts
    on the other node once alice's run there is cancelled: bob has none
    running on any node, alice one."""
    db = pair[0].db
    alice = add_user(db, "alice")
    bob = add_user(db, "bob")
    first = [post_run(pair[i % 2], alice, dict(LONG_RUN, seed=i + 1))["id"] for i in range(2)]
    running = [wait_status(pair[0], alice, rid, "running") for rid in first]
    assert sorted(r["node"] for r in running) == sorted(NAMES), running
    queued = [post_run(pair[i % 2], alice, dict(LONG_RUN, seed=10 + i))["id"]
              for i in range(4)]
    # to free: alice's run on n1; bob posts to n2, whose worker stays busy
    free = next(r["id"] for r in running if r["node"] == "n1")
    b = post_run(pair[1], bob, dict(LONG_RUN, seed=99))["id"]
    for rid in queued:
        assert get_run(pair[0], alice, rid)["status"] == "queued"
    assert get_run(pair[0], bob, b)["status"] == "queued"
    r = pair[1].client.post(f"/runs/{free}/cancel", headers=bearer(alice))
    api().validate(r, "/runs/{id}/cancel", "post", 202)
    wait_status(pair[0], alice, free, "cancelled")
    got = wait_status(pair[1], bob, b, "running")
    assert got["node"] == "n1" and got["owner"] == "bob", got
    # alice's older queued runs waited: no worker is free
    for rid in queued:
        assert get_run(pair[0], alice, rid)["status"] == "queued"
    # end everything (the fixture stops the nodes)
    for rid in [x for x in first if x != free] + queued:
        pair[0].client.post(f"/runs/{rid}/cancel", headers=bearer(alice))
    pair[0].client.post(f"/runs/{b}/cancel", headers=bearer(bob))
