"""Pictures: the exercise's figures of a run (confusion heatmap, loss
curves, first-layer weights) and single dataset examples, as PNG; and an
example as JSON.

PNGs are checked by decoding them here (chunks and CRCs, zlib-inflated
IDAT, PNG row filters undone) and comparing pixels with what the JSON
routes say: heatmap cells against GET /runs/<id>/confusion through
matplotlib's bone_r, weight tiles against GET /runs/<id>/weights through
matplotlib's pink, example pixels against the IDX files.

Sizes (server/render/plot.h): confusion 560x510 with 40 px cells whose grid
starts at (70, 50); loss 640x420; weights min(units, 10) tiles per row,
each 28*scale px with 2 px gaps around them; examples 28*scale px."""
import math
import struct
import zlib

import pytest

from conftest import api

PNG_SIG = b"\x89PNG\r\n\x1a\n"

CONF_W, CONF_H, CONF_CELL, CONF_X0, CONF_Y0 = 560, 510, 40, 70, 50
LOSS_W, LOSS_H = 640, 420
TILE_GAP, TILES_PER_ROW = 2, 10


# ------------------------------------------------------------------ PNG


class Png:
    def __init__(self, width, height, color_type, bpp, rows):
        self.width, self.height = width, height
        self.color_type, self.bpp, self.rows = color_type, bpp, rows

    def px(self, x, y):
        """The pixel at (x, y): a tuple of 1 (gray) or 3 (RGB) ints."""
        return tuple(self.rows[y][x * self.bpp:(x + 1) * self.bpp])


