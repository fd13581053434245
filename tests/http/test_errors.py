"""The error table: every bad input gets the documented status, a stable
error code and a message that names the problem; the server stays healthy
afterwards. Each parametrized case is one bad input."""
import json

import pytest

from conftest import LONG_RUN, expect_error, route_cases

CT_JSON = {"Content-Type": "application/json"}
CT_CSV = {"Content-Type": "text/csv"}
CT_RAW = {"Content-Type": "application/octet-stream"}
ZERO = [0.0] * 784

# ------------------------------------------------------------ POST /runs

L = {"model": "linear"}
D = {"model": "dnn"}

RUN_CASES = [
    # id, body (dict: sent as JSON; str/bytes: sent raw as application/json), code, words
    ("bad-json", '{"model": "linear"', "bad_json", ["JSON"]),
    ("bad-json-trailing", '{"model": "linear"} x', "bad_json", ["JSON"]),
    ("empty-body", "", "bad_json", ["JSON"]),
    ("duplicate-key", '{"model": "linear", "model": "dnn"}', "bad_json", ["duplicate"]),
    ("not-object-array", "[1, 2]", "bad_field", ["object"]),
    # jansson parses only objects and arrays at the top level
    ("not-object-string", '"linear"', "bad_field", ["JSON object"]),
    ("not-object-null", "null", "bad_field", ["JSON object"]),
    ("unknown-field", dict(L, foo=1), "bad_field", ["foo"]),
    ("unknown-field-case", dict(L, Steps=10), "bad_field", ["Steps"]),
    ("missing-model", {"steps": 10}, "bad_field", ["model"]),
    ("empty-object", {}, "bad_field", ["model"]),
    ("bad-model", {"model": "rnn"}, "bad_field", ["model"]),
    ("model-case", {"model": "Linear"}, "bad_field", ["model"]),
    ("model-number", {"model": 1}, "bad_field", ["model"]),
    ("model-null", {"model": None}, "bad_field", ["model"]),
    ("learning-rate-zero", dict(L, learning_rate=0), "bad_field", ["learning_rate"]),
    ("learning-rate-negative", dict(L, learning_rate=-0.1), "bad_field", ["learning_rate"]),
    ("learning-rate-too-big", dict(L, learning_rate=11), "bad_field", ["learning_rate"]),
    ("learning-rate-string", dict(L, learning_rate="0.1"), "bad_field", ["learning_rate"]),
    ("steps-zero", dict(L, steps=0), "bad_field", ["steps"]),
    ("steps-negative", dict(L, steps=-5), "bad_field", ["steps"]),
    ("steps-too-many", dict(L, steps=1000001), "bad_field", ["steps"]),
    ("steps-string", dict(L, steps="10"), "bad_field", ["steps"]),
    ("steps-fraction", dict(L, steps=1.5), "bad_field", ["steps"]),
    ("steps-real-integral", '{"model": "linear", "steps": 10.0}', "bad_field", ["steps"]),
    ("steps-bool", dict(L, steps=True), "bad_field", ["steps"]),
    ("steps-null", dict(L, steps=None), "bad_field", ["steps"]),
    ("batch-size-zero", dict(L, batch_size=0), "bad_field", ["batch_size"]),
    ("batch-size-over-max", dict(L, batch_size=10001), "bad_field", ["batch_size"]),
    ("batch-size-over-training", dict(L, batch_size=7501), "bad_field", ["batch_size", "7500"]),
    ("batch-size-over-small-training", dict(L, examples=100, validation_examples=50, batch_size=51),
     "bad_field", ["batch_size", "50"]),
    ("periods-zero", dict(L, periods=0), "bad_field", ["periods"]),
    ("periods-over-steps", dict(L, steps=5, periods=6), "bad_field", ["periods", "steps"]),
    ("periods-over-max", dict(L, steps=5000, periods=1001), "bad_field", ["periods"]),
    ("dropout-one", dict(D, dropout=1.0), "bad_field", ["dropout"]),
    ("dropout-over-max", dict(D, dropout=0.96), "bad_field", ["dropout"]),
    ("dropout-negative", dict(D, dropout=-0.1), "bad_field", ["dropout"]),
    ("dropout-string", dict(D, dropout="0.5"), "bad_field", ["dropout"]),
    ("dropout-for-linear", dict(L, dropout=0.5), "bad_field", ["dropout", "dnn"]),
    ("hidden-units-empty", dict(D, hidden_units=[]), "bad_field", ["hidden_units"]),
    ("hidden-units-zero", dict(D, hidden_units=[0]), "bad_field", ["hidden_units[0]"]),
    ("hidden-units-negative", dict(D, hidden_units=[10, -1]), "bad_field", ["hidden_units[1]"]),
    ("hidden-units-too-wide", dict(D, hidden_units=[4097]), "bad_field", ["hidden_units[0]"]),
    ("hidden-units-too-many-layers", dict(D, hidden_units=[10] * 9), "bad_field", ["hidden_units"]),
    ("hidden-units-fraction", dict(D, hidden_units=[10.5]), "bad_field", ["hidden_units[0]"]),
    ("hidden-units-string-item", dict(D, hidden_units=["10"]), "bad_field", ["hidden_units[0]"]),
    ("hidden-units-not-array", dict(D, hidden_units=100), "bad_field", ["hidden_units"]),
    ("hidden-units-for-linear", dict(L, hidden_units=[10]), "bad_field", ["hidden_units", "dnn"]),
    ("optimizer-unknown", dict(L, optimizer="foo"), "bad_field", ["optimizer"]),
    ("optimizer-case", dict(L, optimizer="Adam"), "bad_field", ["optimizer"]),
    ("optimizer-number", dict(L, optimizer=1), "bad_field", ["optimizer"]),
    ("clip-norm-negative", dict(L, clip_norm=-1), "bad_field", ["clip_norm"]),
    ("clip-norm-string", dict(L, clip_norm="5"), "bad_field", ["clip_norm"]),
    ("examples-over-dataset", dict(L, examples=60001), "bad_field", ["examples", "60000"]),
    ("examples-over-test-dataset", dict(L, dataset="mnist-test", examples=10001),
     "bad_field", ["examples", "10000"]),
    ("examples-one", dict(L, examples=1, validation_examples=1), "bad_field", ["examples"]),
    ("validation-equals-examples", dict(L, examples=1000, validation_examples=1000),
     "bad_field", ["validation_examples"]),
    ("validation-over-examples", dict(L, examples=1000, validation_examples=2000),
     "bad_field", ["validation_examples"]),
    ("validation-zero", dict(L, validation_examples=0), "bad_field", ["validation_examples"]),
    ("seed-negative", dict(L, seed=-1), "bad_field", ["seed"]),
    ("seed-fraction", dict(L, seed=1.5), "bad_field", ["seed"]),
    ("seed-string", dict(L, seed="1"), "bad_field", ["seed"]),
    ("seed-over-2-53", dict(L, seed=2 ** 53 + 1), "bad_field", ["seed"]),
    ("dataset-unknown", dict(L, dataset="nope"), "bad_field", ["dataset", "nope"]),
    ("dataset-bad-name", dict(L, dataset="Bad Name"), "bad_field", ["dataset"]),
    ("dataset-path", dict(L, dataset="../etc/passwd"), "bad_field", ["dataset"]),
    ("dataset-number", dict(L, dataset=5), "bad_field", ["dataset"]),
    ("run-too-large", dict(D, hidden_units=[4096] * 8, optimizer="adam"), "run_too_large",
     ["MiB", "hidden_units"]),
]


