"""The PostgreSQL backend (MNISTD_TEST_BACKEND=postgresql, on the session's
throwaway server; skipped on SQLite): start-up errors (bad URI, unreachable
server, wrong password, missing database: one line, exit 2, no hang),
several processes starting at once on an empty database, and the database
going away while a run trains and requests are served (503
store_unavailable during the outage, 2xx after, and the run ends with the
numbers of an undisturbed one)."""
import os
import subprocess
import threading
import time

import pytest

from conftest import (REPO, expect_error, pg_ctl, pg_server, pg_sql, pg_target,
                      require_bin, time_scale, Server)

pytestmark = pytest.mark.postgresql_only

PERIOD_METRICS = ("period", "step", "train_log_loss", "validation_log_loss",
                  "validation_accuracy")


def serve(db, tmp_path, timeout=60):
    """Runs `mnistd serve --db db` expecting it to fail at start-up."""
    return subprocess.run([str(require_bin()), "serve", "--port", "0", "--db", db,
                           "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=timeout * time_scale())


def _start_up_error(out, words):
    assert out.returncode == 2, out
    assert words in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("mnistd serve: "), out.stderr


def test_a_wrong_password_is_a_clear_start_up_error(tmp_path):
    _, d = pg_server()
    out = serve(f"postgresql://mnistd_pw:wrong@/mnistd?host={d}", tmp_path)
    _start_up_error(out, "password authentication failed")
    assert "wrong" not in out.stderr, "the password must not be printed"
    # the right one starts (in a schema of its own, which it may use)
    pg_sql("SET client_min_messages = warning;"
           " CREATE SCHEMA IF NOT EXISTS pw AUTHORIZATION mnistd_pw")
    db = f"postgresql://mnistd_pw:right@/mnistd?host={d}&options=-csearch_path%3Dpw"
    ok = subprocess.Popen([str(require_bin()), "serve", "--port", "0", "--db", db,
                           "--data-dir", str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ok.stdout.readline()
        assert line.startswith("listening on port"), ok.stderr.read()
    finally:
        ok.terminate()
        ok.wait(timeout=30 * time_scale())


def test_a_missing_database_is_a_clear_start_up_error(tmp_path):
    _, d = pg_server()
    out = serve(f"postgresql:///no_such_db?host={d}&user=postgres", tmp_path)
    _start_up_error(out, "no_such_db")
    assert "does not exist" in out.stderr, out.stderr


@pytest.mark.parametrize("uri, words", [
    ("postgresql://[::1/mnistd", "bad PostgreSQL URI"),
    ("postgresql:///mnistd?nosuchoption=1", "bad PostgreSQL URI"),
    ("postgresql:///mnistd?host=/nonexistent-socket-dir", "cannot connect"),
])
def test_bad_uris_and_unreachable_servers_exit_2_with_one_line(tmp_path, uri, words):
    _start_up_error(serve(uri, tmp_path), words)


def test_an_unroutable_server_times_out_instead_of_hanging(tmp_path):
    # a TEST-NET-1 address (RFC 5737): never answers; connect_timeout ends it
    out = serve("postgresql://192.0.2.1:5432/mnistd?connect_timeout=2", tmp_path,
                timeout=120)
    _start_up_error(out, "cannot connect")


def test_three_processes_start_at_once_on_an_empty_database(tmp_path, data_dir):
    db = pg_target(tmp_path / "three")
    servers = [Server(tmp_path / f"n{i}", db=tmp_path / "three") for i in range(3)]
    errors = []

    def start(s):
        try:
            s.start()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors, errors
        assert all(s.alive() for s in servers)
        # migrated once: one row per migration file, every table there
        files = list((REPO / "migrations" / "postgresql").glob("[0-9]*.sql"))
        n = pg_sql("SELECT count(*) FROM schema_migrations", uri=db)
        assert int(n) == len(files) >= 4, (n, files)
        # every node serves the one database
        run = servers[0].client.create_run({"model": "linear", "steps": 20, "periods": 1,
                                            "seed": 3})
        for s in servers:
            r = s.client.get(f"/runs/{run['id']}")
            assert r.status_code == 200, r.text
    finally:
        for s in servers:
            if s.alive():
                s.stop()


RECIPE = {"model": "dnn", "hidden_units": [32], "steps": 3000, "periods": 10,
          "seed": 7}


def test_database_outage_503_then_2xx_and_the_run_ends_with_the_same_numbers(
        start_server, validate, tmp_path):
    srv = start_server(db=tmp_path / "outage", args=("--checkpoint-interval", "0"))
    c = srv.client
    run = c.create_run(RECIPE)
    rid = run["id"]
    # wait until it trains
    deadline = time.monotonic() + 60 * time_scale()
    while time.monotonic() < deadline:
        if c.get(f"/runs/{rid}").json()["progress"]["period"] >= 1:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the run never reached its first period")

    seen = {"503": 0, "other": []}
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            try:
                r = c.get(f"/runs/{rid}")
            except Exception as e:  # noqa: BLE001 - a connection error is a failure
                seen["other"].append(repr(e))
                continue
            if r.status_code == 503:
                body = validate(r, "/runs/{id}", "get", 503)
                assert body["error"]["code"] == "store_unavailable", body
                assert r.headers.get("Retry-After"), r.headers
                seen["503"] += 1
            elif r.status_code != 200:
                seen["other"].append((r.status_code, r.text))
            time.sleep(0.02)

    pg_ctl("stop")
    try:
        # while the database is down: requests get 503 store_unavailable
        t = threading.Thread(target=poll)
        t.start()
        down = time.monotonic() + 30 * time_scale()
        while seen["503"] < 3 and time.monotonic() < down:
            time.sleep(0.05)
        r = c.post_json("/runs", RECIPE)
        expect_error(r, "/runs", "post", 503, "store_unavailable")
    finally:
        pg_ctl("start")
    # back: the same requests succeed again
    deadline = time.monotonic() + 30 * time_scale()
    while time.monotonic() < deadline:
        if c.get(f"/runs/{rid}").status_code == 200:
            break
        time.sleep(0.1)
    stop.set()
    t.join()
    assert seen["503"] >= 3, seen
    assert not seen["other"], seen["other"][:5]
    r = c.get(f"/runs/{rid}")
    assert r.status_code == 200, r.text

    done = c.wait_for_run(rid, ("succeeded",), timeout=300)
    # an undisturbed run of the same recipe: the same numbers, period by period
    again = c.train(RECIPE, timeout=300)
    assert len(done["periods"]) == len(again["periods"]) == RECIPE["periods"]
    for a, b in zip(done["periods"], again["periods"]):
        for k in PERIOD_METRICS:
            assert a[k] == b[k], (k, a, b)
    assert done["validation_accuracy"] == again["validation_accuracy"]


def test_pg_ctl_restart_while_serving(start_server, tmp_path):
    """`pg_ctl restart` (fast): every request gets 2xx or 503
    store_unavailable, never another error, and 2xx again after."""
    srv = start_server(db=tmp_path / "restart")
    c = srv.client
    run = c.train({"model": "linear", "steps": 50, "periods": 1, "seed": 2})
    codes = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            r = c.get(f"/runs/{run['id']}")
            codes.append((r.status_code, r.json().get("error", {}).get("code")
                          if r.status_code != 200 else None))
            time.sleep(0.01)

    t = threading.Thread(target=poll)
    t.start()
    try:
        pg_ctl("restart")
        time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    bad = [x for x in codes if x[0] != 200 and x != (503, "store_unavailable")]
    assert not bad, bad[:5]
    assert c.get(f"/runs/{run['id']}").status_code == 200


def test_mnistd_db_names_the_database_and_db_wins(tmp_path):
    env = dict(os.environ, MNISTD_DB="postgresql://[::1/mnistd")
    cmd = [str(require_bin()), "serve", "--port", "0", "--data-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env,
                         timeout=60 * time_scale())
    _start_up_error(out, "bad PostgreSQL URI")
    # --db wins over MNISTD_DB: the same bad URI no longer matters
    out = subprocess.run(cmd + ["--db", "postgresql:///mnistd?host=/nonexistent-socket-dir"],
                         capture_output=True, text=True, env=env, timeout=60 * time_scale())
    _start_up_error(out, "cannot connect")
