"""openapi.yaml against the code: every route of server/http/routes.c is
documented (and nothing else), the schemas are valid, and the server serves
the file it was built with. Also /healthz."""
import re
from pathlib import Path

import jsonschema
import yaml

from conftest import REPO, api, code_routes


def doc_routes(doc):
    out = set()
    for path, item in doc["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                out.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", path)))
    return out


def test_document_is_openapi_3_0_3():
    doc = api().doc
    assert doc["openapi"] == "3.0.3"
    assert doc["info"]["title"] and doc["info"]["version"]
    desc = doc["info"]["description"]
    for convention in ("summed over", "0.1", "mean log loss", "true labels"):
        assert convention in desc, f"conventions should mention {convention!r}"


def test_every_route_is_documented_and_nothing_else():
    assert doc_routes(api().doc) == code_routes()


def test_every_operation_documents_its_responses():
    doc = api().doc
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (method, path)
            assert "503" in codes, (method, path)  # shutting_down, for every operation
            if op.get("security") != []:
                assert "401" in codes, (method, path)  # with --token
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415"} <= codes, (method, path)


def test_schemas_are_valid_json_schema():
    a = api()
    required = {"Error", "Run", "RunParams", "RunList", "Period", "Confusion", "Evaluation",
                "Weights", "Prediction", "Dataset", "DatasetList", "Health", "RunEnd"}
    schemas = a.doc["components"]["schemas"]
    assert required <= set(schemas)
    for name in schemas:
        jsonschema.Draft4Validator.check_schema(a.to_jsonschema(a.schema(name)))


def test_nullable_conversion_allows_null_only_where_documented():
    a = api()
    run_props = a.doc["components"]["schemas"]["Run"]["properties"]
    for key in ("validation_accuracy", "validation_log_loss", "test_accuracy",
                "created_at", "started_at", "finished_at", "error"):
        assert run_props[key].get("nullable") is True, key
    a.check(None, {"type": "number", "nullable": True})
    try:
        a.check(None, {"type": "number"})
    except AssertionError:
        pass
    else:
        raise AssertionError("null accepted by a non-nullable schema")


def test_response_schemas_are_closed():
    schemas = api().doc["components"]["schemas"]
    for name in ("Error", "Run", "RunParams", "RunList", "Period", "Confusion", "Evaluation",
                 "Weights", "Prediction", "Dataset", "DatasetList", "Health", "Progress",
                 "RunEnd"):
        assert schemas[name].get("additionalProperties") is False, name


def test_served_openapi_is_this_file(client, validate):
    r = client.get("/openapi.yaml")
    text = validate(r, "/openapi.yaml", "get", 200)
    assert r.headers["Content-Type"].startswith("application/yaml")
    served = yaml.safe_load(text)
    assert set(served["paths"]) == set(api().doc["paths"])
    assert doc_routes(served) == code_routes()
    assert text == Path(REPO / "openapi.yaml").read_text(), \
        "the binary embeds an older openapi.yaml: rebuild with make"


def test_healthz(client, validate):
    r = client.get("/healthz")
    body = validate(r, "/healthz", "get", 200)
    assert body["status"] == "ok" and body["workers"] == 2
    assert 0 <= body["training"] <= 2 and body["uptime_seconds"] >= 0


def test_head_is_answered_like_get(client):
    r = client.request("HEAD", "/healthz")
    assert r.status_code == 200 and r.content == b""


def test_unknown_paths_are_404(client):
    for path in ("/nope", "//", "/runs//x", "/runs/1/nope", "/runs/", "/datasets/mnist/x", "/healthz/x",
                 "/runs/" + "9" * 100):
        r = client.get(path)
        body = api().validate_error(r, 404)
        assert body["error"]["code"] == "not_found"
