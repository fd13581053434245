"""The issue's accuracy targets on the full training sets, which need
minutes of training: they run only with MNISTD_LONG_TESTS=1 (`make http
LONG_TESTS=1`, or `make test LONG_TESTS=1`), and are skipped otherwise.

- the default cnn (conv 16x5 pool 2, 32x5 pool 2, [100], Adam 0.001) on
  MNIST's 60,000 (5,000 validating), 4,000 steps of 50 (about 3.6 epochs):
  at least 0.985 on mnist-test;
- dnn [100, 100] on Fashion-MNIST, same head and steps: at least 0.85 on
  fashion-mnist-test; the default cnn there: at least 0.89.

Measured time: see the report of the commit that added them (they were not
run on the shared development machine; each cnn run is about 200,000
examples forward and backward, minutes on one core)."""
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("MNISTD_LONG_TESTS") != "1",
                                reason="minutes of training: set MNISTD_LONG_TESTS=1")

FULL = {"examples": 60000, "validation_examples": 5000, "steps": 4000, "batch_size": 50,
        "periods": 4, "seed": 1}


def train_and_test(client, validate, spec, timeout=3600):
    run = client.train(spec, timeout=timeout)
    e = validate(client.post(f"/runs/{run['id']}/evaluate"), "/runs/{id}/evaluate", "post", 200)
    return run, e


def test_default_cnn_on_full_mnist(client, validate):
    run, e = train_and_test(client, validate, dict(FULL, model="cnn"))
    assert e["dataset"] == "mnist-test"
    assert e["accuracy"] >= 0.985, (e["accuracy"], run["periods"])


@pytest.fixture
def fashion(data_dir):
    if not (Path(data_dir) / "fashion-mnist").exists():
        pytest.fail(f"{data_dir}/fashion-mnist is absent: run `make data`")


def test_dnn_on_fashion_mnist(client, validate, fashion):
    run, e = train_and_test(client, validate, dict(FULL, model="dnn", hidden_units=[100, 100],
                                                   dataset="fashion-mnist"))
    assert e["dataset"] == "fashion-mnist-test"
    assert e["accuracy"] >= 0.85, (e["accuracy"], run["periods"])


def test_default_cnn_on_fashion_mnist(client, validate, fashion):
    run, e = train_and_test(client, validate, dict(FULL, model="cnn", dataset="fashion-mnist"))
    assert e["dataset"] == "fashion-mnist-test"
    assert e["accuracy"] >= 0.89, (e["accuracy"], run["periods"])
