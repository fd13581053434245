"""The Open Inference Protocol v2 (KServe, Triton) and TensorFlow Serving's
REST API over a named model: metadata and health, JSON and binary tensors
of every accepted shape and datatype, output selection, answers identical
to POST /predict, malformed tensors answered 400, and the errors of each
protocol. Every v2 JSON request and response is validated against the
official specification's component schemas
(../shared/specs/open_inference_rest.yaml beside the repository)."""
import json
import math
import os
import struct
import uuid
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO

SPEC_NAME = "open_inference_rest.yaml"


def _spec_path():
    """The specification in shared/specs beside the repository (the
    nearest ancestor's), or $MNISTD_SHARED_DIR/specs."""
    env = os.environ.get("MNISTD_SHARED_DIR")
    candidates = [Path(env) / "specs" / SPEC_NAME] if env else []
    candidates += [p / "shared" / "specs" / SPEC_NAME for p in REPO.parents]
    for c in candidates:
        if c.is_file():
            return c
    pytest.fail(f"{SPEC_NAME} not found in shared/specs beside the repository "
                f"(looked at {[str(c) for c in candidates]}); set MNISTD_SHARED_DIR")


class Spec:
    """The specification's component schemas as one JSON Schema document:
    its $refs are kept (tensor_data refers to itself), pointed at
    "definitions"."""

    def __init__(self, path):
        doc = yaml.safe_load(path.read_text())
        text = json.dumps(doc["components"]["schemas"]).replace(
            "#/components/schemas/", "#/definitions/")
        self.defs = json.loads(text)

    def schema(self, name):
        assert name in self.defs, f"{name} is not a schema of {SPEC_NAME}"
        return name

    def check(self, instance, name):
        schema = {"definitions": self.defs, "$ref": f"#/definitions/{name}"}
        errors = list(jsonschema.Draft4Validator(schema).iter_errors(instance))
        assert not errors, (f"not a valid {name} of {SPEC_NAME}: "
                            f"{[e.message for e in errors[:5]]}; {json.dumps(instance)[:500]}")


@pytest.fixture(scope="module")
def spec():
    return Spec(_spec_path())


@pytest.fixture(scope="module")
def served(client, trained):
    """A named model: version 1 the linear run, 2 the dnn run, alias
    production -> 1."""
    name = f"v2-{uuid.uuid4().hex[:8]}"
    client.post_json("/models", {"name": name})
    client.post_json(f"/models/{name}/versions", {"run": trained["linear"]["id"]})
    client.post_json(f"/models/{name}/versions", {"run": trained["dnn"]["id"]})
    client.request("PUT", f"/models/{name}/aliases/production", json={"version": 1})
    yield name
    client.delete(f"/models/{name}")


@pytest.fixture(scope="module")
def images(mnist):
    return mnist.images("test", 4)[0]


def _predict(client, run, imgs):
    r = client.post("/predict", params={"run": run}, data=b"".join(imgs),
                    headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    return r.json()["predictions"]


def _infer(client, spec, path, req, status=200):
    spec.check(req, spec.schema("inference_request"))
    r = client.post_json(path, req)
    assert r.status_code == status, r.text
    body = r.json()
    spec.check(body, spec.schema("inference_response" if status == 200
                                 else "inference_error_response"))
    return body


def _fp32(imgs):
    return [b / 255.0 for img in imgs for b in img]


def _nest(flat, shape):
    if len(shape) == 1:
        return list(flat)
    step = len(flat) // shape[0]
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _same(outputs, preds):
    got = {o["name"]: o for o in outputs}
    probs = got["probabilities"]["data"]
    assert got["probabilities"]["shape"] == [len(preds), 10]
    assert got["class"]["data"] == [p["class"] for p in preds]
    for i, p in enumerate(preds):
        for k in range(10):
            assert math.isclose(probs[i * 10 + k], p["probabilities"][k],
                                rel_tol=1e-6, abs_tol=1e-9)


def test_server_and_model_metadata(client, spec, served):
    for path, schema in (("/v2", "metadata_server_response"),
                         (f"/v2/models/{served}", "metadata_model_response"),
                         (f"/v2/models/{served}/versions/1", "metadata_model_response")):
        r = client.get(path)
        assert r.status_code == 200, r.text
        spec.check(r.json(), spec.schema(schema))
    meta = client.get(f"/v2/models/{served}").json()
    assert meta["versions"] == ["1", "2"]
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 784]}]
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "class"]
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{served}/ready",
                 f"/v2/models/{served}/versions/2/ready"):
        assert client.get(path).status_code == 200, path
    for path in (f"/v2/models/{served}/versions/7", "/v2/models/nope",
                 f"/v2/models/{served}/versions/x/ready"):
        r = client.get(path)
        assert r.status_code == 404
        spec.check(r.json(), spec.schema("metadata_model_error_response"))


