"""Fair use once users exist (issue 16): the per-user limits
(--max-runs-per-user, --max-upload-bytes-per-user, --max-sweep-trials-per-user)
answer 429 with Retry-After and a code naming the limit, create nothing, count
each user apart and leave admins alone; with no users nothing is limited; and
fair share: with one worker, one user's run queued behind another user's 20 is
the next to start. Users and tokens come from `mnistd users add` on the
server's database. Every response is validated against openapi.yaml."""
import subprocess
import threading

import pytest

from conftest import (LINEAR_SMALL, LONG_RUN, Client, expect_error, require_bin,
                      time_scale)


def add_user(server, name, admin=False):
    """`mnistd users add NAME [--admin]` on the server's database: the token."""
    cmd = [require_bin(), "users", "add", name, "--db", server.db]
    if admin:
        cmd.append("--admin")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         timeout=30 * time_scale()).stdout
    return out.strip().splitlines()[-1]


def as_user(server, token):
    c = Client(server.client.base)
    c.http.headers["Authorization"] = f"Bearer {token}"
    return c


@pytest.fixture
def users(start_server):
    """start(args, workers) -> (server, {"alice", "bob", "teacher"(admin)}:
    clients)."""
    def start(args=(), workers=1):
        srv = start_server(args=list(args), workers=workers)
        tokens = {"alice": add_user(srv, "alice"), "bob": add_user(srv, "bob"),
                  "teacher": add_user(srv, "teacher", admin=True)}
        return srv, {n: as_user(srv, t) for n, t in tokens.items()}
    return start


def run_ids(client, validate):
    r = client.get("/runs?limit=1000")
    return sorted(x["id"] for x in validate(r, "/runs", "get", 200)["runs"])


def over_limit(r, validate, path, code, flag, retry_after):
    expect_error(r, path, "post", 429, code, flag)
    assert r.headers["Retry-After"] == retry_after


def csv_rows(n, label=3):
    return "".join(f"{label}," + ",".join(["0"] * 784) + "\n" for _ in range(n))


def upload(client, name, n):
    return client.post(f"/datasets?name={name}", data=csv_rows(n),
                       headers={"Content-Type": "text/csv"})


def test_runs_per_user_limit(users, validate):
    srv, u = users(["--max-runs-per-user", "3"])
    alice, bob, teacher = u["alice"], u["bob"], u["teacher"]
    first = alice.create_run(LONG_RUN)
    alice.wait_for_run(first["id"], "running")
    queued = [alice.create_run(LINEAR_SMALL) for _ in range(2)]
    before = run_ids(teacher, validate)

    r = alice.post_json("/runs", LINEAR_SMALL)
    over_limit(r, validate, "/runs", "runs_per_user_limit", "--max-runs-per-user", "30")
    assert "alice" in r.json()["error"]["message"]
    assert run_ids(teacher, validate) == before   # nothing was created

    # each user has a limit of their own; admins have none
    bob.create_run(LINEAR_SMALL)
    for _ in range(4):
        teacher.create_run(LINEAR_SMALL)

    # a cancelled run no longer counts
    alice.cancel(queued[1]["id"])
    alice.wait_for_run(queued[1]["id"], "cancelled")
    alice.create_run(LINEAR_SMALL)
    r = alice.post_json("/runs", LINEAR_SMALL)
    over_limit(r, validate, "/runs", "runs_per_user_limit", "--max-runs-per-user", "30")
    # resuming queues a run again: refused too, and the run stays as it was
    r = alice.post(f"/runs/{queued[1]['id']}/resume")
    expect_error(r, "/runs/{id}/resume", "post", 429, "runs_per_user_limit")
    assert alice.run(queued[1]["id"])["status"] == "cancelled"
    alice.cancel(first["id"])


def test_runs_per_user_limit_holds_under_a_burst(users, validate):
    """One user fires many more POST /runs at once than the limit allows:
    the limit is counted in the insert's transaction (SQLite's write lock,
    PostgreSQL's advisory lock on the owner), so exactly `limit` are
    accepted and every other is 429, not k - 1 past the limit."""
    limit, burst = 3, 24
    # as many request threads as the burst, so that the requests meet
    srv, u = users(["--max-runs-per-user", str(limit),
                    "--http-threads", str(burst)])
    teacher = u["teacher"]
    token = u["alice"].http.headers["Authorization"]
    barrier = threading.Barrier(burst)
    responses = [None] * burst

    def fire(i):
        c = Client(srv.client.base)   # a session (connection) of its own
        c.http.headers["Authorization"] = token
        barrier.wait(timeout=60 * time_scale())
        responses[i] = c.post_json("/runs", LONG_RUN)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in responses if r is not None and r.status_code == 202]
    refused = [r for r in responses if r is not None and r.status_code == 429]
    assert len(accepted) == limit, [r.status_code for r in responses if r is not None]
    assert len(refused) == burst - limit
    for r in accepted:
        validate(r, "/runs", "post", 202)
    for r in refused:
        over_limit(r, validate, "/runs", "runs_per_user_limit",
                   "--max-runs-per-user", "30")
    ids = sorted(r.json()["id"] for r in accepted)
    assert run_ids(teacher, validate) == ids   # nothing else was created
    for i in ids:
        u["alice"].cancel(i)


