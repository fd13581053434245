"""The /datasets resource: built-in sets, CSV upload, and training on an
uploaded set; `mnistd train` on IDX files under their other names."""
import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, _read, expect_error

UPLOAD_ROWS = 300


@pytest.fixture(scope="module")
def uploaded(client, validate, mnist):
    """A 300-row dataset made of MNIST training images, uploaded once."""
    csv = mnist.csv("train", UPLOAD_ROWS)
    r = client.post("/datasets", params={"name": "up300"}, data=csv.encode(),
                    headers={"Content-Type": "text/csv"})
    body = validate(r, "/datasets", "post", 201)
    assert r.headers["Location"] == "/datasets/up300"
    return body


def test_builtin_datasets(client, validate):
    body = validate(client.get("/datasets"), "/datasets", "get", 200)
    by_name = {d["name"]: d for d in body["datasets"]}
    assert by_name["mnist"]["examples"] == 60000 and by_name["mnist"]["builtin"] is True
    assert by_name["mnist-test"]["examples"] == 10000 and by_name["mnist-test"]["builtin"] is True
    for d in (by_name["mnist"], by_name["mnist-test"]):
        assert d["rows"] == 28 and d["cols"] == 28
        assert sum(d["label_counts"]) == d["examples"]
    # MNIST's well-known label counts
    assert by_name["mnist"]["label_counts"][1] == 6742
    assert by_name["mnist-test"]["label_counts"][0] == 980

    d = validate(client.get("/datasets/mnist-test"), "/datasets/{name}", "get", 200)
    assert d == by_name["mnist-test"]


def test_upload(client, validate, uploaded, mnist):
    _, labels = mnist.images("train", UPLOAD_ROWS)
    assert uploaded["name"] == "up300" and uploaded["examples"] == UPLOAD_ROWS
    assert uploaded["builtin"] is False
    assert uploaded["rows"] == 28 and uploaded["cols"] == 28
    assert uploaded["label_counts"] == [labels.count(k) for k in range(10)]

    got = validate(client.get("/datasets/up300"), "/datasets/{name}", "get", 200)
    assert got == uploaded

    listed = validate(client.get("/datasets"), "/datasets", "get", 200)["datasets"]
    names = [d["name"] for d in listed]
    assert {"mnist", "mnist-test", "up300"} <= set(names)
    assert [d for d in listed if d["name"] == "up300"] == [uploaded]


def test_upload_duplicate_name_is_409(client, uploaded, mnist):
    r = client.post("/datasets", params={"name": "up300"}, data=mnist.csv("train", 5).encode(),
                    headers={"Content-Type": "text/csv"})
    expect_error(r, "/datasets", "post", 409, "dataset_exists", "up300")
    for builtin in ("mnist", "mnist-test"):
        r = client.post("/datasets", params={"name": builtin}, data=mnist.csv("train", 5).encode(),
                        headers={"Content-Type": "text/csv"})
        expect_error(r, "/datasets", "post", 409, "dataset_exists", builtin)
    # the first upload is unchanged
    d = client.get("/datasets/up300").json()
    assert d["examples"] == UPLOAD_ROWS


def test_upload_with_header_and_crlf_and_no_final_newline(client, validate, mnist):
    lines = mnist.csv("train", 12, start=500).splitlines()
    body = "label," + ",".join(f"p{i}" for i in range(784)) + "\r\n" + "\r\n".join(lines)
    r = client.post("/datasets", params={"name": "hdr12"}, data=body.encode(),
                    headers={"Content-Type": "text/csv; charset=utf-8"})
    d = validate(r, "/datasets", "post", 201)
    assert d["examples"] == 12


def test_upload_streamed_chunked(client, validate, mnist):
    csv = mnist.csv("train", 40, start=1000).encode()

    def chunks():
        for i in range(0, len(csv), 777):  # chunk edges fall inside fields
            yield csv[i:i + 777]

    r = client.post("/datasets", params={"name": "chunked40"}, data=chunks(),
                    headers={"Content-Type": "text/csv"})
    d = validate(r, "/datasets", "post", 201)
    assert d["examples"] == 40


def test_train_on_uploaded_dataset(client, validate, uploaded):
    spec = {"model": "linear", "dataset": "up300", "examples": 300,
            "validation_examples": 100, "steps": 40, "periods": 2, "seed": 1}
    run = client.train(spec)
    assert run["dataset"] == "up300" and run["params"]["dataset"] == "up300"
    assert run["params"]["examples"] <= uploaded["examples"]
    conf = validate(client.get(f"/runs/{run['id']}/confusion"), "/runs/{id}/confusion", "get", 200)
    assert sum(map(sum, conf["counts"])) == 100
    # evaluating on the uploaded set works too
    e = validate(client.post_json(f"/runs/{run['id']}/evaluate", {"dataset": "up300"}),
                 "/runs/{id}/evaluate", "post", 200)
    assert e["dataset"] == "up300" and e["examples"] == UPLOAD_ROWS

    too_many = dict(spec, examples=301)
    r = client.post_json("/runs", too_many)
    expect_error(r, "/runs", "post", 400, "bad_field", "examples", "300")