@pytest.mark.parametrize("shape", [[784], [28, 28], [1, 28, 28]])
@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
@pytest.mark.parametrize("nested", [False, True])
def test_infer_json_matches_predict(client, spec, trained, served, images,
                                    shape, datatype, nested):
    n = len(images)
    flat = _fp32(images) if datatype == "FP32" else [b for img in images for b in img]
    full = [n] + shape
    data = _nest(flat, full) if nested else flat
    req = {"id": "req-7", "inputs": [{"name": "pixels", "shape": full,
                                      "datatype": datatype, "data": data}]}
    body = _infer(client, spec, f"/v2/models/{served}/infer", req)
    assert body["model_name"] == served and body["model_version"] == "2"
    assert body["id"] == "req-7"
    _same(body["outputs"], _predict(client, trained["dnn"]["id"], images))
    body = _infer(client, spec, f"/v2/models/{served}/versions/1/infer", req)
    assert body["model_version"] == "1"
    _same(body["outputs"], _predict(client, trained["linear"]["id"], images))


def test_infer_outputs_selection(client, spec, served, images):
    req = {"inputs": [{"name": "pixels", "shape": [4, 784], "datatype": "UINT8",
                       "data": [b for img in images for b in img]}],
           "outputs": [{"name": "class"}]}
    body = _infer(client, spec, f"/v2/models/{served}/infer", req)
    assert [o["name"] for o in body["outputs"]] == ["class"]
    assert body["outputs"][0]["datatype"] == "INT64"
    assert body["outputs"][0]["shape"] == [4]
    assert "id" not in body


def _binary_request(header, tensors):
    head = json.dumps(header).encode()
    return head + b"".join(tensors), len(head)


def _split_reply(r):
    hl = int(r.headers["Inference-Header-Content-Length"])
    return json.loads(r.content[:hl]), r.content[hl:]