@pytest.mark.parametrize("body,code,words", [c[1:] for c in RUN_CASES],
                         ids=[c[0] for c in RUN_CASES])
def test_post_runs_rejects(client, body, code, words):
    if isinstance(body, dict):
        r = client.post_json("/runs", body)
    else:
        r = client.post("/runs", data=body, headers=CT_JSON)
    expect_error(r, "/runs", "post", 400, code, *words)


def test_rejected_runs_are_not_created(client, validate):
    before = validate(client.get("/runs", params={"limit": 1000}), "/runs", "get", 200)["runs"]
    for body in (dict(L, steps=0), {"model": "rnn"}, dict(L, dataset="nope")):
        expect_error(client.post_json("/runs", body), "/runs", "post", 400, "bad_field")
    after = validate(client.get("/runs", params={"limit": 1000}), "/runs", "get", 200)["runs"]
    assert [x["id"] for x in after] == [x["id"] for x in before]


# ------------------------------------------------------------ POST /predict


def _batch(*imgs):
    return list(imgs)


PREDICT_CASES = [
    # id, body (callable rid -> dict, or raw str), status, code, words
    ("pixels-783", lambda rid: {"run": rid, "pixels": [0.0] * 783}, 400, "bad_pixels", ["783", "784"]),
    ("pixels-785", lambda rid: {"run": rid, "pixels": [0.0] * 785}, 400, "bad_pixels", ["785", "784"]),
    ("pixels-1", lambda rid: {"run": rid, "pixels": [0.5]}, 400, "bad_pixels", ["pixels", "1 values"]),
    ("pixel-string", lambda rid: {"run": rid, "pixels": [0.0] * 783 + ["x"]}, 400, "bad_pixels",
     ["pixels[783]", "not a number"]),
    ("pixel-null", lambda rid: {"run": rid, "pixels": [None] + [0.0] * 783}, 400, "bad_pixels",
     ["pixels[0]", "not a number"]),
    ("pixel-bool", lambda rid: {"run": rid, "pixels": [0.0] * 10 + [True] + [0.0] * 773}, 400,
     "bad_pixels", ["pixels[10]", "not a number"]),
    ("pixel-over-1", lambda rid: {"run": rid, "pixels": [0.0] * 5 + [1.5] + [0.0] * 778}, 400,
     "bad_pixels", ["pixels[5]", "0..1"]),
    ("pixel-255", lambda rid: {"run": rid, "pixels": [255] * 784}, 400, "bad_pixels", ["pixels[0]", "0..1"]),
    ("pixel-negative", lambda rid: {"run": rid, "pixels": [-0.1] + [0.0] * 783}, 400, "bad_pixels",
     ["pixels[0]", "0..1"]),
    ("nested-3-deep", lambda rid: {"run": rid, "pixels": [[ZERO]]}, 400, "bad_pixels", ["pixels[0]"]),
    ("batch-second-short", lambda rid: {"run": rid, "pixels": [ZERO, [0.0] * 10]}, 400, "bad_pixels",
     ["pixels[1]", "10 values"]),
    ("batch-second-not-array", lambda rid: {"run": rid, "pixels": [ZERO, 0.5]}, 400, "bad_pixels",
     ["pixels[1]", "array"]),
    ("batch-pixel-out-of-range", lambda rid: {"run": rid, "pixels": [ZERO, ZERO, [2.0] * 784]}, 400,
     "bad_pixels", ["pixels[2][0]", "0..1"]),
    ("single-with-array-inside", lambda rid: {"run": rid, "pixels": [0.5, ZERO] + [0.0] * 782}, 400,
     "bad_pixels", ["pixels[1]", "not a number"]),
    ("batch-of-empty-image", lambda rid: {"run": rid, "pixels": [[]]}, 400, "bad_pixels", ["pixels[0]"]),
    ("empty-batch", lambda rid: {"run": rid, "pixels": []}, 400, "bad_field", ["pixels"]),
    ("pixels-missing", lambda rid: {"run": rid}, 400, "bad_field", ["pixels"]),
    ("pixels-string", lambda rid: {"run": rid, "pixels": "abc"}, 400, "bad_field", ["pixels"]),
    ("pixels-object", lambda rid: {"run": rid, "pixels": {"0": 0}}, 400, "bad_field", ["pixels"]),
    ("too-many-images", lambda rid: {"run": rid, "pixels": [[0.0]] * 10001}, 400, "bad_pixels",
     ["10001", "10000"]),
    ("unknown-field", lambda rid: {"run": rid, "pixels": ZERO, "foo": 1}, 400, "bad_field", ["foo"]),
    ("run-number", lambda rid: {"run": int(rid), "pixels": ZERO}, 400, "bad_field", ["run"]),
    ("not-object", lambda rid: [ZERO], 400, "bad_field", ["object"]),
    ("bad-json", '{"pixels": [0.0, ', 400, "bad_json", ["JSON"]),
    ("empty-json-body", "", 400, "bad_json", ["JSON"]),
    ("unknown-run", lambda rid: {"run": "999999", "pixels": ZERO}, 404, "not_found", ["999999"]),
    ("non-numeric-run", lambda rid: {"run": "abc", "pixels": ZERO}, 404, "not_found", ["abc"]),
    ("empty-run", lambda rid: {"run": "", "pixels": ZERO}, 404, "not_found", []),
    ("run-with-sign", lambda rid: {"run": "-" + rid, "pixels": ZERO}, 404, "not_found", []),
]


