"""Fashion-MNIST built in as fashion-mnist (60,000) and fashion-mnist-test
(10,000), from Debian's dataset-fashion-mnist linked by `make data` as
<data dir>/fashion-mnist: listed with its class names, protected like MNIST
(upload and delete of the names are 409), an example names its class, a
run trains on it, its confusion names the classes, and evaluate defaults
to the run's own test set."""
from pathlib import Path

import pytest

from conftest import Server, expect_error

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def client(tmp_path_factory, data_dir):
    """A server of this module's own, so that its runs do not crowd the
    session server's run list (other modules read its first page)."""
    s = Server(tmp_path_factory.mktemp("fashion-server")).start()
    yield s.client
    s.stop()


@pytest.fixture(scope="module", autouse=True)
def fashion_present(data_dir):
    if not (Path(data_dir) / "fashion-mnist").exists():
        pytest.skip(f"{data_dir}/fashion-mnist is absent: run `make data` "
                    "(Debian's dataset-fashion-mnist)")


def test_listed_with_class_names(client, validate):
    body = validate(client.get("/datasets"), "/datasets", "get", 200)
    by_name = {d["name"]: d for d in body["datasets"]}
    assert by_name["fashion-mnist"]["examples"] == 60000
    assert by_name["fashion-mnist-test"]["examples"] == 10000
    for name in ("fashion-mnist", "fashion-mnist-test"):
        d = by_name[name]
        assert d["builtin"] is True and d["class_names"] == CLASSES
        assert d["rows"] == 28 and d["cols"] == 28
    # Fashion-MNIST is balanced: 6,000 and 1,000 a class
    assert by_name["fashion-mnist"]["label_counts"] == [6000] * 10
    assert by_name["fashion-mnist-test"]["label_counts"] == [1000] * 10
    assert "class_names" not in by_name["mnist"]


def test_builtin_names_are_protected(client, mnist):
    for name in ("fashion-mnist", "fashion-mnist-test"):
        r = client.post("/datasets", params={"name": name}, data=mnist.csv("train", 5).encode(),
                        headers={"Content-Type": "text/csv"})
        expect_error(r, "/datasets", "post", 409, "dataset_exists", name)
        expect_error(client.delete(f"/datasets/{name}"), "/datasets/{name}", "delete", 409,
                     "dataset_builtin", name)


def test_example_names_its_class(client, validate):
    e = validate(client.get("/datasets/fashion-mnist-test/examples/0"),
                 "/datasets/{name}/examples/{index}", "get", 200)
    assert e["label"] == 9 and e["class_name"] == "Ankle boot"
    e = validate(client.get("/datasets/mnist-test/examples/0"),
                 "/datasets/{name}/examples/{index}", "get", 200)
    assert "class_name" not in e


def test_train_confusion_and_evaluate(client, validate):
    run = client.train({"model": "dnn", "hidden_units": [32], "steps": 200, "periods": 2,
                        "seed": 1, "dataset": "fashion-mnist"})
    assert run["validation_accuracy"] > 0.6
    rid = run["id"]
    conf = validate(client.get(f"/runs/{rid}/confusion"), "/runs/{id}/confusion", "get", 200)
    assert conf["class_names"] == CLASSES
    e = validate(client.post(f"/runs/{rid}/evaluate"), "/runs/{id}/evaluate", "post", 200)
    assert e["dataset"] == "fashion-mnist-test" and e["examples"] == 10000
    assert e["confusion"]["class_names"] == CLASSES
    test = validate(client.get(f"/runs/{rid}/confusion", params={"set": "test"}),
                    "/runs/{id}/confusion", "get", 200)
    assert test["class_names"] == CLASSES
