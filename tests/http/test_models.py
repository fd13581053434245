"""Named models: the registry's lifecycle (create, versions, aliases,
delete), every error, POST /predict by model name, a run that is a version
cannot be deleted, and the registry surviving a restart."""
import uuid

import pytest

from conftest import LINEAR_SMALL, expect_error


def _name(prefix="m"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def model(client, validate):
    """A fresh named model, deleted afterwards."""
    name = _name()
    r = client.post_json("/models", {"name": name, "description": "digits"})
    body = validate(r, "/models", "post", 201)
    assert r.headers["Location"] == f"/models/{name}"
    assert body == {"name": name, "description": "digits", "versions": [],
                    "latest_version": None, "aliases": {}, "owner": None,
                    "shared": True}  # no users: nobody's, everyone's
    yield name
    client.delete(f"/models/{name}")


def _register(client, validate, name, run_id, version):
    r = client.post_json(f"/models/{name}/versions", {"run": run_id})
    body = validate(r, "/models/{name}/versions", "post", 201)
    assert body == {"model": name, "version": version, "run": run_id}
    assert r.headers["Location"] == f"/models/{name}/versions/{version}"


def _put_alias(client, name, alias, version):
    return client.request("PUT", f"/models/{name}/aliases/{alias}",
                          json={"version": version})


def test_lifecycle(client, validate, trained, model):
    lin, dnn = trained["linear"]["id"], trained["dnn"]["id"]
    _register(client, validate, model, lin, 1)
    _register(client, validate, model, dnn, 2)
    r = _put_alias(client, model, "production", 1)
    assert validate(r, "/models/{name}/aliases/{alias}", "put", 201) == {
        "model": model, "alias": "production", "version": 1}
    r = _put_alias(client, model, "production", 2)
    validate(r, "/models/{name}/aliases/{alias}", "put", 200)
    _put_alias(client, model, "staging", 1)
    body = validate(client.get(f"/models/{model}"), "/models/{name}", "get", 200)
    assert body["latest_version"] == 2
    assert [(v["version"], v["run"], v["model"]) for v in body["versions"]] == [
        (1, lin, "linear"), (2, dnn, "dnn")]
    assert body["versions"][1]["validation_accuracy"] == trained["dnn"]["validation_accuracy"]
    assert body["aliases"] == {"production": 2, "staging": 1}
    lst = validate(client.get("/models"), "/models", "get", 200)
    item = [m for m in lst["models"] if m["name"] == model]
    assert item == [{"name": model, "description": "digits", "versions": 2,
                     "latest_version": 2, "owner": None, "shared": True}]
    r = client.delete(f"/models/{model}/aliases/staging")
    assert validate(r, "/models/{name}/aliases/{alias}", "delete", 204) is None
    body = client.get(f"/models/{model}").json()
    assert body["aliases"] == {"production": 2}
    assert validate(client.delete(f"/models/{model}"), "/models/{name}", "delete", 204) is None
    expect_error(client.get(f"/models/{model}"), "/models/{name}", "get", 404,
                 "not_found", model)


def test_predict_by_model_version_and_alias(client, validate, trained, model, mnist):
    lin, dnn = trained["linear"]["id"], trained["dnn"]["id"]
    _register(client, validate, model, lin, 1)
    _register(client, validate, model, dnn, 2)
    _put_alias(client, model, "production", 1)
    imgs, _ = mnist.images("test", 3)
    px = [[b / 255.0 for b in img] for img in imgs]

    def predict(**kw):
        r = client.post_json("/predict", {"pixels": px, **kw})
        return validate(r, "/predict", "post", 200)

    assert predict(model=model)["run"] == dnn  # the highest version
    assert predict(model=model, version=1)["run"] == lin
    assert predict(model=model, alias="production")["run"] == lin
    assert predict(model=model)["predictions"] == predict(run=dnn)["predictions"]
    # a change to the registry is seen by the very next request
    _put_alias(client, model, "production", 2)
    assert predict(model=model, alias="production")["run"] == dnn
    _register(client, validate, model, lin, 3)
    assert predict(model=model)["run"] == lin
    client.delete(f"/models/{model}/aliases/production")
    expect_error(client.post_json("/predict", {"pixels": px, "model": model,
                                               "alias": "production"}),
                 "/predict", "post", 404, "not_found", "no alias")
    _put_alias(client, model, "production", 1)
    for body, code, word in (
            ({"model": model, "version": 9}, "not_found", "no version 9"),
            ({"model": model, "alias": "nope"}, "not_found", "no alias 'nope'"),
            ({"model": _name()}, "not_found", "no model")):
        expect_error(client.post_json("/predict", {"pixels": px, **body}),
                     "/predict", "post", 404, code, word)
    for body in ({"model": model, "version": 1, "alias": "production"},
                 {"version": 1}, {"model": model, "run": lin},
                 {"model": 3}, {"model": model, "version": 0}):
        expect_error(client.post_json("/predict", {"pixels": px, **body}),
                     "/predict", "post", 400, "bad_field")


def test_errors(client, validate, trained, cancelled_run, model):
    expect_error(client.post_json("/models", {"name": model}), "/models", "post",
                 409, "model_exists", model)
    for body in ({"name": "Bad Name"}, {}, {"name": "x", "extra": 1},
                 {"name": "x", "description": 3}, []):
        expect_error(client.post_json("/models", body), "/models", "post", 400,
                     "bad_field")
    expect_error(client.post_json(f"/models/{model}/versions",
                                  {"run": cancelled_run["id"]}),
                 "/models/{name}/versions", "post", 409, "run_not_succeeded",
                 "cancelled")
    expect_error(client.post_json(f"/models/{model}/versions", {"run": "99999999"}),
                 "/models/{name}/versions", "post", 404, "not_found")
    expect_error(client.post_json(f"/models/{model}/versions", {"runs": "1"}),
                 "/models/{name}/versions", "post", 400, "bad_field")
    unknown = _name()
    expect_error(client.post_json(f"/models/{unknown}/versions",
                                  {"run": trained["linear"]["id"]}),
                 "/models/{name}/versions", "post", 404, "not_found", unknown)
    expect_error(_put_alias(client, model, "production", 1),
                 "/models/{name}/aliases/{alias}", "put", 404, "not_found",
                 "no version 1")
    expect_error(_put_alias(client, unknown, "production", 1),
                 "/models/{name}/aliases/{alias}", "put", 404, "not_found")
    expect_error(_put_alias(client, model, "Prod", 1),
                 "/models/{name}/aliases/{alias}", "put", 400, "bad_alias")
    expect_error(client.request("PUT", f"/models/{model}/aliases/p", json={"version": "1"}),
                 "/models/{name}/aliases/{alias}", "put", 400, "bad_field")
    expect_error(client.delete(f"/models/{model}/aliases/nope"),
                 "/models/{name}/aliases/{alias}", "delete", 404, "not_found")
    expect_error(client.delete(f"/models/{unknown}"), "/models/{name}", "delete",
                 404, "not_found")
    expect_error(client.post_json("/predict", {"model": model, "pixels": [0.0] * 784}),
                 "/predict", "post", 404, "not_found", "no version yet")


def test_deleting_a_run_in_a_model_is_409(client, validate, model):
    run = client.train(LINEAR_SMALL)
    _register(client, validate, model, run["id"], 1)
    expect_error(client.delete(f"/runs/{run['id']}"), "/runs/{id}", "delete", 409,
                 "run_in_model", model, "version 1")
    client.delete(f"/models/{model}")
    assert client.delete(f"/runs/{run['id']}").status_code == 204


def test_registry_survives_restart(start_server, tmp_path):
    db = tmp_path / "models.db"
    a = start_server(db=db, name="first")
    run = a.client.train(LINEAR_SMALL)
    a.client.post_json("/models", {"name": "digits"})
    a.client.post_json("/models/digits/versions", {"run": run["id"]})
    a.client.request("PUT", "/models/digits/aliases/production", json={"version": 1})
    before = a.client.get("/models/digits").json()
    a.stop()
    b = start_server(db=db, name="second")
    assert b.client.get("/models/digits").json() == before
    r = b.client.post_json("/predict", {"model": "digits", "alias": "production",
                                        "pixels": [0.0] * 784})
    assert r.status_code == 200 and r.json()["run"] == run["id"]


def test_raw_bytes_predict_by_model_version_and_alias(client, validate, trained, model,
                                                      mnist):
    """The raw-bytes form names a model in the query as the JSON form does in
    the body; a bad combination is 400, an unknown name 404, never another
    run's answer."""
    lin, dnn = trained["linear"]["id"], trained["dnn"]["id"]
    _register(client, validate, model, lin, 1)
    _register(client, validate, model, dnn, 2)
    _put_alias(client, model, "production", 1)
    imgs, _ = mnist.images("test", 3)
    raw = b"".join(imgs)

    def predict(status=200, **q):
        r = client.post("/predict", params=q, data=raw,
                        headers={"Content-Type": "application/octet-stream"})
        return validate(r, "/predict", "post", status)

    assert predict(model=model)["run"] == dnn
    assert predict(model=model, version="1")["run"] == lin
    assert predict(model=model, alias="production")["run"] == lin
    assert predict(model=model)["predictions"] == predict(run=dnn)["predictions"]
    for q, code in (({"model": _name()}, 404), ({"model": model, "version": "9"}, 404),
                    ({"model": model, "alias": "nope"}, 404),
                    ({"model": model, "run": lin}, 400), ({"version": "1"}, 400),
                    ({"model": model, "version": "x"}, 400),
                    ({"model": model, "version": "1", "alias": "production"}, 400)):
        r = client.post("/predict", params=q, data=raw,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == code, (q, r.status_code, r.text)
        assert "error" in r.json()
