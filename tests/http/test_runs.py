"""The /runs resource: create, poll, list, get, confusion, evaluate, weights,
cancel and delete, on their success paths (and the state conflicts that
belong to the lifecycle)."""
import json
import math

from conftest import DNN_SMALL, LINEAR_SMALL, LONG_RUN, expect_error

PERIOD_FIELDS = {"period", "step", "train_log_loss", "validation_log_loss",
                 "validation_accuracy", "seconds"}


def test_create_returns_202_location_and_queued_run(client, validate):
    r = client.post_json("/runs", LINEAR_SMALL)
    run = validate(r, "/runs", "post", 202)
    assert r.headers["Location"] == f"/runs/{run['id']}"
    assert run["status"] in ("queued", "running")
    assert run["model"] == "linear" and run["dataset"] == "mnist"
    assert run["progress"] == {"step": run["progress"]["step"], "steps": 200,
                               "period": run["progress"]["period"], "periods": 2}
    assert run["test_accuracy"] is None and run["error"] is None
    assert run["created_at"] is not None and run["finished_at"] is None
    # the Location serves the same run
    r2 = client.get(r.headers["Location"])
    again = validate(r2, "/runs/{id}", "get", 200)
    assert again["id"] == run["id"] and again["params"] == run["params"]
    client.wait_for_run(run["id"], "succeeded")


def test_params_echo_resolved_defaults_linear(trained):
    p = trained["linear"]["params"]
    assert p == {"model": "linear", "hidden_units": [], "dropout": 0,
                 "optimizer": "adagrad", "learning_rate": 0.03, "clip_norm": 5,
                 "steps": 200, "batch_size": 30, "periods": 2, "dataset": "mnist",
                 "examples": 10000, "validation_examples": 2500, "seed": 1}


def test_params_echo_resolved_defaults_dnn(trained):
    p = trained["dnn"]["params"]
    assert p == {"model": "dnn", "hidden_units": [32], "dropout": 0,
                 "optimizer": "adagrad", "learning_rate": 0.05, "clip_norm": 5,
                 "steps": 200, "batch_size": 30, "periods": 2, "dataset": "mnist",
                 "examples": 10000, "validation_examples": 2500, "seed": 1}


def test_params_echo_every_field_given(client):
    spec = {"model": "dnn", "hidden_units": [16, 8], "dropout": 0.25,
            "optimizer": "adam", "learning_rate": 0.001, "clip_norm": 0,
            "steps": 20, "batch_size": 10, "periods": 2, "dataset": "mnist-test",
            "examples": 500, "validation_examples": 100, "seed": 42}
    run = client.create_run(spec)
    assert run["params"] == spec
    assert run["dataset"] == "mnist-test"
    done = client.wait_for_run(run["id"], "succeeded")
    assert done["params"] == spec
    assert [p["step"] for p in done["periods"]] == [10, 20]


def test_default_dnn_recipe_and_random_seed(client):
    run = client.create_run({"model": "dnn", "steps": 4, "periods": 1})
    p = run["params"]
    assert p["hidden_units"] == [100, 100] and p["learning_rate"] == 0.05
    assert p["steps"] == 4 and p["periods"] == 1 and p["batch_size"] == 30
    assert isinstance(p["seed"], int) and 0 <= p["seed"] < 2 ** 53
    other = client.create_run({"model": "dnn", "steps": 4, "periods": 1})
    assert other["params"]["seed"] != p["seed"], "two random seeds were equal"
    for rid in (run["id"], other["id"]):
        client.wait_for_run(rid, "succeeded")


def test_succeeded_run_has_two_periods(trained):
    for name, run in trained.items():
        assert run["status"] == "succeeded", name
        assert len(run["periods"]) == 2
        for i, per in enumerate(run["periods"], start=1):
            assert set(per) == PERIOD_FIELDS
            assert per["period"] == i and per["step"] == 100 * i
            for key in ("train_log_loss", "validation_log_loss"):
                assert per[key] is not None and 0 < per[key] < 2.5, (name, per)
            assert 0.7 < per["validation_accuracy"] <= 1
            assert per["seconds"] >= 0
        last = run["periods"][-1]
        assert run["validation_accuracy"] == last["validation_accuracy"]
        assert math.isclose(run["validation_log_loss"], last["validation_log_loss"], rel_tol=1e-9)
        assert run["progress"] == {"step": 200, "steps": 200, "period": 2, "periods": 2}
        assert run["started_at"] and run["finished_at"]
        assert run["created_at"] <= run["started_at"] <= run["finished_at"]
        assert run["error"] is None and run["test_accuracy"] is None


