"""DELETE /datasets/<name>: the lifecycle of an uploaded dataset (delete,
reuse of the name, what finished runs keep), the memory a deleted dataset
gives back, and the races of a delete with a run request or an upload of
the same name."""
import os
import threading

import pytest
import requests

from conftest import expect_error

SHORT = {"model": "linear", "steps": 30, "periods": 1, "seed": 2}


def upload(client, name, csv):
    return client.post("/datasets", params={"name": name}, data=csv,
                       headers={"Content-Type": "text/csv"})


@pytest.fixture(scope="module")
def csv200(mnist):
    return mnist.csv("train", 200, start=2000).encode()


def test_delete_and_reuse_the_name(client, validate, mnist, csv200):
    validate(upload(client, "gone1", csv200), "/datasets", "post", 201)
    run = client.train(dict(SHORT, dataset="gone1"))

    r = client.delete("/datasets/gone1")
    assert r.status_code == 204 and r.content == b""
    expect_error(client.get("/datasets/gone1"), "/datasets/{name}", "get",
                 404, "not_found", "gone1")
    names = [d["name"] for d in client.get("/datasets").json()["datasets"]]
    assert "gone1" not in names
    expect_error(client.get("/datasets/gone1/examples/0"),
                 "/datasets/{name}/examples/{index}", "get", 404, "not_found")
    expect_error(client.delete("/datasets/gone1"), "/datasets/{name}",
                 "delete", 404, "not_found", "gone1")
    expect_error(client.post_json("/runs", dict(SHORT, dataset="gone1")),
                 "/runs", "post", 400, "bad_field", "gone1")

    # the finished run keeps everything
    rid = run["id"]
    got = validate(client.get(f"/runs/{rid}"), "/runs/{id}", "get", 200)
    assert got["status"] == "succeeded" and got["dataset"] == "gone1"
    validate(client.get(f"/runs/{rid}/confusion"), "/runs/{id}/confusion", "get", 200)
    validate(client.get(f"/runs/{rid}/weights"), "/runs/{id}/weights", "get", 200)
    assert client.get(f"/runs/{rid}/weights.png").status_code == 200
    assert client.get(f"/runs/{rid}/loss.png").status_code == 200
    imgs, _ = mnist.images("test", 3)
    p = validate(client.post_json("/predict", {"run": rid, "pixels": [mnist.scaled(i) for i in imgs]}),
                 "/predict", "post", 200)
    assert len(p["predictions"]) == 3
    e = validate(client.post_json(f"/runs/{rid}/evaluate", {}), "/runs/{id}/evaluate", "post", 200)
    assert e["dataset"] == "mnist-test" and e["examples"] == 10000
    expect_error(client.post_json(f"/runs/{rid}/evaluate", {"dataset": "gone1"}),
                 "/runs/{id}/evaluate", "post", 400, "bad_field", "gone1")

    # the name is free again, for other data
    d = validate(upload(client, "gone1", mnist.csv("train", 50, start=5000).encode()),
                 "/datasets", "post", 201)
    assert d["examples"] == 50
    assert client.get("/datasets/gone1").json()["examples"] == 50
    run2 = client.train(dict(SHORT, dataset="gone1"))
    assert run2["params"]["examples"] == 50
    assert client.delete("/datasets/gone1").status_code == 204


def test_delete_builtin_unknown_and_bad_names(client):
    for name in ("mnist", "mnist-test"):
        expect_error(client.delete(f"/datasets/{name}"), "/datasets/{name}",
                     "delete", 409, "dataset_builtin", name)
        assert client.get(f"/datasets/{name}").status_code == 200
    expect_error(client.delete("/datasets/never-uploaded"), "/datasets/{name}",
                 "delete", 404, "not_found", "never-uploaded")
    expect_error(client.delete("/datasets/Bad.Name"), "/datasets/{name}",
                 "delete", 404, "not_found")


def test_delete_while_a_run_uses_it_is_409(client, validate, csv200):
    validate(upload(client, "busy1", csv200), "/datasets", "post", 201)
    run = client.create_run({"model": "linear", "dataset": "busy1",
                             "steps": 1000000, "periods": 10, "seed": 1})
    r = client.delete("/datasets/busy1")
    expect_error(r, "/datasets/{name}", "delete", 409, "dataset_in_use",
                 "busy1", str(run["id"]))
    assert client.get("/datasets/busy1").status_code == 200
    client.cancel(run["id"])
    client.wait_for_run(run["id"], "cancelled", timeout=60)
    assert client.delete("/datasets/busy1").status_code == 204


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(os.environ.get("MNISTD_SANITIZED") == "1",
                    reason="ASan keeps freed memory in quarantine: resident "
                           "memory measures the sanitizer, not the registry")