@pytest.mark.parametrize("make,status,code,words", [c[1:] for c in PREDICT_CASES],
                         ids=[c[0] for c in PREDICT_CASES])
def test_predict_rejects(client, trained, make, status, code, words):
    rid = trained["dnn"]["id"]
    if callable(make):
        r = client.post("/predict", data=json.dumps(make(rid)), headers=CT_JSON)
    else:
        r = client.post("/predict", data=make, headers=CT_JSON)
    expect_error(r, "/predict", "post", status, code, *words)


PIXELS_CASES = [
    # id, "pixels" value, words the message must hold
    ("empty-list", [], ["pixels is an empty list", "784 numbers in 0..1"]),
    ("base64-object", {"b64": "AAAA"},
     ["base64", "application/octet-stream", "n x 784 uint8"]),
    ("base64-string", "AAAA", ["base64", "application/octet-stream"]),
    ("number", 7, ["pixels is not an array", "784"]),
]


@pytest.mark.parametrize("pixels,words", [c[1:] for c in PIXELS_CASES],
                         ids=[c[0] for c in PIXELS_CASES])
def test_predict_says_what_is_wrong_with_pixels(client, trained, pixels, words):
    """Pixels that were sent are not called missing."""
    rid = trained["dnn"]["id"]
    r = client.post("/predict", data=json.dumps({"run": rid, "pixels": pixels}),
                    headers=CT_JSON)
    msg = expect_error(r, "/predict", "post", 400, "bad_field", *words)
    assert "required" not in msg
    r = client.post("/predict", data=json.dumps({"run": rid}), headers=CT_JSON)
    expect_error(r, "/predict", "post", 400, "bad_field", "pixels is required")


