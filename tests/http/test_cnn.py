"""The cnn model kind end to end: POST /runs with conv_layers (defaults,
params echo, the 400s naming the layer), then everything the other kinds
have on a small cnn trained once (periods, confusion, evaluate, predict as
JSON and as raw bytes, /weights of a convolution and of the dense layers,
weights.png of the first convolution's filters), the memory estimate's 400,
and `mnistd train --model cnn`."""
import json
import struct
import subprocess

import pytest

from conftest import Server, expect_error, require_bin

# A small, quick cnn: one convolution of 4 5x5 filters pooled by 2
# (28 -> 24 -> 12), 32 hidden units; a couple of seconds on one core.
CNN_SMALL = {"model": "cnn", "conv_layers": [{"filters": 4, "kernel": 5, "pool": 2}],
             "hidden_units": [32], "steps": 200, "periods": 2, "seed": 1}


@pytest.fixture(scope="module")
def client(tmp_path_factory, data_dir):
    """A server of this module's own, so that its runs do not crowd the
    session server's run list (other modules read its first page)."""
    s = Server(tmp_path_factory.mktemp("cnn-server")).start()
    yield s.client
    s.stop()


@pytest.fixture(scope="module")
def cnn_run(client):
    return client.train(CNN_SMALL, timeout=180)


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_small_cnn_trains_and_echoes_its_layers(cnn_run):
    p = cnn_run["params"]
    assert p["model"] == "cnn" and p["hidden_units"] == [32]
    assert p["conv_layers"] == [{"filters": 4, "kernel": 5, "pool": 2, "padding": "valid"}]
    assert p["optimizer"] == "adam" and p["learning_rate"] == 0.001
    assert [q["step"] for q in cnn_run["periods"]] == [100, 200]
    assert cnn_run["validation_accuracy"] > 0.8


def test_defaults_fill_a_cnn(client, validate):
    run = client.create_run({"model": "cnn", "steps": 2, "periods": 1})
    p = run["params"]
    assert p["conv_layers"] == [{"filters": 16, "kernel": 5, "pool": 2, "padding": "valid"},
                                {"filters": 32, "kernel": 5, "pool": 2, "padding": "valid"}]
    assert p["hidden_units"] == [100] and p["dropout"] == 0
    assert p["optimizer"] == "adam" and p["learning_rate"] == 0.001
    done = client.wait_for_run(run["id"], "succeeded", timeout=120)
    # the params of any run are a valid request
    again = client.create_run(done["params"])
    assert again["params"] == done["params"]
    client.wait_for_run(again["id"], "succeeded", timeout=120)


@pytest.mark.parametrize("body,words", [
    # 28 -> 24 -> 12 -> 8 -> 4, and a 5x5 kernel does not fit in 4x4
    ({"conv_layers": [{"filters": 2, "kernel": 5, "pool": 2}] * 2 +
      [{"filters": 2, "kernel": 5}]}, ["conv_layers[2]", "1x1"]),
    ({"conv_layers": [{"filters": 2, "kernel": 11, "pool": 4},
                      {"filters": 2, "kernel": 2, "pool": 4}]}, ["conv_layers[1]", "1x1"]),
    ({"conv_layers": [{"filters": 0, "kernel": 5}]}, ["conv_layers[0].filters", "1..256"]),
    ({"conv_layers": [{"filters": 257, "kernel": 5}]}, ["conv_layers[0].filters"]),
    ({"conv_layers": [{"filters": 2, "kernel": 12}]}, ["conv_layers[0].kernel", "1..11"]),
    ({"conv_layers": [{"filters": 2}]}, ["conv_layers[0].kernel"]),
    ({"conv_layers": [{"filters": 2, "kernel": 3, "pool": 5}]}, ["conv_layers[0].pool"]),
    ({"conv_layers": [{"filters": 2, "kernel": 3, "padding": "full"}]},
     ["conv_layers[0].padding", "same"]),
    ({"conv_layers": [{"filters": 2, "kernel": 3, "stride": 2}]},
     ["conv_layers[0]", "stride"]),
    ({"conv_layers": []}, ["conv_layers"]),
    ({"conv_layers": [3]}, ["conv_layers[0]"]),
    ({"conv_layers": [{"filters": 1, "kernel": 1, "pool": 2}] * 4, "hidden_units": [8]},
     ["at most 8 layers"]),
])
def test_bad_conv_layers_name_the_layer(client, body, words):
    r = client.post_json("/runs", dict({"model": "cnn", "steps": 2, "periods": 1}, **body))
    expect_error(r, "/runs", "post", 400, "bad_field", *words)