def test_delete_and_reupload_keeps_memory_flat(start_server, mnist):
    """30 rounds of upload, use (GET, an example, a short run) and delete of
    a 3000-row dataset (3000 x 784 bytes = 2.3 MB of pixels, malloc'd by
    mmap and so returned to the system when freed). A registry that kept
    deleted datasets would grow by 2.3 MB a round, 55 MB over the 24 rounds
    measured; the margin of 8 MB (3.5 datasets) allows for what glibc
    malloc and SQLite's page caches keep (both bounded)."""
    srv = start_server(workers=1)
    c = srv.client
    csv = mnist.csv("train", 3000).encode()

    def round_trip(i):
        r = upload(c, "mem", csv)
        assert r.status_code == 201, r.text
        assert c.get("/datasets/mem").json()["examples"] == 3000
        assert c.get(f"/datasets/mem/examples/{i}").status_code == 200
        if i % 3 == 0:
            c.train(dict(SHORT, dataset="mem", examples=300,
                         validation_examples=100))
        r = c.delete("/datasets/mem")
        assert r.status_code == 204, r.text

    for i in range(6):                  # warm-up: caches and arenas fill
        round_trip(i)
    before = _rss_kib(srv.proc.pid)
    for i in range(6, 30):
        round_trip(i)
    after = _rss_kib(srv.proc.pid)
    assert after - before < 8 * 1024, (before, after)


def _together(*calls):
    """Runs the calls at the same moment (one thread each, past a barrier);
    returns their results in order."""
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)
    errors = []

    def go(i, fn):
        try:
            with requests.Session() as s:
                barrier.wait()
                out[i] = fn(s)
        except Exception as e:          # reported below, not lost in a thread
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return out


def test_run_request_racing_a_delete(client, validate, csv200):
    """Either the run is created (and the delete is 409, or 204 only once the
    run has ended) and the run succeeds, or the delete wins and the run is
    refused with 400, leaving no run on the dataset."""
    seen = set()
    for trial in range(24):
        name = f"race-run{trial}"
        validate(upload(client, name, csv200), "/datasets", "post", 201)
        if trial % 2:       # half of the time the registry already holds it
            assert client.get(f"/datasets/{name}").status_code == 200
        spec = dict(SHORT, dataset=name, examples=150, validation_examples=50)
        created, deleted = _together(
            lambda s: s.post(client.url("/runs"), json=spec, timeout=60),
            lambda s: s.delete(client.url(f"/datasets/{name}"), timeout=60))
        if created.status_code == 202:
            run = created.json()
            if deleted.status_code == 409:
                assert deleted.json()["error"]["code"] == "dataset_in_use"
                assert str(run["id"]) in deleted.json()["error"]["message"]
            else:
                assert deleted.status_code == 204, deleted.text
            done = client.wait_for_run(run["id"], "succeeded", timeout=120)
            assert done["dataset"] == name
            if deleted.status_code == 409:
                assert client.delete(f"/datasets/{name}").status_code == 204
            seen.add("run first")
        else:
            assert (created.status_code, deleted.status_code) == (400, 204), \
                (created.text, deleted.text)
            assert created.json()["error"]["code"] == "bad_field"
            seen.add("delete first")
        runs = client.get("/runs", params={"limit": 50}).json()["runs"]
        on_it = [r for r in runs if r["dataset"] == name]
        assert len(on_it) == (1 if created.status_code == 202 else 0)
    print("outcomes seen:", sorted(seen))


def test_upload_racing_a_delete_of_the_same_name(client, mnist):
    """An upload of 60 rows and a delete of the same name at once, the name
    holding (odd trials, 40 rows, loaded in the registry) or not holding a
    dataset before. Afterwards GET /datasets/<name>, the list, and training
    agree with what the two replies said happened."""
    old = mnist.csv("train", 40, start=100).encode()
    new = mnist.csv("train", 60, start=200).encode()
    for trial in range(24):
        name = f"race-up{trial}"
        existed = trial % 2 == 1
        if existed:
            assert upload(client, name, old).status_code == 201
            assert client.get(f"/datasets/{name}").json()["examples"] == 40
        up, dl = _together(
            lambda s: s.post(client.url("/datasets"), params={"name": name}, data=new,
                             headers={"Content-Type": "text/csv"}, timeout=60),
            lambda s: s.delete(client.url(f"/datasets/{name}"), timeout=60))
        assert up.status_code in (201, 409), up.text
        assert dl.status_code in (204, 404), dl.text
        if existed:
            assert dl.status_code == 204
            # the upload stored its rows iff it found the name free
            expect = 60 if up.status_code == 201 else None
        else:
            assert up.status_code == 201
            # the delete removed the new rows iff it came after them
            expect = None if dl.status_code == 204 else 60
        got = client.get(f"/datasets/{name}")
        listed = {d["name"]: d["examples"]
                  for d in client.get("/datasets").json()["datasets"]}
        if expect is None:
            assert got.status_code == 404, got.text
            assert name not in listed
            r = client.post_json("/runs", dict(SHORT, dataset=name))
            assert r.status_code == 400, r.text
        else:
            assert got.status_code == 200 and got.json()["examples"] == expect
            assert listed.get(name) == expect
            run = client.train(dict(SHORT, dataset=name, examples=45,
                                    validation_examples=15))
            assert run["params"]["examples"] == 45
            assert client.delete(f"/datasets/{name}").status_code == 204