RAW_CASES = [
    # id, n bytes, query run ("$RUN" = a succeeded run), status, code, words
    ("raw-783-bytes", 783, "$RUN", 400, "bad_pixels", ["784", "783"]),
    ("raw-785-bytes", 785, "$RUN", 400, "bad_pixels", ["784", "785"]),
    ("raw-empty", 0, "$RUN", 400, "bad_pixels", ["784"]),
    ("raw-too-many-images", 784 * 10001, "$RUN", 400, "bad_pixels", ["10001", "10000"]),
    ("raw-unknown-run", 784, "999999", 404, "not_found", ["999999"]),
    ("raw-non-numeric-run", 784, "x1", 404, "not_found", ["x1"]),
]


@pytest.mark.parametrize("n,run,status,code,words", [c[1:] for c in RAW_CASES],
                         ids=[c[0] for c in RAW_CASES])
def test_predict_octet_stream_rejects(client, trained, n, run, status, code, words):
    run = trained["dnn"]["id"] if run == "$RUN" else run
    r = client.post("/predict", params={"run": run}, data=b"\x00" * n, headers=CT_RAW)
    expect_error(r, "/predict", "post", status, code, *words)


def test_predict_with_unfinished_run_is_409(client, cancelled_run):
    rid = cancelled_run["id"]
    r = client.post_json("/predict", {"run": rid, "pixels": ZERO})
    expect_error(r, "/predict", "post", 409, "run_not_succeeded", rid, "cancelled")
    r = client.post("/predict", params={"run": rid}, data=b"\x00" * 784, headers=CT_RAW)
    expect_error(r, "/predict", "post", 409, "run_not_succeeded", rid)


def test_predict_with_queued_or_running_run_is_409(client):
    run = client.create_run(LONG_RUN)
    try:
        r = client.post_json("/predict", {"run": run["id"], "pixels": ZERO})
        msg = expect_error(r, "/predict", "post", 409, "run_not_succeeded", run["id"])
        assert "queued" in msg or "running" in msg
    finally:
        client.cancel(run["id"])
        client.wait_for_run(run["id"], "cancelled", timeout=30)


# ------------------------------------------------------------ unknown ids