def test_small_dataset_defaults_to_all_of_it(client, validate, uploaded):
    """Without `examples`, a dataset smaller than 10,000 rows is used whole,
    a quarter of it validating (the exercise's 2,500 of 10,000)."""
    r = client.post_json("/runs", {"model": "linear", "dataset": "up300",
                                   "steps": 20, "periods": 1, "seed": 3})
    run = validate(r, "/runs", "post", 202)
    assert run["params"]["examples"] == UPLOAD_ROWS
    assert run["params"]["validation_examples"] == UPLOAD_ROWS // 4
    # an explicit validation_examples is kept
    r = client.post_json("/runs", {"model": "linear", "dataset": "up300",
                                   "validation_examples": 50, "steps": 20,
                                   "periods": 1, "seed": 3})
    run = validate(r, "/runs", "post", 202)
    assert run["params"]["examples"] == UPLOAD_ROWS
    assert run["params"]["validation_examples"] == 50
    # on MNIST the exercise's split stays
    r = client.post_json("/runs", {"model": "linear", "steps": 20, "periods": 1})
    run = validate(r, "/runs", "post", 202)
    assert (run["params"]["examples"], run["params"]["validation_examples"]) == (10000, 2500)


def test_upload_whole_numbers_as_floats_and_cr_line_endings(client, validate, mnist):
    """pandas writes 0.0 and 255.0, old spreadsheets end lines with CR: the
    same images as the plain file."""
    imgs, labels = mnist.images("train", 6, start=2000)
    forms = {
        "floats": lambda v: f"{v}.0",
        "exp": lambda v: f"{v}e0" if v else "-0",
        "padded": lambda v: f"{v}.000",
    }
    for name, fmt in forms.items():
        for eol in ("\n", "\r", "\r\n"):
            body = "".join(fmt(y) + "," + ",".join(fmt(b) for b in img) + eol
                           for img, y in zip(imgs, labels))
            ds = f"wf-{name}-{len(eol)}{'r' if eol[0] == chr(13) else 'n'}"
            r = client.post("/datasets", params={"name": ds}, data=body.encode(),
                            headers={"Content-Type": "text/csv"})
            d = validate(r, "/datasets", "post", 201)
            assert d["examples"] == 6, (name, repr(eol))
            want = [0] * 10
            for y in labels:
                want[y] += 1
            assert d["label_counts"] == want
            # pixels read as the integers they are
            ex = validate(client.get(f"/datasets/{ds}/examples/5"),
                          "/datasets/{name}/examples/{index}", "get", 200)
            assert ex["label"] == labels[5] and ex["pixels"] == list(imgs[5])


def test_upload_of_scaled_pixels_says_so(client, mnist):
    """A CSV of pixels/255 (the JSON API's range) is named as such."""
    imgs, labels = mnist.images("train", 2)
    body = "".join(f"{y}," + ",".join(f"{b / 255:.4f}" for b in img) + "\n"
                   for img, y in zip(imgs, labels))
    r = client.post("/datasets", params={"name": "scaled"}, data=body.encode(),
                    headers={"Content-Type": "text/csv"})
    expect_error(r, "/datasets", "post", 400, "bad_csv", "line 1",
                 "integers 0..255", "scaled to 0..1")


def _bin():
    return os.environ.get("MNISTD_BIN") or str(REPO / "build" / "mnistd")


def _train(args, timeout=300):
    return subprocess.run([_bin(), "train", "--model", "linear", "--steps", "10",
                           "--periods", "1", "--examples", "1000",
                           "--validation-examples", "100", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_train_on_idx_files_under_dotted_names(tmp_path, data_dir):
    """The widely shared download names its files train-images.idx3-ubyte:
    the labels file is found for that spelling too, gzipped or not."""
    src = Path(data_dir) / "mnist"
    for base, idx in (("train-images", "idx3"), ("train-labels", "idx1")):
        (tmp_path / f"{base}.{idx}-ubyte").write_bytes(_read(src / f"{base}-{idx}-ubyte"))
    for base, idx in (("t10k-images", "idx3"), ("t10k-labels", "idx1")):
        data = _read(src / f"{base}-{idx}-ubyte")
        (tmp_path / f"{base}.{idx}-ubyte.gz").write_bytes(gzip.compress(data, 1))

    for images in ("train-images.idx3-ubyte", "t10k-images.idx3-ubyte.gz"):
        p = _train(["--dataset", str(tmp_path / images)])
        assert p.returncode == 0, (images, p.stderr)
        assert "accuracy" in p.stdout.lower(), p.stdout

    # any other name: --labels gives the labels file
    shutil.move(tmp_path / "train-labels.idx1-ubyte", tmp_path / "y.bin")
    shutil.move(tmp_path / "train-images.idx3-ubyte", tmp_path / "x.bin")
    p = _train(["--dataset", str(tmp_path / "x.bin")])
    assert p.returncode != 0 and "--labels" in p.stderr, p.stderr
    p = _train(["--dataset", str(tmp_path / "x.bin"), "--labels", str(tmp_path / "y.bin")])
    assert p.returncode == 0, p.stderr
    p = _train(["--dataset", "mnist", "--labels", str(tmp_path / "y.bin")])
    assert p.returncode == 2 and "--labels" in p.stderr, p.stderr

    h = subprocess.run([_bin(), "train", "--help"], capture_output=True, text=True, timeout=30)
    assert h.returncode == 0 and "--labels PATH" in h.stdout
