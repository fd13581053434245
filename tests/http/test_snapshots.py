"""Weight snapshots: the first layer's weights at up to 100 period ends of a
run, 32 MiB of them at most (engine/wsnap.h), served by GET
/runs/<id>/snapshots and ?period=k of /weights and weights.png.

- period k's snapshot equals the weights of the checkpoint taken at period
  k (a server with a checkpoint at every period end, read from its
  database after a crash) within the quantisation bound, max|w_unit| / 254;
- a run resumed after a crash, or cancelled and resumed, keeps the very
  snapshots of a run that never stopped;
- 1000 periods keep exactly 100 snapshots (every tenth) and the store
  stays bounded; a 4096-wide first layer keeps 10 (32 MiB at most), evenly
  spaced with the last;
- on either backend (MNISTD_TEST_BACKEND): the tests that read under the
  store query SQLite's file or the test's PostgreSQL schema (db_rows);
- bad `period` is 400, a period without a snapshot 404 naming the nearest
  ones; every reply is validated against openapi.yaml."""
import sqlite3
import struct

import pytest

from conftest import backend, expect_error, pg_sql, pg_target

# 100 periods of 100 steps: every period keeps a snapshot; about 5 s
DNN_100 = {"model": "dnn", "hidden_units": [16], "steps": 10000, "periods": 100, "seed": 3}
# 1000 periods of one step on a small split: every tenth keeps one
LINEAR_1000 = {"model": "linear", "steps": 1000, "periods": 1000, "seed": 3,
               "examples": 1000, "validation_examples": 200}
EVERY_PERIOD = ("--checkpoint-interval", "0")
# a 4096-wide first layer: snapshots of 3,244,056 bytes, 10 fit in 32 MiB;
# a tiny split and SGD keep the training and its checkpoints cheap
WIDE_20 = {"model": "dnn", "hidden_units": [4096], "optimizer": "sgd", "steps": 20,
           "periods": 20, "batch_size": 10, "seed": 5, "examples": 40,
           "validation_examples": 10}
WIDE_BYTES = 24 + 4096 * (8 + 784)
MAX_BYTES = 32 << 20


def db_rows(db, sql, *args):
    """Rows of sql (? placeholders, integer args) on the test's database:
    SQLite's file, or on PostgreSQL the schema of that path; bytea and BLOB
    values come back as bytes, integers as int."""
    if backend() != "postgresql":
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in con.execute(sql, args)]
        finally:
            con.close()
    for a in args:
        sql = sql.replace("?", str(int(a)), 1)
    out = pg_sql(sql, uri=pg_target(str(db)))

    def value(v):
        if v.startswith("\\x"):
            return bytes.fromhex(v[2:])
        return int(v) if v.lstrip("-").isdigit() else v
    return [tuple(value(v) for v in line.split("|")) for line in out.splitlines() if line]


def bound(values):
    """The documented worst-case error of a tile's weights: half a step."""
    return max(abs(v) for v in values) / 254 * (1 + 1e-5) + 1e-12


def wsnap_decode(blob):
    """engine/wsnap.h's encoded form -> (units, inputs, [[w]] per unit, biases)."""
    assert blob[:4] == b"MNWS"
    version, units, inputs, th, tw = struct.unpack_from("<5I", blob, 4)
    assert version == 1 and inputs % (th * tw) == 0
    scales = struct.unpack_from(f"<{units}f", blob, 24)
    biases = struct.unpack_from(f"<{units}f", blob, 24 + 4 * units)
    q = struct.unpack_from(f"<{units * inputs}b", blob, 24 + 8 * units)
    assert len(blob) == 24 + units * (8 + inputs)
    w = [[q[u * inputs + i] * scales[u] for i in range(inputs)] for u in range(units)]
    return units, inputs, w, list(biases)