def png_size(data):
    """(width, height) from the IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIG, f"not a PNG: {data[:16]!r}"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def decode_png(data):
    """Decodes an 8-bit, non-interlaced gray / RGB / RGBA PNG."""
    assert data[:8] == PNG_SIG, f"not a PNG: {data[:16]!r}"
    pos, chunks = 8, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        crc = int.from_bytes(data[pos + 8 + n:pos + 12 + n], "big")
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        pos += 12 + n
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and interlace == 0, (depth, interlace)
    bpp = {0: 1, 2: 3, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * bpp
    assert len(raw) == h * (stride + 1), "IDAT holds the wrong number of bytes"
    rows, prev = [], bytearray(stride)
    for y in range(h):
        off = y * (stride + 1)
        f, line = raw[off], bytearray(raw[off + 1:off + 1 + stride])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 255
        elif f == 3:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((a + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        else:
            assert f == 0, f"unknown filter {f}"
        rows.append(line)
        prev = line
    return Png(w, h, ctype, bpp, rows)


# ------------------------------------------------------------ colormaps
# matplotlib's definitions (see server/render/plot.c)

BONE = ([(0, 0), (0.746032, 0.652778), (1, 1)],
        [(0, 0), (0.365079, 0.319444), (0.746032, 0.777778), (1, 1)],
        [(0, 0), (0.365079, 0.444444), (1, 1)])
HOT = ([(0, 0.0416), (0.365079, 1), (1, 1)],
       [(0, 0), (0.365079, 0), (0.746032, 1), (1, 1)],
       [(0, 0), (0.746032, 0), (1, 1)])


def _seg(nodes, x):
    for (x0, y0), (x1, y1) in zip(nodes, nodes[1:]):
        if x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    return nodes[-1][1]


def _to8(v):
    return int(min(max(v, 0.0), 1.0) * 255 + 0.5)


def bone_r(x):
    b = 1 - min(max(x, 0.0), 1.0)
    return tuple(_to8(_seg(ch, b)) for ch in BONE)


def _pink_node(c, x):
    return math.sqrt((2 * x + _seg(HOT[c], x)) / 3)


def pink(x):
    x = min(max(x, 0.0), 1.0)
    k = min(int(x * 63), 62)
    x0, x1 = k / 63, (k + 1) / 63
    t = (x - x0) / (x1 - x0)
    return tuple(_to8(_pink_node(c, x0) + t * (_pink_node(c, x1) - _pink_node(c, x0)))
                 for c in range(3))


PINK_LUT = [pink(i / 255) for i in range(256)]


def close(a, b, tol=1):
    return all(abs(p - q) <= tol for p, q in zip(a, b))


# -------------------------------------------------------------- helpers


def documented(template):
    return template in api().doc["paths"]


def get_png(client, path, template, **params):
    r = client.get(path, params=params)
    assert r.status_code == 200, f"GET {path} {params} -> {r.status_code}: {r.text[:300]}"
    assert r.headers["Content-Type"] == "image/png"
    if documented(template):
        api().validate(r, template, "get", 200)
    assert r.content[:8] == PNG_SIG
    return r.content


def expect_err(r, template, status, code, *words):
    """The JSON error reply, validated against openapi.yaml once the path
    is documented there."""
    assert r.status_code == status, f"expected {status}: {r.status_code} {r.text[:300]}"
    assert r.headers["Content-Type"].startswith("application/json")
    if documented(template):
        body = api().validate(r, template, "get", status)
    else:
        body = r.json()
        api().check(body, api().schema("Error"))
    assert body["error"]["code"] == code, body
    for w in words:
        assert str(w) in body["error"]["message"], (w, body)
    return body["error"]["message"]


def weights_size(units, scale):
    n = min(units, TILES_PER_ROW)
    m = -(-units // TILES_PER_ROW)
    t = 28 * scale
    return n * t + (n + 1) * TILE_GAP, m * t + (m + 1) * TILE_GAP


@pytest.fixture(scope="module")
def fresh(client):
    """A small succeeded run of this module's own (never evaluated by
    another test)."""
    return client.train({"model": "linear", "steps": 60, "periods": 3, "seed": 11})


# ------------------------------------------------------------ confusion


@pytest.mark.parametrize("model", ["linear", "dnn"])
def test_confusion_png_is_the_confusion_through_bone_r(client, trained, model):
    rid = trained[model]["id"]
    png = decode_png(get_png(client, f"/runs/{rid}/confusion.png", "/runs/{id}/confusion.png"))
    assert (png.width, png.height, png.color_type) == (CONF_W, CONF_H, 2)
    conf = client.get(f"/runs/{rid}/confusion").json()
    norm = conf["normalized"]
    for t in range(10):
        for p in range(10):
            x = CONF_X0 + p * CONF_CELL + 4
            y = CONF_Y0 + t * CONF_CELL + 4
            got, want = png.px(x, y), bone_r(norm[t][p])
            assert close(got, want), \
                f"cell true {t} predicted {p}: {got} != bone_r({norm[t][p]}) {want}"
    # a trained model: the diagonal is dark, the rest light
    diag = [sum(png.px(CONF_X0 + k * CONF_CELL + 4, CONF_Y0 + k * CONF_CELL + 4))
            for k in range(10)]
    assert max(diag) < 3 * 80, diag
    off = png.px(CONF_X0 + 9 * CONF_CELL + 4, CONF_Y0 + 4)
    assert sum(off) > 3 * 200, off
    # the margins are white, text is dark somewhere in the title band
    assert png.px(2, 2) == (255, 255, 255)
    assert any(sum(png.px(x, y)) < 200 for y in range(10, 40) for x in range(100, 460))


def test_confusion_png_differs_between_runs(client, trained):
    a = get_png(client, f"/runs/{trained['linear']['id']}/confusion.png",
                "/runs/{id}/confusion.png")
    b = get_png(client, f"/runs/{trained['dnn']['id']}/confusion.png", "/runs/{id}/confusion.png")
    assert a != b


def test_confusion_png_test_set_once_evaluated(client, fresh):
    rid = fresh["id"]
    r = client.get(f"/runs/{rid}/confusion.png", params={"set": "test"})
    expect_err(r, "/runs/{id}/confusion.png", 409, "not_evaluated", "evaluate")
    r = client.post_json(f"/runs/{rid}/evaluate", {"dataset": "mnist-test"})
    assert r.status_code == 200, r.text
    test_png = get_png(client, f"/runs/{rid}/confusion.png", "/runs/{id}/confusion.png", set="test")
    val_png = get_png(client, f"/runs/{rid}/confusion.png", "/runs/{id}/confusion.png",
                      set="validation")
    assert test_png != val_png
    png = decode_png(test_png)
    norm = client.get(f"/runs/{rid}/confusion", params={"set": "test"}).json()["normalized"]
    assert close(png.px(CONF_X0 + 3 * CONF_CELL + 4, CONF_Y0 + 3 * CONF_CELL + 4),
                 bone_r(norm[3][3]))
    r = client.get(f"/runs/{rid}/confusion.png", params={"set": "train"})
    expect_err(r, "/runs/{id}/confusion.png", 400, "bad_query", "set")


# ----------------------------------------------------------------- loss


def test_loss_png(client, trained):
    pictures = {}
    for model in ("linear", "dnn"):
        rid = trained[model]["id"]
        data = get_png(client, f"/runs/{rid}/loss.png", "/runs/{id}/loss.png")
        png = decode_png(data)
        assert (png.width, png.height, png.color_type) == (LOSS_W, LOSS_H, 2)
        pixels = [png.px(x, y) for y in range(0, LOSS_H, 2) for x in range(0, LOSS_W, 2)]
        blue = sum(1 for c in pixels if c[0] < 60 and 100 < c[1] < 140 and c[2] > 160)
        orange = sum(1 for c in pixels if c[0] > 230 and 110 < c[1] < 140 and c[2] < 40)
        assert blue > 30 and orange > 30, (blue, orange)
        dark = sum(1 for c in pixels if sum(c) < 150)
        assert dark > 200, "no axes or text drawn"
        pictures[model] = data
    assert pictures["linear"] != pictures["dnn"]


# -------------------------------------------------------------- weights


@pytest.mark.parametrize("model,units", [("linear", 10), ("dnn", 32)])
def test_weights_png_tiles_are_the_weights_through_pink(client, trained, model, units):
    rid = trained[model]["id"]
    w = client.get(f"/runs/{rid}/weights", params={"layer": 0}).json()
    assert w["shape"] == [units, 784]
    png = decode_png(get_png(client, f"/runs/{rid}/weights.png", "/runs/{id}/weights.png",
                             scale=1))
    assert (png.width, png.height) == weights_size(units, 1)
    assert png.color_type == 2
    bad = 0
    for u, vals in enumerate(w["values"]):
        lo, hi = min(vals), max(vals)
        x0 = TILE_GAP + (u % TILES_PER_ROW) * (28 + TILE_GAP)
        y0 = TILE_GAP + (u // TILES_PER_ROW) * (28 + TILE_GAP)
        for i, v in enumerate(vals):
            x = 0.5 if hi <= lo else (v - lo) / (hi - lo)
            want = PINK_LUT[min(int(x * 256), 255)]
            got = png.px(x0 + i % 28, y0 + i // 28)
            if i in (vals.index(lo), vals.index(hi)):
                assert got == want, f"unit {u} pixel {i}: {got} != {want}"
            bad += not close(got, want, 2)
    # float32 in the server, float64 here: a bin edge may fall differently
    assert bad <= units * 784 // 500, f"{bad} pixels differ"
    # gaps are mid gray
    assert png.px(0, 0) == (128, 128, 128)


def test_weights_png_default_scale_and_sizes(client, trained):
    for model, units in (("linear", 10), ("dnn", 32)):
        rid = trained[model]["id"]
        data = get_png(client, f"/runs/{rid}/weights.png", "/runs/{id}/weights.png")
        assert png_size(data) == weights_size(units, 3)
        data = get_png(client, f"/runs/{rid}/weights.png", "/runs/{id}/weights.png",
                       layer=0, scale=5)
        assert png_size(data) == weights_size(units, 5)
    # dnn [32] at scale 3: 10 tiles of 84 px per row, 4 rows
    assert weights_size(32, 3) == (862, 346)


def test_weights_png_differs_between_seeds(client, trained, fresh):
    a = get_png(client, f"/runs/{trained['linear']['id']}/weights.png", "/runs/{id}/weights.png")
    b = get_png(client, f"/runs/{fresh['id']}/weights.png", "/runs/{id}/weights.png")
    assert png_size(a) == png_size(b) and a != b


@pytest.mark.parametrize("query,words", [
    ({"scale": "0"}, ["scale", "1..16"]),
    ({"scale": "17"}, ["scale", "1..16"]),
    ({"scale": "x"}, ["scale"]),
    ({"scale": ""}, ["scale"]),
    ({"layer": "-1"}, ["layer"]),
    ({"layer": "9"}, ["layer"]),
    ({"layer": "one"}, ["layer"]),
    ({"layer": "1"}, ["layer 1", "only layer 0"]),   # dnn [32]: the output layer
    ({"layer": "2"}, ["layer", "0..1"]),             # no such layer
])
def test_weights_png_bad_query_is_400(client, trained, query, words):
    r = client.get(f"/runs/{trained['dnn']['id']}/weights.png", params=query)
    expect_err(r, "/runs/{id}/weights.png", 400, "bad_query", *words)


# ----------------------------------------------------- states and ids


def test_pictures_of_a_run_without_periods_are_409(client, cancelled_run):
    rid = cancelled_run["id"]
    expect_err(client.get(f"/runs/{rid}/weights.png"), "/runs/{id}/weights.png", 409,
               "run_not_succeeded", "cancelled")
    expect_err(client.get(f"/runs/{rid}/loss.png"), "/runs/{id}/loss.png", 409, "no_metrics")
    expect_err(client.get(f"/runs/{rid}/confusion.png"), "/runs/{id}/confusion.png", 409,
               "no_metrics")


def test_weights_png_of_a_running_run_is_409(client):
    run = client.create_run({"model": "linear", "steps": 100000, "periods": 10, "seed": 5})
    try:
        r = client.get(f"/runs/{run['id']}/weights.png")
        expect_err(r, "/runs/{id}/weights.png", 409, "run_not_succeeded")
    finally:
        client.cancel(run["id"])
        client.wait_for_run(run["id"], "cancelled", timeout=30)


@pytest.mark.parametrize("name", ["confusion", "loss", "weights"])
@pytest.mark.parametrize("rid", ["999999999", "abc", "0", "1234567890123456789"])
def test_pictures_of_unknown_runs_are_404(client, name, rid):
    r = client.get(f"/runs/{rid}/{name}.png")
    expect_err(r, f"/runs/{{id}}/{name}.png", 404, "not_found")


@pytest.mark.parametrize("name", ["confusion", "loss", "weights"])
def test_pictures_are_get_only(client, trained, name):
    r = client.post(f"/runs/{trained['linear']['id']}/{name}.png")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, HEAD"


def test_head_of_a_picture(client, trained):
    r = client.request("HEAD", f"/runs/{trained['linear']['id']}/loss.png")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert r.content == b""


# ------------------------------------------------------------- examples


@pytest.mark.parametrize("dataset,kind,index", [
    ("mnist", "train", 0), ("mnist", "train", 1234), ("mnist", "train", 59999),
    ("mnist-test", "test", 0), ("mnist-test", "test", 9999)])
def test_example_json_is_the_idx_example(client, mnist, dataset, kind, index):
    r = client.get(f"/datasets/{dataset}/examples/{index}")
    assert r.status_code == 200, r.text
    if documented("/datasets/{name}/examples/{index}"):
        api().validate(r, "/datasets/{name}/examples/{index}", "get", 200)
    body = r.json()
    imgs, labels = mnist.images(kind, 1, start=index)
    assert body == {"dataset": dataset, "index": index, "label": labels[0],
                    "pixels": list(imgs[0])}


@pytest.mark.parametrize("scale", [None, 1, 7])
def test_example_png_is_the_idx_image(client, mnist, scale):
    params = {} if scale is None else {"scale": scale}
    data = get_png(client, "/datasets/mnist/examples/7.png", "/datasets/{name}/examples/{index}",
                   **params)
    s = 4 if scale is None else scale
    png = decode_png(data)
    assert (png.width, png.height, png.color_type) == (28 * s, 28 * s, 0)
    img = mnist.images("train", 1, start=7)[0][0]
    for y in range(png.height):
        for x in range(png.width):
            assert png.px(x, y) == (img[(y // s) * 28 + x // s],), (x, y)
    assert any(img)


def test_examples_differ(client):
    a = get_png(client, "/datasets/mnist/examples/0.png", "/datasets/{name}/examples/{index}")
    b = get_png(client, "/datasets/mnist/examples/1.png", "/datasets/{name}/examples/{index}")
    assert a != b


def test_example_of_an_uploaded_dataset(client, mnist):
    csv = mnist.csv("test", 4, start=100)
    r = client.post("/datasets", params={"name": "pictures4"}, data=csv.encode(),
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    imgs, labels = mnist.images("test", 4, start=100)
    body = client.get("/datasets/pictures4/examples/3").json()
    assert body["label"] == labels[3] and body["pixels"] == list(imgs[3])
    png = decode_png(get_png(client, "/datasets/pictures4/examples/3.png",
                             "/datasets/{name}/examples/{index}", scale=1))
    assert bytes(png.rows[14]) == imgs[3][14 * 28:15 * 28]
    expect_err(client.get("/datasets/pictures4/examples/4"), "/datasets/{name}/examples/{index}",
               404, "not_found", "4 examples")


@pytest.mark.parametrize("path,words", [
    ("/datasets/mnist/examples/60000", ["60000 examples"]),
    ("/datasets/mnist-test/examples/10000.png", ["10000 examples"]),
    ("/datasets/mnist/examples/-1", []),
    ("/datasets/mnist/examples/abc", []),
    ("/datasets/mnist/examples/1.jpg", []),
    ("/datasets/mnist/examples/.png", []),
    ("/datasets/mnist/examples/99999999999", []),
    ("/datasets/no-such-set/examples/0", ["no-such-set"]),
    ("/datasets/NOT_VALID/examples/0.png", []),
])
def test_unknown_examples_are_404(client, path, words):
    expect_err(client.get(path), "/datasets/{name}/examples/{index}", 404, "not_found", *words)


@pytest.mark.parametrize("scale", ["0", "17", "two", ""])
def test_example_png_bad_scale_is_400(client, scale):
    r = client.get("/datasets/mnist/examples/0.png", params={"scale": scale})
    expect_err(r, "/datasets/{name}/examples/{index}", 400, "bad_query", "scale")