def test_upload_bytes_per_user_limit(users, validate):
    # 2 examples are 2 * (784 + 1) = 1570 bytes as stored, 3 are 2355
    srv, u = users(["--max-upload-bytes-per-user", "2000"])
    alice, bob, teacher = u["alice"], u["bob"], u["teacher"]
    validate(upload(alice, "two", 2), "/datasets", "post", 201)
    r = upload(alice, "one", 1)
    over_limit(r, validate, "/datasets", "upload_bytes_per_user_limit",
               "--max-upload-bytes-per-user", "3600")
    assert "1570" in r.json()["error"]["message"]
    r = teacher.get("/datasets/one")
    validate(r, "/datasets/{name}", "get", 404)   # nothing was stored
    validate(upload(bob, "bobs", 2), "/datasets", "post", 201)
    validate(upload(teacher, "big", 3), "/datasets", "post", 201)
    # deleting frees the room
    validate(alice.delete("/datasets/two"), "/datasets/{name}", "delete", 204)
    validate(upload(alice, "one", 1), "/datasets", "post", 201)


def test_sweep_trials_per_user_limit(users, validate):
    srv, u = users(["--max-sweep-trials-per-user", "5"])
    alice, teacher = u["alice"], u["teacher"]
    body = {"base": LONG_RUN, "space": {"learning_rate": {"min": 0.01, "max": 0.1}},
            "algorithm": "random", "trials": 4, "parallel": 1, "seed": 1}
    first = validate(alice.post_json("/sweeps", body), "/sweeps", "post", 202)
    r = alice.post_json("/sweeps", {**body, "trials": 2})
    over_limit(r, validate, "/sweeps", "sweep_trials_per_user_limit",
               "--max-sweep-trials-per-user", "60")
    listed = validate(teacher.get("/sweeps"), "/sweeps", "get", 200)["sweeps"]
    assert [s["id"] for s in listed] == [first["id"]]   # nothing was created
    validate(alice.post_json("/sweeps", {**body, "trials": 1}), "/sweeps", "post", 202)
    validate(teacher.post_json("/sweeps", {**body, "trials": 6}), "/sweeps", "post", 202)
    # a cancelled sweep no longer counts
    validate(alice.post(f"/sweeps/{first['id']}/cancel"), "/sweeps/{id}/cancel", "post", 202)
    validate(alice.post_json("/sweeps", body), "/sweeps", "post", 202)
    for s in validate(teacher.get("/sweeps"), "/sweeps", "get", 200)["sweeps"]:
        if s["status"] == "running":
            teacher.post(f"/sweeps/{s['id']}/cancel")


def test_no_users_no_limits(start_server, validate):
    srv = start_server(args=["--max-runs-per-user", "1"], workers=1)
    c = srv.client
    runs = [c.create_run(LONG_RUN) for _ in range(3)]
    for run in runs:
        c.cancel(run["id"])


def test_fair_share_one_run_goes_before_another_users_twenty(users, validate):
    """One worker. alice's first run holds it while she queues 19 more and
    bob queues 1; when alice's first ends, bob's is the next to start."""
    srv, u = users(["--max-runs-per-user", "0"])
    alice, bob, teacher = u["alice"], u["bob"], u["teacher"]
    first = alice.create_run(LONG_RUN)
    alice.wait_for_run(first["id"], "running")
    hers = [alice.create_run(LINEAR_SMALL)["id"] for _ in range(19)]
    his = bob.create_run(LINEAR_SMALL)["id"]
    alice.cancel(first["id"])
    run = bob.wait_for_run(his, ("running", "succeeded"), timeout=60)
    started = {r["id"]: r["started_at"] for r in
               validate(teacher.get("/runs?limit=100"), "/runs", "get", 200)["runs"]}
    # each of alice's 19 is still queued, or started after bob's
    assert all(started[i] is None or started[i] > run["started_at"] for i in hers), \
        (run["started_at"], {i: started[i] for i in hers})
    # and then her runs continue, oldest first
    alice.wait_for_run(hers[0], ("running", "succeeded"), timeout=60)