RUN_ROUTES = [
    ("GET", "/runs/{id}", ""),
    ("DELETE", "/runs/{id}", ""),
    ("POST", "/runs/{id}/cancel", ""),
    ("GET", "/runs/{id}/confusion", ""),
    ("POST", "/runs/{id}/evaluate", ""),
    ("GET", "/runs/{id}/weights", ""),
    ("GET", "/runs/{id}/events", ""),
    ("GET", "/runs/{id}/confusion.png", ""),
    ("GET", "/runs/{id}/weights.png", ""),
    ("GET", "/runs/{id}/loss.png", ""),
]
UNKNOWN_IDS = ["999999", "abc", "0", "-1", "1.5", "1e3", "12345678901234567890"]


@pytest.mark.parametrize("method,template,_", RUN_ROUTES, ids=[f"{m} {t}" for m, t, _ in RUN_ROUTES])
@pytest.mark.parametrize("run_id", UNKNOWN_IDS)
def test_unknown_run_is_404(client, method, template, _, run_id):
    r = client.request(method, template.replace("{id}", run_id))
    expect_error(r, template, method.lower(), 404, "not_found", run_id)


@pytest.mark.parametrize("name", ["nope", "Bad", "a b", "-x", "x" * 64])
def test_unknown_dataset_is_404(client, name):
    r = client.get(f"/datasets/{name}")
    expect_error(r, "/datasets/{name}", "get", 404, "not_found")


# ------------------------------------------------------------ wrong methods

# Every method but the route's own (and HEAD, which every GET route answers)
# on every path of the route table: a route added to routes.c is covered.
PROBE_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def _wrong_methods():
    """[(method, path, template)]: each probe method a path does not route."""
    allowed = {}
    for method, path, template in route_cases():
        allowed.setdefault((path, template), set()).add(method)
    return [(m, path, template) for (path, template), methods in sorted(allowed.items())
            for m in PROBE_METHODS if m not in methods]


WRONG_METHODS = _wrong_methods()


@pytest.mark.parametrize("method,path,template", WRONG_METHODS,
                         ids=[f"{m} {p}" for m, p, _ in WRONG_METHODS])
def test_wrong_method_is_405_with_allow(client, openapi, method, path, template):
    r = client.request(method, path)
    body = openapi.validate(r, template, method, 405)
    assert body["error"]["code"] == "method_not_allowed"
    assert "Allow" in r.headers


# ------------------------------------------------------------ wrong content types

WRONG_TYPES = [
    # id, path, template, content type (None: no header), body
    ("runs-text-plain", "/runs", "/runs", "text/plain", b'{"model": "linear"}', ["application/json"]),
    ("runs-no-type", "/runs", "/runs", None, b'{"model": "linear"}', ["application/json"]),
    ("runs-form", "/runs", "/runs", "application/x-www-form-urlencoded", b"model=linear",
     ["application/json"]),
    ("runs-json-prefix", "/runs", "/runs", "application/jsonx", b'{"model": "linear"}',
     ["application/json"]),
    ("runs-csv", "/runs", "/runs", "text/csv", b"1,2,3", ["application/json"]),
    ("evaluate-text-plain", "/runs/1/evaluate", "/runs/{id}/evaluate", "text/plain", b"{}",
     ["application/json"]),
    ("predict-text-plain", "/predict", "/predict", "text/plain", b'{"pixels": []}',
     ["application/json", "octet-stream"]),
    ("predict-no-type", "/predict", "/predict", None, b'{"pixels": []}', ["application/json"]),
    ("predict-no-type-no-body", "/predict", "/predict", None, b"", ["application/json"]),
    ("predict-image-png", "/predict", "/predict", "image/png", b"\x89PNG", ["octet-stream"]),
    ("datasets-json", "/datasets?name=x1", "/datasets", "application/json", b"{}", ["text/csv"]),
    ("datasets-no-type", "/datasets?name=x2", "/datasets", None, b"1,2", ["text/csv"]),
    ("datasets-text-plain", "/datasets?name=x3", "/datasets", "text/plain", b"1,2", ["text/csv"]),
]


@pytest.mark.parametrize("path,template,ctype,body,words", [c[1:] for c in WRONG_TYPES],
                         ids=[c[0] for c in WRONG_TYPES])
