"""POST /predict with real MNIST test images: JSON single and batch, raw
octet-stream, and the default (newest succeeded) run."""
import json
import math

import pytest

N_IMAGES = 100


@pytest.fixture(scope="module")
def test_images(mnist):
    return mnist.images("test", N_IMAGES)


def scaled(img):
    """uint8 pixels -> pixels/255, as the exercise scales them."""
    return [b / 255.0 for b in img]


def _check_prediction(p):
    assert math.isclose(sum(p["probabilities"]), 1.0, abs_tol=1e-4)
    best = max(range(10), key=lambda k: p["probabilities"][k])
    assert p["class"] == best


def test_predict_single_image(client, validate, trained, test_images):
    imgs, labels = test_images
    rid = trained["dnn"]["id"]
    r = client.post_json("/predict", {"run": rid, "pixels": scaled(imgs[0])})
    body = validate(r, "/predict", "post", 200)
    assert body["run"] == rid and len(body["predictions"]) == 1
    _check_prediction(body["predictions"][0])
    assert body["predictions"][0]["class"] == labels[0]


def test_predict_batch_dnn_accuracy(client, validate, trained, test_images):
    imgs, labels = test_images
    rid = trained["dnn"]["id"]
    r = client.post_json("/predict", {"run": rid, "pixels": [scaled(i) for i in imgs]})
    body = validate(r, "/predict", "post", 200)
    assert body["run"] == rid and len(body["predictions"]) == N_IMAGES
    for p in body["predictions"]:
        _check_prediction(p)
    correct = sum(p["class"] == y for p, y in zip(body["predictions"], labels))
    assert correct / N_IMAGES >= 0.85, f"only {correct}/{N_IMAGES} right"


def test_predict_batch_linear_accuracy(client, validate, trained, test_images):
    imgs, labels = test_images
    rid = trained["linear"]["id"]
    r = client.post_json("/predict", {"run": rid, "pixels": [scaled(i) for i in imgs]})
    body = validate(r, "/predict", "post", 200)
    correct = sum(p["class"] == y for p, y in zip(body["predictions"], labels))
    assert correct / N_IMAGES >= 0.8, f"only {correct}/{N_IMAGES} right"


def test_batch_of_one_equals_single(client, validate, trained, test_images):
    imgs, _ = test_images
    rid = trained["dnn"]["id"]
    single = validate(client.post_json("/predict", {"run": rid, "pixels": scaled(imgs[3])}),
                      "/predict", "post", 200)
    batch = validate(client.post_json("/predict", {"run": rid, "pixels": [scaled(imgs[3])]}),
                     "/predict", "post", 200)
    assert single == batch


def test_octet_stream_matches_json(client, validate, trained, test_images):
    imgs, labels = test_images
    rid = trained["dnn"]["id"]
    js = validate(client.post_json("/predict", {"run": rid, "pixels": [scaled(i) for i in imgs]}),
                  "/predict", "post", 200)
    r = client.post("/predict", params={"run": rid}, data=b"".join(imgs),
                    headers={"Content-Type": "application/octet-stream"})
    raw = validate(r, "/predict", "post", 200)
    assert raw["run"] == rid and len(raw["predictions"]) == N_IMAGES
    assert [p["class"] for p in raw["predictions"]] == [p["class"] for p in js["predictions"]]
    for a, b in zip(raw["predictions"], js["predictions"]):
        for x, y in zip(a["probabilities"], b["probabilities"]):
            assert math.isclose(x, y, abs_tol=1e-5)


def test_predict_without_run_uses_newest_succeeded(client, validate, trained, test_images):
    imgs, _ = test_images
    newest = validate(client.get("/runs", params={"status": "succeeded", "limit": 1}),
                      "/runs", "get", 200)["runs"][0]["id"]
    body = validate(client.post_json("/predict", {"pixels": scaled(imgs[0])}),
                    "/predict", "post", 200)
    assert body["run"] == newest
    explicit = validate(client.post_json("/predict", {"run": newest, "pixels": scaled(imgs[0])}),
                        "/predict", "post", 200)
    assert explicit == body
    # the same for octet-stream without ?run=
    r = client.post("/predict", data=imgs[0], headers={"Content-Type": "application/octet-stream"})
    raw = validate(r, "/predict", "post", 200)
    assert raw["run"] == newest
    assert raw["predictions"][0]["class"] == body["predictions"][0]["class"]


def test_predict_ignores_run_query_for_json(client, validate, trained, test_images):
    imgs, _ = test_images
    rid = trained["dnn"]["id"]
    body = validate(client.post("/predict", params={"run": "999999"},
                                json={"run": rid, "pixels": scaled(imgs[0])}),
                    "/predict", "post", 200)
    assert body["run"] == rid


