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