def test_wrong_content_type_is_415(client, path, template, ctype, body, words):
    headers = {"Content-Type": ctype} if ctype else {}
    r = client.post(path, data=body, headers=headers)
    expect_error(r, template, "post", 415, "unsupported_media_type", *words)


# ------------------------------------------------------------ bad query parameters

QUERY_CASES = [
    # id, path, template, params, words
    ("status-foo", "/runs", "/runs", {"status": "foo"}, ["status"]),
    ("status-case", "/runs", "/runs", {"status": "Succeeded"}, ["status"]),
    ("model-rnn", "/runs", "/runs", {"model": "rnn"}, ["model"]),
    ("limit-zero", "/runs", "/runs", {"limit": "0"}, ["limit"]),
    ("limit-over-max", "/runs", "/runs", {"limit": "1001"}, ["limit"]),
    ("limit-negative", "/runs", "/runs", {"limit": "-1"}, ["limit"]),
    ("limit-text", "/runs", "/runs", {"limit": "ten"}, ["limit"]),
    ("limit-empty", "/runs", "/runs", {"limit": ""}, ["limit"]),
    ("limit-fraction", "/runs", "/runs", {"limit": "1.5"}, ["limit"]),
    ("offset-negative", "/runs", "/runs", {"offset": "-1"}, ["offset"]),
    ("offset-text", "/runs", "/runs", {"offset": "x"}, ["offset"]),
    ("set-foo", "/runs/$DNN/confusion", "/runs/{id}/confusion", {"set": "foo"}, ["set"]),
    ("set-empty", "/runs/$DNN/confusion", "/runs/{id}/confusion", {"set": ""}, ["set"]),
    ("layer-99", "/runs/$DNN/weights", "/runs/{id}/weights", {"layer": "99"}, ["layer"]),
    ("layer-negative", "/runs/$DNN/weights", "/runs/{id}/weights", {"layer": "-1"}, ["layer"]),
    ("layer-text", "/runs/$DNN/weights", "/runs/{id}/weights", {"layer": "first"}, ["layer"]),
    ("layer-beyond-dnn", "/runs/$DNN/weights", "/runs/{id}/weights", {"layer": "2"},
     ["layer", "this run"]),
    ("layer-beyond-linear", "/runs/$LINEAR/weights", "/runs/{id}/weights", {"layer": "1"},
     ["layer", "this run"]),
]


@pytest.mark.parametrize("path,template,params,words", [c[1:] for c in QUERY_CASES],
                         ids=[c[0] for c in QUERY_CASES])
def test_bad_query_is_400(client, trained, path, template, params, words):
    path = path.replace("$DNN", trained["dnn"]["id"]).replace("$LINEAR", trained["linear"]["id"])
    r = client.get(path, params=params)
    expect_error(r, template, "get", 400, "bad_query", *words)


@pytest.mark.parametrize("params", [{}, {"name": ""}, {"name": "Bad"}, {"name": "a b"},
                                    {"name": "_x"}, {"name": "x" * 64}, {"name": "../x"}],
                         ids=["missing", "empty", "upper", "space", "leading-underscore",
                              "too-long", "path"])
def test_upload_bad_name_is_400(client, mnist, params):
    r = client.post("/datasets", params=params, data=mnist.csv("train", 2).encode(), headers=CT_CSV)
    expect_error(r, "/datasets", "post", 400, "bad_query", "name")


# ------------------------------------------------------------ bad CSV uploads


def _row(label="7", pixels=None):
    pixels = ["0"] * 784 if pixels is None else pixels
    return ",".join([label] + pixels)


