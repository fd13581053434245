"""Audit lines: every request that changed state (a POST, PUT or DELETE
answered 2xx; inference POSTs change nothing) writes one JSON line to the
server's stderr with the user, the client, the route and the resource; reads,
predictions and refused requests write none."""
import json
import time

from conftest import LINEAR_SMALL, LONG_RUN, time_scale

TOKEN = "audit-token"


def audit_lines(server):
    return [e for e in server.events() if e.get("event") == "audit"]


def test_each_change_is_one_audit_line(start_server, validate, mnist):
    srv = start_server(args=["--token", TOKEN])
    c = srv.client
    c.http.headers["Authorization"] = f"Bearer {TOKEN}"
    a = c.train(LINEAR_SMALL)["id"]
    b = c.create_run(LONG_RUN)["id"]
    c.cancel(b)
    validate(c.post_json(f"/runs/{a}/evaluate", {"dataset": "mnist-test"}),
             "/runs/{id}/evaluate", "post", 200)
    validate(c.post("/datasets?name=tiny", data=mnist.csv("test", 20),
                    headers={"Content-Type": "text/csv"}), "/datasets", "post", 201)
    validate(c.delete("/datasets/tiny"), "/datasets/{name}", "delete", 204)
    validate(c.post_json("/models", {"name": "digits"}), "/models", "post", 201)
    validate(c.post_json("/models/digits/versions", {"run": a}),
             "/models/{name}/versions", "post", 201)
    validate(c.request("PUT", "/models/digits/aliases/production", json={"version": 1}),
             "/models/{name}/aliases/{alias}", "put", 201)
    # no line: reads, predictions in each protocol, refusals (4xx)
    img, _ = mnist.images("test", 1)
    validate(c.get("/runs"), "/runs", "get", 200)
    validate(c.post_json("/predict", {"run": a, "pixels": mnist.scaled(img[0])}),
             "/predict", "post", 200)
    validate(c.post_json("/v1/models/digits:predict", {"instances": [mnist.scaled(img[0])]}),
             "/v1/models/{name}:predict", "post", 200)
    validate(c.post_json("/v2/models/digits/infer", {"inputs": [
        {"name": "pixels", "shape": [1, 784], "datatype": "FP32", "data": mnist.scaled(img[0])}]}),
        "/v2/models/{name}/infer", "post", 200)
    validate(c.post_json("/runs", {"model": "linear", "steps": -1}), "/runs", "post", 400)
    validate(c.delete("/runs/999999"), "/runs/{id}", "delete", 404)
    validate(c.delete(f"/runs/{a}"), "/runs/{id}", "delete", 409)  # a model's version
    assert c.http.post(c.url("/runs"), json=LINEAR_SMALL,
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    validate(c.delete("/models/digits/aliases/production"),
             "/models/{name}/aliases/{alias}", "delete", 204)
    validate(c.delete("/models/digits"), "/models/{name}", "delete", 204)
    c.wait_for_run(b, "cancelled", timeout=30)
    validate(c.delete(f"/runs/{b}"), "/runs/{id}", "delete", 204)
    srv.stop()  # every line is written by now

    lines = audit_lines(srv)
    got = [(e["method"], e["route"], e["path"], e["status"], e["resource"]) for e in lines]
    assert got == [
        ("POST", "/runs", "/runs", 202, {"run": a}),
        ("POST", "/runs", "/runs", 202, {"run": b}),
        ("POST", "/runs/{}/cancel", f"/runs/{b}/cancel", 202, {"run": b}),
        ("POST", "/runs/{}/evaluate", f"/runs/{a}/evaluate", 200, {"run": a}),
        ("POST", "/datasets", "/datasets", 201, {"dataset": "tiny"}),
        ("DELETE", "/datasets/{}", "/datasets/tiny", 204, {"dataset": "tiny"}),
        ("POST", "/models", "/models", 201, {"model": "digits"}),
        ("POST", "/models/{}/versions", "/models/digits/versions", 201,
         {"model": "digits", "version": "1"}),
        ("PUT", "/models/{}/aliases/{}", "/models/digits/aliases/production", 201,
         {"model": "digits", "alias": "production"}),
        ("DELETE", "/models/{}/aliases/{}", "/models/digits/aliases/production", 204,
         {"model": "digits", "alias": "production"}),
        ("DELETE", "/models/{}", "/models/digits", 204, {"model": "digits"}),
        ("DELETE", "/runs/{}", f"/runs/{b}", 204, {"run": b}),
    ], json.dumps(lines, indent=1)
    for e in lines:
        assert e["user"] == "token" and e["client"] == "127.0.0.1", e
        assert isinstance(e["ts"], int) and e["ts"] > 1.7e12, e


def test_without_a_token_the_user_is_null(server, client):
    run = client.create_run(LINEAR_SMALL)
    deadline = time.monotonic() + 10 * time_scale()
    mine = []
    while not mine and time.monotonic() < deadline:
        mine = [e for e in audit_lines(server) if e["resource"] == {"run": run["id"]}]
        time.sleep(0.05)
    assert len(mine) == 1, mine
    assert mine[0]["user"] is None and mine[0]["route"] == "/runs", mine