@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
def test_infer_binary(client, trained, served, images, datatype):
    n = len(images)
    if datatype == "UINT8":
        raw = b"".join(images)
    else:
        raw = struct.pack(f"<{n * 784}f", *_fp32(images))
    header = {"inputs": [{"name": "pixels", "shape": [n, 1, 28, 28], "datatype": datatype,
                          "parameters": {"binary_data_size": len(raw)}}],
              "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}},
                          {"name": "class", "parameters": {"binary_data": True}}]}
    body, hl = _binary_request(header, [raw])
    r = client.post(f"/v2/models/{served}/infer", data=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Inference-Header-Content-Length": str(hl)})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    head, tail = _split_reply(r)
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert sizes == [n * 40, n * 8] and len(tail) == n * 48
    probs = struct.unpack(f"<{n * 10}f", tail[:n * 40])
    classes = struct.unpack(f"<{n}q", tail[n * 40:])
    preds = _predict(client, trained["dnn"]["id"], images)
    assert list(classes) == [p["class"] for p in preds]
    for i, p in enumerate(preds):
        for k in range(10):
            assert math.isclose(probs[i * 10 + k], p["probabilities"][k], rel_tol=1e-6,
                                abs_tol=1e-9)
    # binary in, JSON out (and binary_data_output for every output)
    header.pop("outputs")
    body, hl = _binary_request(header, [raw])
    r = client.post(f"/v2/models/{served}/infer", data=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Inference-Header-Content-Length": str(hl)})
    assert r.headers["Content-Type"] == "application/json"
    _same(r.json()["outputs"], preds)
    header["parameters"] = {"binary_data_output": True}
    body, hl = _binary_request(header, [raw])
    r = client.post(f"/v2/models/{served}/infer", data=body,
                    headers={"Content-Type": "application/octet-stream",
                             "Inference-Header-Content-Length": str(hl)})
    head, tail = _split_reply(r)
    assert len(tail) == n * 48


def _bad_requests():
    img = [0.5] * 784
    good = {"name": "pixels", "shape": [1, 784], "datatype": "FP32", "data": img}
    return [
        ("783 values", {"inputs": [{**good, "data": img[:-1]}]}),
        ("more values", {"inputs": [{**good, "data": img + [0.1]}]}),
        ("datatype", {"inputs": [{**good, "datatype": "BOOL"}]}),
        ("one", {"inputs": [good, good]}),
        ("one", {"inputs": []}),
        ("outside 0..1", {"inputs": [{**good, "data": [2.0] + img[1:]}]}),
        ("0..255", {"inputs": [{**good, "datatype": "UINT8", "data": [256] + [0] * 783}]}),
        ("shape", {"inputs": [{**good, "shape": [1, 783]}]}),
        ("shape", {"inputs": [{**good, "shape": [0, 784]}]}),
        ("outputs[0]", {"inputs": [good], "outputs": [{"name": "logits"}]}),
        # the metadata declares one input, "pixels": another name is refused
        # (the fast path must not accept what the full decoder refuses)
        ("named 'x'", {"inputs": [{**good, "name": "x"}]}),
    ]


@pytest.mark.parametrize("words,req", _bad_requests())
def test_infer_malformed_is_400(client, spec, served, words, req):
    body = _infer(client, spec, f"/v2/models/{served}/infer", req, status=400)
    assert words in body["error"]


def test_infer_malformed_binary_is_400(client, served):
    def post(header, raw, hl=None):
        head = json.dumps(header).encode()
        return client.post(f"/v2/models/{served}/infer", data=head + raw,
                           headers={"Content-Type": "application/octet-stream",
                                    "Inference-Header-Content-Length": str(hl or len(head))})
    inp = {"name": "pixels", "shape": [1, 784], "datatype": "FP32",
           "parameters": {"binary_data_size": 784 * 4}}
    nan = struct.pack("<784f", *([float("nan")] + [0.0] * 783))
    r = post({"inputs": [inp]}, nan)
    assert r.status_code == 400 and "outside 0..1" in r.json()["error"]
    r = post({"inputs": [inp]}, b"\0" * 100)
    assert r.status_code == 400 and "binary data" in r.json()["error"]
    r = post({"inputs": [inp]}, b"\0" * (784 * 4 + 1))
    assert r.status_code == 400 and "no input claims" in r.json()["error"]
    r = post({"inputs": [inp]}, b"\0" * (784 * 4), hl=10 ** 9)
    assert r.status_code == 400
    r = client.post(f"/v2/models/{served}/infer", data=b"{",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and isinstance(r.json()["error"], str)


def test_infer_unknown_model_or_version_is_404(client, spec, served):
    req = {"inputs": [{"name": "pixels", "shape": [1, 784], "datatype": "FP32",
                       "data": [0.0] * 784}]}
    for path in ("/v2/models/nope/infer", f"/v2/models/{served}/versions/9/infer"):
        body = _infer(client, spec, path, req, status=404)
        assert "no " in body["error"]


# ---------------------------------------------------------------- TF Serving


def test_tfs_status_and_metadata(client, served):
    r = client.get(f"/v1/models/{served}")
    assert r.status_code == 200
    assert [s["version"] for s in r.json()["model_version_status"]] == ["2", "1"]
    st = client.get(f"/v1/models/{served}/labels/production").json()
    assert st == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                            "status": {"error_code": "OK",
                                                       "error_message": ""}}]}
    assert client.get(f"/v1/models/{served}/versions/2").json()[
        "model_version_status"][0]["version"] == "2"
    meta = client.get(f"/v1/models/{served}/metadata").json()
    assert meta["model_spec"] == {"name": served, "signature_name": "", "version": "2"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(sig["inputs"]) == {"pixels"}
    assert set(sig["outputs"]) == {"probabilities", "class"}
    for path in (f"/v1/models/{served}/versions/9", f"/v1/models/{served}/labels/nope",
                 "/v1/models/nope/metadata"):
        r = client.get(path)
        assert r.status_code == 404 and isinstance(r.json()["error"], str), path


def test_tfs_predict_row_and_columnar(client, trained, served, images):
    px = [[b / 255.0 for b in img] for img in images]
    dnn = _predict(client, trained["dnn"]["id"], images)
    lin = _predict(client, trained["linear"]["id"], images)

    def check(got, want):
        assert [g["class"] for g in got] == [w["class"] for w in want]
        for g, w in zip(got, want):
            for a, b in zip(g["probabilities"], w["probabilities"]):
                assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)

    r = client.post_json(f"/v1/models/{served}:predict", {"instances": px})
    assert r.status_code == 200, r.text
    check(r.json()["predictions"], dnn)
    nested = [_nest(p, [28, 28]) for p in px]
    r = client.post_json(f"/v1/models/{served}/labels/production:predict",
                         {"signature_name": "serving_default",
                          "instances": [{"pixels": p} for p in nested]})
    check(r.json()["predictions"], lin)
    r = client.post_json(f"/v1/models/{served}/versions/1:predict", {"inputs": px})
    out = r.json()["outputs"]
    check([{"class": c, "probabilities": p}
           for c, p in zip(out["class"], out["probabilities"])], lin)
    r = client.post_json(f"/v1/models/{served}:predict", {"inputs": {"pixels": px}})
    assert r.json()["outputs"]["class"] == [d["class"] for d in dnn]


@pytest.mark.parametrize("body,status,words", [
    ({"instances": [[0.0] * 784], "inputs": [[0.0] * 784]}, 400, "not both"),
    ({}, 400, "instances"),
    ({"instances": [[0.0] * 783]}, 400, "784"),
    ({"instances": [[2.0] * 784]}, 400, "outside 0..1"),
    ({"instances": []}, 400, "non-empty"),
    ({"instances": [[0.0] * 784], "signature_name": "other"}, 400, "serving_default"),
    ({"instances": [[0.0] * 784], "extra": 1}, 400, "extra"),
])
def test_tfs_predict_errors(client, served, body, status, words):
    r = client.post_json(f"/v1/models/{served}:predict", body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_tfs_unknown_model_and_method(client, served):
    r = client.post_json("/v1/models/nope:predict", {"instances": [[0.0] * 784]})
    assert r.status_code == 404 and "no model" in r.json()["error"]
    r = client.get(f"/v1/models/{served}:predict")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