def test_log_loss_is_true_mean_log_loss_not_error_rate(trained):
    # the exercise's "log loss" on one-hot predictions is a scaled error
    # rate (~34.5 * error); the true mean log loss on probabilities is
    # far below that and not a multiple of the error rate
    for run in trained.values():
        last = run["periods"][-1]
        err = 1 - last["validation_accuracy"]
        assert last["validation_log_loss"] < 34.5 * err * 0.5
        assert last["validation_log_loss"] > 0.05


def test_list_runs_newest_first_with_filters(client, validate, trained):
    r = client.get("/runs")
    body = validate(r, "/runs", "get", 200)
    assert body["limit"] == 50 and body["offset"] == 0
    ids = [int(x["id"]) for x in body["runs"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    # other tests share the server: the recipes may be past the first page
    body = validate(client.get("/runs", params={"limit": 1000}), "/runs", "get", 200)
    ids = [int(x["id"]) for x in body["runs"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    assert int(trained["linear"]["id"]) in ids and int(trained["dnn"]["id"]) in ids

    body = validate(client.get("/runs", params={"model": "dnn", "limit": 1000}), "/runs",
                    "get", 200)
    assert body["runs"] and all(x["model"] == "dnn" for x in body["runs"])
    assert trained["dnn"]["id"] in [x["id"] for x in body["runs"]]
    assert trained["linear"]["id"] not in [x["id"] for x in body["runs"]]

    body = validate(client.get("/runs", params={"status": "succeeded", "model": "linear"}),
                    "/runs", "get", 200)
    assert body["runs"] and all(x["status"] == "succeeded" and x["model"] == "linear"
                                for x in body["runs"])

    body = validate(client.get("/runs", params={"status": "failed"}), "/runs", "get", 200)
    assert all(x["status"] == "failed" for x in body["runs"])


def test_list_runs_limit_offset(client, validate, trained):
    everything = validate(client.get("/runs", params={"limit": 1000}), "/runs", "get", 200)
    all_ids = [x["id"] for x in everything["runs"]]
    assert len(all_ids) >= 2
    page = validate(client.get("/runs", params={"limit": 1}), "/runs", "get", 200)
    assert page["limit"] == 1 and [x["id"] for x in page["runs"]] == all_ids[:1]
    page = validate(client.get("/runs", params={"limit": 1, "offset": 1}), "/runs", "get", 200)
    assert page["offset"] == 1 and [x["id"] for x in page["runs"]] == all_ids[1:2]
    page = validate(client.get("/runs", params={"offset": len(all_ids)}), "/runs", "get", 200)
    assert page["runs"] == []
    page = validate(client.get("/runs", params={"limit": 2, "offset": 0}), "/runs", "get", 200)
    assert [x["id"] for x in page["runs"]] == all_ids[:2]


def test_confusion_validation(client, validate, trained):
    for run in trained.values():
        r = client.get(f"/runs/{run['id']}/confusion")
        c = validate(r, "/runs/{id}/confusion", "get", 200)
        assert c["set"] == "validation" and c["labels"] == list(range(10))
        total = sum(map(sum, c["counts"]))
        assert total == run["params"]["validation_examples"] == 2500
        for row_n, row_c in zip(c["normalized"], c["counts"]):
            assert sum(row_c) > 0
            assert math.isclose(sum(row_n), 1.0, abs_tol=1e-6)
            for n, k in zip(row_n, row_c):
                assert math.isclose(n, k / sum(row_c), abs_tol=1e-6)
        diag = sum(c["counts"][i][i] for i in range(10))
        assert math.isclose(c["accuracy"], diag / total, abs_tol=1e-9)
        assert math.isclose(c["accuracy"], run["validation_accuracy"], abs_tol=1e-9)
        # explicit ?set=validation is the same
        c2 = validate(client.get(f"/runs/{run['id']}/confusion", params={"set": "validation"}),
                      "/runs/{id}/confusion", "get", 200)
        assert c2 == c


def test_evaluate_on_test_set(client, validate, trained):
    run = trained["dnn"]
    rid = run["id"]
    r = client.get(f"/runs/{rid}/confusion", params={"set": "test"})
    expect_error(r, "/runs/{id}/confusion", "get", 409, "not_evaluated", rid, "evaluate")

    r = client.post_json(f"/runs/{rid}/evaluate", {"dataset": "mnist-test"})
    e = validate(r, "/runs/{id}/evaluate", "post", 200)
    assert e["dataset"] == "mnist-test" and e["examples"] == 10000
    assert 0.8 < e["accuracy"] <= 1 and 0 < e["log_loss"] < 1
    conf = e["confusion"]
    assert conf["set"] == "test" and sum(map(sum, conf["counts"])) == 10000
    assert math.isclose(conf["accuracy"], e["accuracy"], abs_tol=1e-9)

    after = client.run(rid)
    assert math.isclose(after["test_accuracy"], e["accuracy"], abs_tol=1e-9)
    # the rest of the run is unchanged
    assert after["periods"] == run["periods"] and after["status"] == "succeeded"

    r = client.get(f"/runs/{rid}/confusion", params={"set": "test"})
    c = validate(r, "/runs/{id}/confusion", "get", 200)
    assert c == conf


def test_evaluate_with_empty_body_defaults_to_mnist_test(client, validate, trained):
    rid = trained["linear"]["id"]
    e = validate(client.post(f"/runs/{rid}/evaluate"), "/runs/{id}/evaluate", "post", 200)
    assert e["dataset"] == "mnist-test" and e["examples"] == 10000
    assert 0.8 < e["accuracy"] <= 1
    assert math.isclose(client.run(rid)["test_accuracy"], e["accuracy"], abs_tol=1e-9)
    e2 = validate(client.post_json(f"/runs/{rid}/evaluate", {}), "/runs/{id}/evaluate", "post", 200)
    assert e2 == e, "evaluation is deterministic"


def test_weights_first_layer(client, validate, trained):
    w = validate(client.get(f"/runs/{trained['dnn']['id']}/weights"),
                 "/runs/{id}/weights", "get", 200)
    assert w["layer"] == 0 and w["shape"] == [32, 784]
    assert len(w["values"]) == 32 and all(len(row) == 784 for row in w["values"])
    assert len(w["biases"]) == 32
    assert any(v != 0 for row in w["values"] for v in row)

    w = validate(client.get(f"/runs/{trained['linear']['id']}/weights", params={"layer": 0}),
                 "/runs/{id}/weights", "get", 200)
    assert w["layer"] == 0 and w["shape"] == [10, 784]
    assert len(w["values"]) == 10 and all(len(row) == 784 for row in w["values"])
    assert len(w["biases"]) == 10


def test_weights_output_layer_of_dnn(client, validate, trained):
    w = validate(client.get(f"/runs/{trained['dnn']['id']}/weights", params={"layer": 1}),
                 "/runs/{id}/weights", "get", 200)
    assert w["layer"] == 1 and w["shape"] == [10, 32]
    assert len(w["values"]) == 10 and all(len(row) == 32 for row in w["values"])


def test_cancel_queued_and_running_and_delete(client, validate):
    # two workers: the first two long runs train, the third waits queued
    a = client.create_run(LONG_RUN)
    b = client.create_run(LONG_RUN)
    client.wait_for_run(a["id"], "running", timeout=30)
    client.wait_for_run(b["id"], "running", timeout=30)
    c = client.create_run(LONG_RUN)
    assert client.run(c["id"])["status"] == "queued"
    running = validate(client.get("/runs", params={"status": "running"}), "/runs", "get", 200)
    assert [x["id"] for x in running["runs"]] == [b["id"], a["id"]]
    assert all(x["started_at"] and x["finished_at"] is None for x in running["runs"])
    queued = validate(client.get("/runs", params={"status": "queued"}), "/runs", "get", 200)
    assert [x["id"] for x in queued["runs"]] == [c["id"]]
    assert queued["runs"][0]["started_at"] is None

    # a running run cannot be deleted
    r = client.delete(f"/runs/{a['id']}")
    expect_error(r, "/runs/{id}", "delete", 409, "run_active", a["id"], "running")
    # nor a queued one
    r = client.delete(f"/runs/{c['id']}")
    expect_error(r, "/runs/{id}", "delete", 409, "run_active", c["id"], "queued")

    # cancelling a queued run is immediate
    got = client.cancel(c["id"])
    assert got["status"] == "cancelled" and got["finished_at"] is not None

    # cancelling a running run stops it at its next step
    for run in (a, b):
        got = client.cancel(run["id"])
        assert got["status"] in ("running", "cancelled")
    for run in (a, b):
        done = client.wait_for_run(run["id"], "cancelled", timeout=30)
        assert done["finished_at"] is not None
        assert done["progress"]["step"] < 100000

    # cancelling again is a conflict
    r = client.post(f"/runs/{a['id']}/cancel")
    expect_error(r, "/runs/{id}/cancel", "post", 409, "run_ended", a["id"], "cancelled")

    # a finished run is deleted: 204 then 404 everywhere
    for run in (a, b, c):
        r = client.delete(f"/runs/{run['id']}")
        assert validate(r, "/runs/{id}", "delete", 204) is None
        r = client.get(f"/runs/{run['id']}")
        expect_error(r, "/runs/{id}", "get", 404, "not_found", run["id"])
        r = client.delete(f"/runs/{run['id']}")
        expect_error(r, "/runs/{id}", "delete", 404, "not_found", run["id"])
    ids = [x["id"] for x in validate(client.get("/runs", params={"limit": 1000}),
                                     "/runs", "get", 200)["runs"]]
    assert not {a["id"], b["id"], c["id"]} & set(ids)


def test_delete_succeeded_run(client, validate):
    run = client.train({"model": "linear", "steps": 10, "periods": 1, "seed": 3})
    rid = run["id"]
    assert validate(client.delete(f"/runs/{rid}"), "/runs/{id}", "delete", 204) is None
    for path, tmpl, method in ((f"/runs/{rid}", "/runs/{id}", "get"),
                               (f"/runs/{rid}/confusion", "/runs/{id}/confusion", "get"),
                               (f"/runs/{rid}/weights", "/runs/{id}/weights", "get")):
        expect_error(client.request(method.upper(), path), tmpl, method, 404, "not_found")
    r = client.post_json("/predict", {"run": rid, "pixels": [0.0] * 784})
    expect_error(r, "/predict", "post", 404, "not_found", rid)


def test_cancelled_run_state_conflicts(client, validate, cancelled_run):
    rid = cancelled_run["id"]
    assert cancelled_run["periods"] == [] and cancelled_run["validation_accuracy"] is None
    r = client.get(f"/runs/{rid}/confusion")
    expect_error(r, "/runs/{id}/confusion", "get", 409, "no_metrics", rid)
    r = client.get(f"/runs/{rid}/weights")
    expect_error(r, "/runs/{id}/weights", "get", 409, "run_not_succeeded", rid, "cancelled")
    r = client.post_json(f"/runs/{rid}/evaluate", {"dataset": "mnist-test"})
    expect_error(r, "/runs/{id}/evaluate", "post", 409, "run_not_succeeded", rid, "cancelled")
    r = client.post_json("/predict", {"run": rid, "pixels": [0.0] * 784})
    expect_error(r, "/predict", "post", 409, "run_not_succeeded", rid, "cancelled")


def test_linear_accepts_explicit_no_hidden_units_and_no_dropout(client):
    spec = dict(LINEAR_SMALL, hidden_units=[], dropout=0, steps=4, periods=1)
    run = client.create_run(spec)
    assert run["params"]["hidden_units"] == [] and run["params"]["dropout"] == 0
    done = client.wait_for_run(run["id"], "succeeded")
    # the stored params feed a new run as they are
    again = client.create_run(done["params"])
    assert again["params"] == done["params"]
    client.wait_for_run(again["id"], "succeeded")


def _first_step_counts(biases, update, batch):
    """Label counts of a first batch recovered from the biases after one
    step of a zero-initialised linear model: update(g) is the bias change
    for the summed-loss gradient g = 0.1 * batch - count."""
    counts = []
    for b in biases:
        c = [k for k in range(batch + 1) if math.isclose(update(0.1 * batch - k), b, abs_tol=1e-5)]
        assert len(c) == 1, f"bias {b} matches no label count {c}"
        counts.append(c[0])
    assert sum(counts) == batch, counts
    return counts


def test_loss_is_summed_over_the_batch_and_adagrad_starts_at_0_1(client, validate):
    """One step of a zero-initialised linear model: every softmax output is
    0.1, so the gradient of the summed loss for bias k is 0.1*B - count_k.
    SGD moves it by -lr*g; Adagrad (accumulators starting at 0.1) by
    -lr*g/sqrt(0.1 + g^2). A mean loss or another start would not fit."""
    lr, batch = 0.5, 10
    base = {"model": "linear", "steps": 1, "periods": 1, "batch_size": batch, "clip_norm": 0,
            "learning_rate": lr, "examples": 100, "validation_examples": 50, "seed": 4}
    sgd = client.train(dict(base, optimizer="sgd"))
    ada = client.train(dict(base, optimizer="adagrad"))
    b_sgd = validate(client.get(f"/runs/{sgd['id']}/weights"), "/runs/{id}/weights", "get", 200)["biases"]
    b_ada = validate(client.get(f"/runs/{ada['id']}/weights"), "/runs/{id}/weights", "get", 200)["biases"]
    c_sgd = _first_step_counts(b_sgd, lambda g: -lr * g, batch)
    c_ada = _first_step_counts(b_ada, lambda g: -lr * g / math.sqrt(0.1 + g * g), batch)
    assert c_sgd == c_ada, "same seed, same first batch"


def test_cancel_records_the_step_reached(client, validate):
    """A cancelled run shows the step where it stopped, not the last period
    boundary (0 here: its one period never ends)."""
    run = client.create_run(dict(LONG_RUN, periods=1))
    seen = client.wait_for_run(run["id"], "running", timeout=30,
                               until=lambda r: r["progress"]["step"] >= 20)
    client.cancel(run["id"])
    done = client.wait_for_run(run["id"], "cancelled", timeout=30)
    step = done["progress"]["step"]
    assert seen["progress"]["step"] <= step < LONG_RUN["steps"]
    assert done["progress"]["period"] == 0
    listed = validate(client.get("/runs", params={"status": "cancelled", "limit": 1000}),
                      "/runs", "get", 200)["runs"]
    assert [x["progress"]["step"] for x in listed if x["id"] == run["id"]] == [step]


BOM = b"\xef\xbb\xbf"


def test_json_bodies_may_start_with_a_byte_order_mark(client, validate, trained, mnist):
    """RFC 8259 lets a parser ignore a UTF-8 BOM; CSV uploads skip it too."""
    ct = {"Content-Type": "application/json"}
    body = json.dumps({"model": "linear", "steps": 10, "periods": 1, "seed": 2}).encode()
    r = client.post("/runs", data=BOM + body, headers=ct)
    run = validate(r, "/runs", "post", 202)
    assert run["params"]["steps"] == 10

    rid = trained["linear"]["id"]
    imgs, _ = mnist.images("test", 1)
    pixels = mnist.scaled(imgs[0])
    want = validate(client.post_json("/predict", {"run": rid, "pixels": pixels}),
                    "/predict", "post", 200)
    # the fast decoder's form, and one it leaves to the full parser (an
    # escaped key)
    fast = json.dumps({"run": rid, "pixels": pixels}).encode()
    slow = fast.replace(b'"pixels"', b'"pix\\u0065ls"')
    assert slow != fast
    for b in (fast, slow):
        got = validate(client.post("/predict", data=BOM + b, headers=ct), "/predict", "post", 200)
        assert got == want

    r = client.post(f"/runs/{rid}/evaluate", data=BOM + b'{"dataset": "mnist-test"}', headers=ct)
    assert validate(r, "/runs/{id}/evaluate", "post", 200)["examples"] == 10000
    client.wait_for_run(run["id"], "succeeded", timeout=120)