GOOD = _row()
CSV_CASES = [
    # id, body, words (each case's bad row is on line 3)
    ("too-few-columns", "\n".join([GOOD, GOOD, _row(pixels=["0"] * 783)]) + "\n",
     ["line 3", "785", "784"]),
    ("too-many-columns", "\n".join([GOOD, GOOD, _row(pixels=["0"] * 785)]) + "\n",
     ["line 3", "785", "786"]),
    ("label-10", "\n".join([GOOD, GOOD, _row(label="10")]) + "\n", ["line 3", "label", "10"]),
    ("label-negative", "\n".join([GOOD, GOOD, _row(label="-1")]) + "\n", ["line 3", "label"]),
    ("pixel-256", "\n".join([GOOD, GOOD, _row(pixels=["0"] * 100 + ["256"] + ["0"] * 683)]) + "\n",
     ["line 3", "256", "0..255"]),
    ("pixel-negative", "\n".join([GOOD, GOOD, _row(pixels=["-3"] + ["0"] * 783)]) + "\n",
     ["line 3", "-3"]),
    ("pixel-not-number", "\n".join([GOOD, GOOD, _row(pixels=["0"] * 9 + ["x"] + ["0"] * 774)]) + "\n",
     ["line 3", "'x'", "not a number"]),
    ("pixel-fraction", "\n".join([GOOD, GOOD, _row(pixels=["0.5"] + ["0"] * 783)]) + "\n",
     ["line 3", "0.5"]),
    ("label-not-number", "\n".join([GOOD, GOOD, _row(label="7x")]) + "\n", ["line 3", "7x"]),
    ("empty-field", "\n".join([GOOD, GOOD, _row(pixels=[""] + ["0"] * 783)]) + "\n",
     ["line 3", "empty"]),
    ("last-line-without-newline", "\n".join([GOOD, GOOD, _row(pixels=["0"] * 10)]),
     ["line 3", "785"]),
    ("pixel-scaled-unit", "\n".join([GOOD, GOOD, _row(pixels=["0.5", "1"] + ["0.0"] * 782)]) + "\n",
     ["line 3", "0.5", "integers 0..255", "scaled to 0..1"]),
    ("lines-run-together", GOOD + GOOD + GOOD, ["line 1", "line breaks", "--data-binary"]),
    ("empty-upload", "", ["no rows"]),
    ("only-header", "label," + ",".join(f"p{i}" for i in range(784)) + "\n", ["no rows"]),
]


@pytest.mark.parametrize("body,words", [c[1:] for c in CSV_CASES], ids=[c[0] for c in CSV_CASES])
def test_bad_csv_is_400_and_nothing_stored(client, validate, body, words, request):
    name = "bad-" + request.node.callspec.id.lower().replace("_", "-")[:50]
    r = client.post("/datasets", params={"name": name}, data=body.encode(), headers=CT_CSV)
    expect_error(r, "/datasets", "post", 400, "bad_csv", *words)
    r = client.get(f"/datasets/{name}")
    expect_error(r, "/datasets/{name}", "get", 404, "not_found", name)
    listed = validate(client.get("/datasets"), "/datasets", "get", 200)["datasets"]
    assert name not in [d["name"] for d in listed]
    # the name is still free: a good upload under it works
    r = client.post("/datasets", params={"name": name}, data=(GOOD + "\n" + GOOD + "\n").encode(),
                    headers=CT_CSV)
    assert validate(r, "/datasets", "post", 201)["examples"] == 2


# ------------------------------------------------------------ evaluate bodies

EVAL_CASES = [
    ("dataset-unknown", {"dataset": "nope"}, "bad_field", ["dataset", "nope"]),
    ("dataset-bad-name", {"dataset": "Bad Name"}, "bad_field", ["dataset"]),
    ("dataset-number", {"dataset": 5}, "bad_field", ["dataset"]),
    ("unknown-field", {"set": "test"}, "bad_field", ["set"]),
    ("not-object", [1], "bad_field", ["object"]),
    ("bad-json", "{", "bad_json", ["JSON"]),
]


@pytest.mark.parametrize("body,code,words", [c[1:] for c in EVAL_CASES], ids=[c[0] for c in EVAL_CASES])
def test_evaluate_rejects(client, trained, body, code, words):
    rid = trained["linear"]["id"]
    data = body if isinstance(body, str) else json.dumps(body)
    r = client.post(f"/runs/{rid}/evaluate", data=data, headers=CT_JSON)
    expect_error(r, "/runs/{id}/evaluate", "post", 400, code, *words)


# ------------------------------------------------------------ afterwards


def test_zz_server_still_healthy_after_the_error_table(server, client, validate, trained):
    assert server.alive()
    body = validate(client.get("/healthz"), "/healthz", "get", 200)
    assert body["status"] == "ok"
    # and still serves
    r = client.post_json("/predict", {"run": trained["dnn"]["id"], "pixels": ZERO})
    validate(r, "/predict", "post", 200)
    assert "AddressSanitizer" not in server.stderr()
    assert "runtime error" not in server.stderr()