def test_content_type_with_charset_parameter(client, validate, trained, test_images):
    imgs, _ = test_images
    rid = trained["dnn"]["id"]
    r = client.post("/predict", data=json.dumps({"run": rid, "pixels": scaled(imgs[0])}),
                    headers={"Content-Type": "application/json; charset=utf-8"})
    validate(r, "/predict", "post", 200)


def test_predict_pixel_bounds_accepted(client, validate, trained):
    rid = trained["linear"]["id"]
    for value in (0, 1, 0.0, 1.0):
        r = client.post_json("/predict", {"run": rid, "pixels": [value] * 784})
        validate(r, "/predict", "post", 200)


def test_predict_all_test_images_matches_evaluate(client, validate, trained, mnist):
    """10000 images in one octet-stream request (the default --max-batch):
    the classes give evaluate's accuracy and confusion (rows = true labels),
    and the probabilities give its mean log loss."""
    imgs, labels = mnist.images("test", 10000)
    rid = trained["linear"]["id"]
    r = client.post("/predict", params={"run": rid}, data=b"".join(imgs),
                    headers={"Content-Type": "application/octet-stream"})
    preds = validate(r, "/predict", "post", 200)["predictions"]
    assert len(preds) == 10000
    e = validate(client.post_json(f"/runs/{rid}/evaluate", {"dataset": "mnist-test"}),
                 "/runs/{id}/evaluate", "post", 200)
    counts = [[0] * 10 for _ in range(10)]
    loss = 0.0
    for p, y in zip(preds, labels):
        counts[y][p["class"]] += 1
        loss -= math.log(max(p["probabilities"][y], 1e-30))
    assert counts == e["confusion"]["counts"]
    assert math.isclose(sum(counts[k][k] for k in range(10)) / 10000, e["accuracy"], abs_tol=1e-12)
    assert math.isclose(loss / 10000, e["log_loss"], rel_tol=1e-3)


def _softmax(z):
    m = max(z)
    ex = [math.exp(v - m) for v in z]
    s = sum(ex)
    return [v / s for v in ex]


def _dense(W, b, x):
    return [sum(w * xi for w, xi in zip(row, x)) + bias for row, bias in zip(W, b)]


def test_weights_reproduce_predictions(client, validate, trained, test_images):
    """The weights are laid out [unit][input]: a forward pass computed here
    from GET .../weights gives the server's probabilities."""
    imgs, _ = test_images
    x = [scaled(i) for i in imgs[:5]]
    lin = trained["linear"]["id"]
    w = validate(client.get(f"/runs/{lin}/weights"), "/runs/{id}/weights", "get", 200)
    got = validate(client.post_json("/predict", {"run": lin, "pixels": x}), "/predict", "post", 200)
    for xi, p in zip(x, got["predictions"]):
        mine = _softmax(_dense(w["values"], w["biases"], xi))
        for a, b in zip(mine, p["probabilities"]):
            assert math.isclose(a, b, abs_tol=1e-4)

    dnn = trained["dnn"]["id"]
    w0 = validate(client.get(f"/runs/{dnn}/weights", params={"layer": 0}), "/runs/{id}/weights", "get", 200)
    w1 = validate(client.get(f"/runs/{dnn}/weights", params={"layer": 1}), "/runs/{id}/weights", "get", 200)
    got = validate(client.post_json("/predict", {"run": dnn, "pixels": x}), "/predict", "post", 200)
    for xi, p in zip(x, got["predictions"]):
        h = [max(0.0, v) for v in _dense(w0["values"], w0["biases"], xi)]
        mine = _softmax(_dense(w1["values"], w1["biases"], h))
        for a, b in zip(mine, p["probabilities"]):
            assert math.isclose(a, b, abs_tol=1e-4)


def test_concurrent_predictions_while_training(client, validate, trained, test_images):
    """Predict requests in parallel threads, while a run trains, all get the
    same answers as one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    imgs, _ = test_images
    rid = trained["dnn"]["id"]
    body = {"run": rid, "pixels": [scaled(i) for i in imgs[:10]]}
    expected = validate(client.post_json("/predict", body), "/predict", "post", 200)
    bg = client.create_run({"model": "dnn", "hidden_units": [32], "steps": 300, "periods": 3, "seed": 9})

    def worker(_):
        out = []
        with requests.Session() as s:
            for _ in range(8):
                r = s.post(client.url("/predict"), json=body, timeout=60)
                out.append(validate(r, "/predict", "post", 200))
                r = s.get(client.url(f"/runs/{bg['id']}"), timeout=60)
                validate(r, "/runs/{id}", "get", 200)
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [x for chunk in pool.map(worker, range(8)) for x in chunk]
    assert len(results) == 64 and all(x == expected for x in results)
    client.wait_for_run(bg["id"], "succeeded")