def ckpt_first_layer(blob):
    """The first dense layer of an mlp checkpoint (engine/ckpt.h, version 2):
    ([[w]] per unit, biases). W_0 is [n_in, units] row-major, then b_0."""
    assert blob[:4] == b"MNCK"
    version, kind, n_in, n_out = struct.unpack_from("<4I", blob, 4)
    assert version == 2 and kind == 1
    n_params, = struct.unpack_from("<Q", blob, 80)
    n_layers, = struct.unpack_from("<I", blob, 96)
    units = n_out
    if n_layers:
        _, units, _, _ = struct.unpack_from("<4I", blob, 100)
    off = 100 + 16 * n_layers
    params = struct.unpack_from(f"<{n_params}f", blob, off)
    w = [[params[i * units + u] for i in range(n_in)] for u in range(units)]
    b = list(params[n_in * units:n_in * units + units])
    return w, b


def weights_at(c, validate, rid, period=None):
    params = {"layer": 0}
    if period is not None:
        params["period"] = period
    return validate(c.get(f"/runs/{rid}/weights", params=params), "/runs/{id}/weights", "get", 200)


def snapshots(c, validate, rid):
    return validate(c.get(f"/runs/{rid}/snapshots"), "/runs/{id}/snapshots", "get", 200)


def all_weights(c, validate, rid):
    return {s["period"]: weights_at(c, validate, rid, s["period"])
            for s in snapshots(c, validate, rid)["snapshots"]}


def assert_within(snap, exact):
    """A snapshot's values are the exact weights within the bound; biases exact."""
    assert snap["shape"] == exact["shape"]
    for u, (got, want) in enumerate(zip(snap["values"], exact["values"])):
        b = bound(want)
        worst = max(abs(g - w) for g, w in zip(got, want))
        assert worst <= b, f"unit {u}: off by {worst} > {b}"
    assert snap["biases"] == pytest.approx(exact["biases"], rel=1e-6, abs=1e-7)


def test_snapshot_equals_the_checkpoint_of_its_period_and_survives_crash_and_cancel(
        start_server, validate, tmp_path):
    db = tmp_path / "snap.db"
    a = start_server(db=db, name="crashing", args=EVERY_PERIOD, workers=1)
    c = a.client
    rid = c.create_run(DNN_100)["id"]
    c.wait_for_run(rid, ("running", "succeeded"), timeout=60,
                   until=lambda r: len(r["periods"]) >= 3)
    a.kill()

    # the database as the crash left it: the latest checkpoint is the last
    # stored period's, and every stored period has its snapshot
    (step, ck), = db_rows(db, "SELECT step, data FROM checkpoints WHERE run_id = ? AND kind = 'latest'",
                          int(rid))
    periods = [p for p, in db_rows(db, "SELECT period FROM periods WHERE run_id = ? ORDER BY period",
                                   int(rid))]
    snaps = {p: (s, d) for p, s, d in db_rows(
        db, "SELECT period, step, data FROM weight_snapshots WHERE run_id = ?", int(rid))}
    assert sorted(snaps) == periods and len(periods) >= 3
    k = step // 100
    assert periods[-1] == k and snaps[k][0] == step
    w, b = ckpt_first_layer(ck)
    units, inputs, sw, sb = wsnap_decode(snaps[k][1])
    assert (units, inputs) == (16, 784)
    for u in range(units):
        worst = max(abs(x - y) for x, y in zip(sw[u], w[u]))
        assert worst <= bound(w[u]), f"period {k} unit {u}: off by {worst}"
    assert sb == b     # biases are kept as they are
    stored_before = {p: snaps[p][1] for p in periods}

    # the run resumes and ends; an uninterrupted twin and a cancelled and
    # resumed one keep the very same snapshots
    b2 = start_server(db=db, name="recovered", args=EVERY_PERIOD, workers=2)
    c = b2.client
    twin = c.create_run(DNN_100)["id"]
    c.wait_for_run(rid, "succeeded", timeout=120)
    c.wait_for_run(twin, "succeeded", timeout=120)
    cancelled = c.create_run(DNN_100)["id"]
    c.wait_for_run(cancelled, ("running",), timeout=60, until=lambda r: len(r["periods"]) >= 2)
    c.cancel(cancelled)
    c.wait_for_run(cancelled, "cancelled", timeout=30)
    validate(c.post(f"/runs/{cancelled}/resume"), "/runs/{id}/resume", "post", 202)
    c.wait_for_run(cancelled, "succeeded", timeout=120)

    ref = all_weights(c, validate, twin)
    assert sorted(ref) == list(range(1, 101))
    assert all_weights(c, validate, rid) == ref
    assert all_weights(c, validate, cancelled) == ref
    for p, blob in stored_before.items():   # the redone periods were not changed
        (got,), = db_rows(db, "SELECT data FROM weight_snapshots WHERE run_id = ? AND period = ?",
                          int(rid), p)
        assert got == blob, f"period {p}"

    # the last period's snapshot is the succeeded run's final weights
    final = weights_at(c, validate, rid)
    last = ref[100]
    assert last["period"] == 100 and last["step"] == 10000
    assert_within(last, final)
    # and the weights moved between the first and the last period
    assert ref[1]["values"] != last["values"]


