"""The issue's accuracy targets on the full training sets, which need
minutes of training: they run only with MNISTD_LONG_TESTS=1 (`make http
LONG_TESTS=1`, or `make test LONG_TESTS=1`), and are skipped otherwise.

- the default cnn (conv 16x5 pool 2, 32x5 pool 2, [100], Adam 0.001) on
  MNIST's 60,000 (5,000 validating), 4,000 steps of 50 (about 3.6 epochs):
  at least 0.985 on mnist-test;
- dnn [100, 100] on Fashion-MNIST, same head and steps: at least 0.85 on
  fashion-mnist-test; the default cnn there, 8,000 steps: at least 0.89.

Measured on 2026-11-30 on the shared two-core development machine (other
test suites running beside, one run at a time): the MNIST cnn 473 s
(validation 0.981, 0.984, 0.984 at periods 1-3; the test accuracy passed
0.985); the Fashion dnn 21 s (validation 0.886); the Fashion cnn at 4,000
steps 361 s and 0.8895 on the test set (validation 0.8946), hence 8,000
steps for it: 355 s, passed (validation 0.903 at period 3). After the fused
convolution and pooling (same machine, load 15-20): the MNIST cnn 0.9886 in
99 s, the Fashion dnn 0.8734 in 12 s, the Fashion cnn 0.8994 in 207 s.
Each test prints its test accuracy and training time.
"""
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("MNISTD_LONG_TESTS") != "1",
                                reason="minutes of training: set MNISTD_LONG_TESTS=1")

FULL = {"examples": 60000, "validation_examples": 5000, "steps": 4000, "batch_size": 50,
        "periods": 4, "seed": 1}


def train_and_test(client, validate, spec, capsys, timeout=3600):
    """Trains spec, evaluates it on its test set and prints both figures."""
    t0 = time.monotonic()
    run = client.train(spec, timeout=timeout)
    took = time.monotonic() - t0
    e = validate(client.post(f"/runs/{run['id']}/evaluate"), "/runs/{id}/evaluate", "post", 200)
    with capsys.disabled():
        print(f"\n{spec['model']} on {spec.get('dataset', 'mnist')}: test accuracy "
              f"{e['accuracy']:.4f} on {e['dataset']}, trained in {took:.0f} s")
    return run, e


def test_default_cnn_on_full_mnist(client, validate, capsys):
    run, e = train_and_test(client, validate, dict(FULL, model="cnn"), capsys)
    assert e["dataset"] == "mnist-test"
    assert e["accuracy"] >= 0.985, (e["accuracy"], run["periods"])


@pytest.fixture
def fashion(data_dir):
    if not (Path(data_dir) / "fashion-mnist").exists():
        pytest.fail(f"{data_dir}/fashion-mnist is absent: run `make data`")


def test_dnn_on_fashion_mnist(client, validate, fashion, capsys):
    run, e = train_and_test(client, validate, dict(FULL, model="dnn", hidden_units=[100, 100],
                                                   dataset="fashion-mnist"), capsys)
    assert e["dataset"] == "fashion-mnist-test"
    assert e["accuracy"] >= 0.85, (e["accuracy"], run["periods"])


def test_default_cnn_on_fashion_mnist(client, validate, fashion, capsys):
    # 4,000 steps gave 0.8895 (validation 0.8946): twice as long
    run, e = train_and_test(client, validate, dict(FULL, model="cnn", dataset="fashion-mnist",
                                                   steps=8000), capsys)
    assert e["dataset"] == "fashion-mnist-test"
    assert e["accuracy"] >= 0.89, (e["accuracy"], run["periods"])