def test_conv_layers_only_for_cnn(client):
    r = client.post_json("/runs", {"model": "dnn", "conv_layers": [{"filters": 2, "kernel": 3}]})
    expect_error(r, "/runs", "post", 400, "bad_field", "conv_layers", "cnn")


def test_same_padding_keeps_the_map(client):
    # with "same" padding three 5x5 convolutions fit where "valid" ones do not
    run = client.train({"model": "cnn", "steps": 2, "periods": 1, "hidden_units": [],
                        "conv_layers": [{"filters": 2, "kernel": 5, "pool": 2, "padding": "same"},
                                        {"filters": 2, "kernel": 4, "pool": 2, "padding": "same"},
                                        {"filters": 2, "kernel": 5, "padding": "same"}]})
    assert run["params"]["hidden_units"] == []


def test_memory_estimate_names_the_largest_convolution(client):
    body = {"model": "cnn", "steps": 2, "periods": 1, "examples": 20000,
            "validation_examples": 5000, "batch_size": 10000,
            "conv_layers": [{"filters": 8, "kernel": 3, "pool": 2},
                            {"filters": 256, "kernel": 3, "padding": "same"}]}
    expect_error(client.post_json("/runs", body), "/runs", "post", 400, "run_too_large",
                 "MiB", "conv_layers[1]")


def test_confusion_and_evaluate(client, validate, cnn_run):
    rid = cnn_run["id"]
    conf = validate(client.get(f"/runs/{rid}/confusion"), "/runs/{id}/confusion", "get", 200)
    assert sum(map(sum, conf["counts"])) == 2500
    e = validate(client.post(f"/runs/{rid}/evaluate"), "/runs/{id}/evaluate", "post", 200)
    assert e["examples"] == 10000 and 0.8 < e["accuracy"] <= 1


def test_predict_json_and_raw_bytes_agree(client, validate, cnn_run, mnist):
    rid = cnn_run["id"]
    imgs, labels = mnist.images("test", 100)
    js = validate(client.post_json("/predict", {"run": rid,
                                                "pixels": [mnist.scaled(i) for i in imgs]}),
                  "/predict", "post", 200)
    raw = validate(client.post("/predict", params={"run": rid}, data=b"".join(imgs),
                               headers={"Content-Type": "application/octet-stream"}),
                   "/predict", "post", 200)
    assert js == raw
    preds = [p["class"] for p in js["predictions"]]
    assert sum(p == y for p, y in zip(preds, labels)) >= 80
    one = validate(client.post_json("/predict", {"run": rid, "pixels": mnist.scaled(imgs[0])}),
                   "/predict", "post", 200)
    assert one["predictions"][0]["class"] == preds[0]


def test_weights_of_a_convolution_and_the_dense_layers(client, validate, cnn_run):
    rid = cnn_run["id"]
    w = validate(client.get(f"/runs/{rid}/weights"), "/runs/{id}/weights", "get", 200)
    assert w["layer"] == 0 and w["shape"] == [4, 25]
    assert len(w["values"]) == 4 and all(len(row) == 25 for row in w["values"])
    assert len(w["biases"]) == 4
    w = validate(client.get(f"/runs/{rid}/weights", params={"layer": 1}),
                 "/runs/{id}/weights", "get", 200)
    assert w["shape"] == [32, 4 * 12 * 12]
    w = validate(client.get(f"/runs/{rid}/weights", params={"layer": 2}),
                 "/runs/{id}/weights", "get", 200)
    assert w["shape"] == [10, 32]
    expect_error(client.get(f"/runs/{rid}/weights", params={"layer": 3}),
                 "/runs/{id}/weights", "get", 400, "bad_query")


def test_weights_png_tiles_the_first_convolutions_filters(client, cnn_run):
    rid = cnn_run["id"]
    r = client.get(f"/runs/{rid}/weights.png")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    big = png_size(r.content)
    r = client.get(f"/runs/{rid}/weights.png", params={"scale": 2})
    assert r.status_code == 200
    small = png_size(r.content)
    # four 5x5 tiles: scaled 16 by default (84 / 5), 2 when asked
    assert big[0] > small[0] and big[1] > small[1]


def test_cli_trains_a_cnn(data_dir):
    layers = json.dumps([{"filters": 2, "kernel": 5, "pool": 2}])
    cmd = [str(require_bin()), "train", "--data-dir", str(data_dir), "--model", "cnn",
           "--conv-layers", layers, "--hidden-units", "16", "--steps", "50",
           "--periods", "1", "--examples", "2000", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    o = json.loads(out.stdout)
    assert o["params"]["conv_layers"] == [{"filters": 2, "kernel": 5, "pool": 2,
                                           "padding": "valid"}]
    bad = subprocess.run(cmd[:-1] + ["--conv-layers", "[{"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "--conv-layers" in bad.stderr