@pytest.mark.parametrize("spec", [
    {"model": "linear", "steps": 30, "periods": 3, "seed": 11},
    {"model": "cnn", "conv_layers": [{"filters": 4, "kernel": 3, "pool": 2}], "hidden_units": [8],
     "steps": 30, "periods": 3, "seed": 11, "examples": 600, "validation_examples": 100},
])
def test_prefix_run_weights_equal_the_snapshot_of_that_period(client, validate, spec):
    """A run of k periods trains the same steps as the first k periods of a
    longer run with the same seed: its final weights (its last checkpoint)
    are the longer run's snapshot of period k, within the bound."""
    whole = client.train(spec)
    for k in (1, 2):
        part = client.train({**spec, "steps": spec["steps"] * k // spec["periods"], "periods": k})
        snap = weights_at(client, validate, whole["id"], k)
        assert snap["period"] == k and snap["step"] == 10 * k
        assert_within(snap, weights_at(client, validate, part["id"]))
    assert_within(weights_at(client, validate, whole["id"], 3), weights_at(client, validate, whole["id"]))
    # the picture of a snapshot has the tiles of the final one (28x28 or the kernel's)
    sizes = []
    for params in ({}, {"period": 3}, {"period": 1}):
        r = client.get(f"/runs/{whole['id']}/weights.png", params=params)
        validate(r, "/runs/{id}/weights.png", "get", 200)
        assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
        sizes.append((struct.unpack(">II", r.content[16:24]), r.content))
    assert sizes[0][0] == sizes[1][0] == sizes[2][0]
    assert sizes[1][1] != sizes[2][1]


def test_1000_periods_keep_100_snapshots_and_the_store_stays_bounded(start_server, validate, tmp_path):
    db = tmp_path / "many.db"
    s = start_server(db=db, name="many", workers=1)
    c = s.client
    rid = c.train(LINEAR_1000, timeout=300)["id"]
    got = snapshots(c, validate, rid)
    assert got["max"] == 100 and got["layer"] == 0 and got["run"] == rid
    assert got["max_bytes"] == MAX_BYTES
    assert [x["period"] for x in got["snapshots"]] == list(range(10, 1001, 10))
    assert [x["step"] for x in got["snapshots"]] == list(range(10, 1001, 10))
    assert all(x["bytes"] == 24 + 10 * (8 + 784) for x in got["snapshots"])
    # a period between two kept ones: 404 naming both
    r = c.get(f"/runs/{rid}/weights", params={"period": 15})
    expect_error(r, "/runs/{id}/weights", "get", 404, "no_snapshot", "period 15", "10 and 20")
    r = c.get(f"/runs/{rid}/weights.png", params={"period": 5})
    expect_error(r, "/runs/{id}/weights.png", "get", 404, "no_snapshot", "period 5",
                 "nearest period with one is 10")
    s.stop()
    # snapshots: 100 x 7,944 bytes; 1000 would be 7.9 MB
    (kept, total), = db_rows(db, "SELECT count(*), sum(length(data)) FROM weight_snapshots")
    assert kept == 100 and total == 100 * 7944
    if backend() == "sqlite":
        (pages,), = db_rows(db, "PRAGMA page_count")
        (size,), = db_rows(db, "PRAGMA page_size")
        assert pages * size < 2_500_000, f"{pages * size} bytes"


def test_large_snapshots_keep_fewer_within_32_mib(start_server, validate, tmp_path):
    """A 4096-wide first layer's snapshot is 3.2 MB: 20 periods keep 10 of
    them (every second, the last among them), 32 MiB at most, where the
    count bound alone would keep 20 (65 MB)."""
    db = tmp_path / "wide.db"
    s = start_server(db=db, name="wide", workers=1)
    c = s.client
    rid = c.train(WIDE_20, timeout=300)["id"]
    got = snapshots(c, validate, rid)
    assert got["max"] == 100 and got["max_bytes"] == MAX_BYTES
    assert [x["period"] for x in got["snapshots"]] == list(range(2, 21, 2))
    assert all(x["bytes"] == WIDE_BYTES for x in got["snapshots"])
    assert sum(x["bytes"] for x in got["snapshots"]) <= MAX_BYTES
    r = c.get(f"/runs/{rid}/weights", params={"period": 3})
    expect_error(r, "/runs/{id}/weights", "get", 404, "no_snapshot", "period 3", "2 and 4")
    s.stop()
    (kept, total), = db_rows(db, "SELECT count(*), sum(length(data)) FROM weight_snapshots")
    assert kept == 10 and total == 10 * WIDE_BYTES


def test_snapshots_of_a_running_run_and_their_pictures(client, validate):
    """Snapshots appear as periods end, before the run has succeeded (when
    /weights without period is still 409), and their pictures differ."""
    rid = client.create_run({"model": "linear", "steps": 1000000, "periods": 1000, "seed": 4})["id"]
    client.wait_for_run(rid, "running", timeout=60, until=lambda r: len(r["periods"]) >= 20)
    r = client.get(f"/runs/{rid}/weights")
    expect_error(r, "/runs/{id}/weights", "get", 409, "run_not_succeeded")
    listed = snapshots(client, validate, rid)["snapshots"]
    assert [x["period"] for x in listed][:2] == [10, 20]
    w = weights_at(client, validate, rid, 10)
    assert w["shape"] == [10, 784] and w["step"] == 10000
    pics = []
    for k in (10, 20):
        r = client.get(f"/runs/{rid}/weights.png", params={"period": k, "scale": 1})
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
        validate(r, "/runs/{id}/weights.png", "get", 200)
        pics.append(r.content)
    assert pics[0] != pics[1]
    client.cancel(rid)
    client.wait_for_run(rid, "cancelled", timeout=30)
    # a cancelled run keeps its snapshots
    after = snapshots(client, validate, rid)["snapshots"]
    assert after[:len(listed)] == listed
    assert weights_at(client, validate, rid, 10) == w


@pytest.mark.parametrize("path", ["/runs/{id}/weights", "/runs/{id}/weights.png"])
@pytest.mark.parametrize("query,status,code,words", [
    ({"period": "0"}, 400, "bad_query", ["period", "1..1000"]),
    ({"period": "1001"}, 400, "bad_query", ["period", "1..1000"]),
    ({"period": "-1"}, 400, "bad_query", ["period"]),
    ({"period": "two"}, 400, "bad_query", ["period"]),
    ({"period": ""}, 400, "bad_query", ["period"]),
    ({"period": "3"}, 400, "bad_query", ["period", "1..2 for this run"]),
    ({"period": "1", "layer": "1"}, 400, "bad_query", ["period", "layer 0 only"]),
])
def test_bad_period_is_400(client, trained, path, query, status, code, words):
    rid = trained["dnn"]["id"]   # 2 periods
    r = client.get(path.replace("{id}", rid), params=query)
    expect_error(r, path, "get", status, code, *words)


def test_no_snapshot_yet_and_unknown_run(client, validate, cancelled_run):
    rid = cancelled_run["id"]
    assert snapshots(client, validate, rid)["snapshots"] == []
    r = client.get(f"/runs/{rid}/weights", params={"period": 1})
    expect_error(r, "/runs/{id}/weights", "get", 404, "no_snapshot", "none yet")
    r = client.get("/runs/999999/snapshots")
    expect_error(r, "/runs/{id}/snapshots", "get", 404, "not_found")
    r = client.get("/runs/999999/weights", params={"period": 1})
    expect_error(r, "/runs/{id}/weights", "get", 404, "not_found")
