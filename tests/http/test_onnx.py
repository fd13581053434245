"""ONNX export: GET /runs/<id>/model.onnx for a small linear, a small dnn
and two small cnn runs (between them: "valid" and "same" padding, an even
kernel's uneven "same" padding, pools of 1, 2 and 3, a pool that drops a
trailing row and column, with and without dense hidden layers), checked by
Debian's python3-onnx (the checker with full shape inference, strict) and
run by onnxruntime-node from npm (tests/onnx/, its node_modules installed
by `npm ci` in the Makefile's http target) on the 10,000 MNIST test images:
every class equals POST /predict's (raw bytes) and every probability is
within 1e-5 of it; the largest difference is printed (pytest -s shows it)."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import REPO, expect_error

ONNX_DIR = REPO / "tests" / "onnx"
PATH = "/runs/{id}/model.onnx"
N_TEST = 10000
KINDS = ["linear", "dnn", "cnn_valid", "cnn_same"]

# 28 -> conv 5x5 valid 24 -> pool 2 -> 12 -> conv 3x3 valid 10 -> pool 3
# -> 3 (a row and a column dropped) -> dense 16 -> 10
CNN_VALID = {"model": "cnn", "conv_layers": [
    {"filters": 3, "kernel": 5, "pool": 2, "padding": "valid"},
    {"filters": 4, "kernel": 3, "pool": 3, "padding": "valid"}],
    "hidden_units": [16], "steps": 100, "periods": 1, "seed": 1}
# 28 -> conv 4x4 same (1 row above, 2 below; likewise columns) 28, no pool
# -> conv 3x3 same 28 -> pool 2 -> 14 -> straight to the 10 logits
CNN_SAME = {"model": "cnn", "conv_layers": [
    {"filters": 3, "kernel": 4, "pool": 1, "padding": "same"},
    {"filters": 2, "kernel": 3, "pool": 2, "padding": "same"}],
    "hidden_units": [], "steps": 100, "periods": 1, "seed": 2}
# the operators each kind's graph has, in order (Softmax and ArgMax close
# every one)
OPS = {
    "linear": ["Gemm"],
    "dnn": ["Gemm", "Relu", "Gemm"],
    "cnn_valid": ["Reshape", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool",
                  "Flatten", "Gemm", "Relu", "Gemm"],
    "cnn_same": ["Reshape", "Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten",
                 "Gemm"],
}


@pytest.fixture(scope="module")
def runs(client, trained):
    """The session's small linear and dnn runs and two small cnn runs
    trained here in parallel, by kind."""
    cnns = {name: client.create_run(spec) for name, spec in
            (("cnn_valid", CNN_VALID), ("cnn_same", CNN_SAME))}
    done = {name: client.wait_for_run(run["id"], "succeeded", timeout=180)
            for name, run in cnns.items()}
    return {**trained, **done}


def download(client, validate, run):
    r = client.get(f"/runs/{run['id']}/model.onnx")
    validate(r, PATH, "get", 200)
    assert r.headers["Content-Type"] == "application/onnx"
    return r.content


def dims(value_info):
    shape = value_info.type.tensor_type.shape
    return [d.dim_param or d.dim_value for d in shape.dim]


@pytest.mark.parametrize("kind", KINDS)
def test_model_passes_the_onnx_checker(client, validate, runs, kind):
    m = onnx.load_from_string(download(client, validate, runs[kind]))
    onnx.checker.check_model(m, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    g = inferred.graph
    assert [i.name for i in g.input] == ["pixels"]
    assert [o.name for o in g.output] == ["probabilities", "class"]
    assert g.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(g.input[0]) == ["N", 784]
    assert g.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(g.output[0]) == ["N", 10]
    assert g.output[1].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert dims(g.output[1]) == ["N"]
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 13)]
    assert [n.op_type for n in g.node] == OPS[kind] + ["Softmax", "ArgMax"]
    assert f"run {runs[kind]['id']}" in m.doc_string


def run_node(model_path, images_path, out_prefix):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: `make deps`")
    if not (ONNX_DIR / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("tests/onnx/node_modules is missing: run `make http` "
                    "(it runs npm ci there)")
    p = subprocess.run([node, str(ONNX_DIR / "run_model.mjs"), str(model_path),
                        str(images_path), str(out_prefix)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"node exited {p.returncode}: {p.stderr[-4000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", KINDS)
def test_onnxruntime_agrees_with_predict(client, validate, runs, mnist, tmp_path, kind):
    run = runs[kind]
    model_path = tmp_path / "model.onnx"
    model_path.write_bytes(download(client, validate, run))
    imgs, _ = mnist.images("test", N_TEST)
    raw = b"".join(imgs)
    images_path = tmp_path / "images.bin"
    images_path.write_bytes(raw)

    info = run_node(model_path, images_path, tmp_path / "ort")
    assert info == {"n": N_TEST, "inputs": ["pixels"], "outputs": ["probabilities", "class"]}
    ort_probs = np.fromfile(tmp_path / "ort.probs", dtype="<f4").reshape(N_TEST, 10)
    ort_class = np.fromfile(tmp_path / "ort.class", dtype="<i8")
    assert ort_class.shape == (N_TEST,)

    r = client.post("/predict", params={"run": run["id"]}, data=raw,
                    headers={"Content-Type": "application/octet-stream"})
    preds = validate(r, "/predict", "post", 200)["predictions"]
    assert len(preds) == N_TEST
    classes = np.array([p["class"] for p in preds], dtype=np.int64)
    probs = np.array([p["probabilities"] for p in preds], dtype=np.float64)

    differ = np.flatnonzero(classes != ort_class)
    assert differ.size == 0, f"{differ.size} classes differ, first at image {differ[:10]}"
    assert np.array_equal(ort_class, ort_probs.argmax(axis=1))
    diff = np.abs(probs - ort_probs.astype(np.float64))
    worst = float(diff.max())
    print(f"\nonnx {kind} run {run['id']}: classes equal on {N_TEST} images, "
          f"largest probability difference {worst:.3g}")
    assert worst <= 1e-5, f"largest probability difference {worst} at image {diff.max(axis=1).argmax()}"


def test_unknown_run_is_404(client):
    expect_error(client.get("/runs/999999/model.onnx"), PATH, "get", 404, "not_found")


def test_run_not_succeeded_is_409(client, cancelled_run):
    expect_error(client.get(f"/runs/{cancelled_run['id']}/model.onnx"), PATH, "get", 409,
                 "run_not_succeeded")


VERSION_PATH = "/models/{name}/versions/{version}/model.onnx"


def test_a_model_version_exports_its_run(client, validate, trained):
    """GET /models/<name>/versions/<v>/model.onnx is that version's run's
    file, byte for byte; an unknown model or version is 404."""
    name = "onnx-export"
    client.delete(f"/models/{name}")
    assert client.post_json("/models", {"name": name}).status_code == 201
    try:
        r = client.post_json(f"/models/{name}/versions", {"run": trained["dnn"]["id"]})
        assert r.status_code == 201, r.text
        version = r.json()["version"]
        r = client.get(f"/models/{name}/versions/{version}/model.onnx")
        validate(r, VERSION_PATH, "get", 200)
        assert r.headers["Content-Type"] == "application/onnx"
        assert r.content == download(client, validate, trained["dnn"])
        expect_error(client.get(f"/models/{name}/versions/{version + 1}/model.onnx"),
                     VERSION_PATH, "get", 404, "not_found")
        expect_error(client.get(f"/models/{name}/versions/x/model.onnx"),
                     VERSION_PATH, "get", 404, "not_found")
        expect_error(client.get("/models/no-such-model/versions/1/model.onnx"),
                     VERSION_PATH, "get", 404, "not_found")
    finally:
        client.delete(f"/models/{name}")
