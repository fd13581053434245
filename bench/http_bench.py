#!/usr/bin/python3
"""http_bench.py BUILD DATA [--only postgresql]: the service benchmarks. Starts mnistd on a
fresh database and measures, printing `name value` lines:
- the exercise's dnn recipe end to end through POST /runs (run time from
  started_at to finished_at, median of 3);
- POST /predict with one image as JSON under wrk (2 threads, 32
  connections), and the same load on bench/bare_server (the HTTP ceiling):
  five wrk runs each, medians of their rates and of their p99s (each run's
  figures are printed too);
- the same one-image load served by a default cnn run (200 steps; its
  forward pass, not its accuracy, is what is timed);
- batches of 1000 images as JSON and as raw bytes (images/s);
- one image through the model servers' protocols under the same wrk load,
  in the same run as /predict: Open Inference Protocol v2 infer as JSON and
  as binary tensors, TensorFlow Serving predict (medians of five runs);
- POST /predict with one image over HTTPS (--tls-cert, a self-signed P-256
  certificate made with openssl) against the same over HTTP: two servers on
  copies of one database, wrk runs alternating between them (five each,
  keep-alive connections, so the handshakes are a one-off and the figure is
  the cost of encrypting the requests and replies); wrk's own TLS work
  shares the cores, so the server's CPU time per request (user + system,
  from /proc) is printed for both too;
- resident memory of mnistd with MNIST loaded and two runs training;
- bytes written to the store per run (the dnn recipe) and per period
  (tiny runs of 500 periods), with paced checkpoints (the default) and
  with a checkpoint at every period end (--checkpoint-interval 0, the
  behaviour before pacing), each on a fresh database;
- the same server on PostgreSQL (a throwaway server from
  scripts/pg-temp.sh, on a unix socket) against the SQLite one, measured
  alternately (ABBA): the dnn recipe (a warm-up run each, then medians
  of 5), /predict with one image
  (medians of five wrk runs each), and the resident memory of mnistd on
  PostgreSQL with two runs training (pg_* and ab_sqlite_* lines).
With --only postgresql: only that last part, against a SQLite server
started for it (its recipe figures follow a warm-up run on each server, as
in the full bench)."""
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

if len(sys.argv) not in (3, 5) or (len(sys.argv) == 5 and sys.argv[3:] != ["--only", "postgresql"]):
    sys.exit("usage: http_bench.py BUILD DATA [--only postgresql]")
BUILD, DATA = sys.argv[1], sys.argv[2]
ONLY = sys.argv[4] if len(sys.argv) == 5 else None
PG_ROUNDS = 5   # recipe rounds S, P per server in postgresql()
WRK_SECONDS = os.environ.get("WRK_SECONDS", "4")
WRK_REPEATS = 5
HERE = os.path.dirname(os.path.abspath(__file__))


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    line = p.stdout.readline()
    if not line.startswith("listening on port "):
        p.kill()
        sys.exit(f"http_bench: {cmd[0]} did not start: {line!r}")
    return p, int(line.split()[-1])


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)


def call(port, method, path, body=None, ctype="application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def wait_run(port, rid, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        run = call(port, "GET", f"/runs/{rid}")
        if run["status"] not in ("queued", "running"):
            return run
        time.sleep(0.01)
    sys.exit(f"http_bench: run {rid} did not finish")


def iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_images(n):
    with open(f"{DATA}/mnist/t10k-images-idx3-ubyte", "rb") as f:
        raw = f.read()
    return [raw[16 + i * 784:16 + (i + 1) * 784] for i in range(n)]


def wrk(port, path, body_file, ctype, conns=32, hlen=None, scheme="http"):
    """wrk runs niced: it shares the cores with the server, and a load
    generator that preempts the server mid-request measures its own
    scheduling in the tail (bench/NOTES.md); clients of a real deployment
    run elsewhere. Over https wrk does not verify the certificate."""
    env = dict(os.environ, BODY=body_file, CTYPE=ctype)
    if hlen is not None:
        env["HLEN"] = str(hlen)
    out = subprocess.run(["nice", "-n", "10", "wrk", "-t2", f"-c{conns}", f"-d{WRK_SECONDS}s",
                          "-s", f"{HERE}/post_body.lua",
                          f"{scheme}://127.0.0.1:{port}{path}"],
                         env=env, capture_output=True, text=True, check=True).stdout
    vals = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("wrk_"):
            vals[parts[0]] = float(parts[1])
    return vals


def wrk_medians(port, body_file, name, path="/predict",
                ctype="application/json", hlen=None):
    """WRK_REPEATS runs of the one-image load: prints each, returns the
    medians of requests/s and of p99 (ms), and the bad answers in all."""
    runs = [wrk(port, path, body_file, ctype, hlen=hlen)
            for _ in range(WRK_REPEATS)]
    for i, v in enumerate(runs):
        print(f"{name}_run{i + 1} rps={v['wrk_rps']:.0f} p50_ms={v['wrk_p50_ms']:.3f} "
              f"p99_ms={v['wrk_p99_ms']:.3f}")
    bad = sum(v["wrk_errors"] + v["wrk_non2xx"] for v in runs)
    return (statistics.median(v["wrk_rps"] for v in runs),
            statistics.median(v["wrk_p99_ms"] for v in runs), bad)


def protocols(port, rid, img, tmp):
    """One image through v2 infer (JSON and binary) and TF Serving predict,
    served by run rid registered as model "bench": prints each protocol's
    median requests/s and its bad answers."""
    call(port, "POST", "/models", {"name": "bench"})
    call(port, "POST", "/models/bench/versions", {"run": rid})
    px = [round(b / 255, 4) for b in img]
    bodies = {}
    bodies["v2_json"] = (json.dumps({"inputs": [{"name": "pixels", "shape": [1, 784],
                                                 "datatype": "FP32", "data": px}]}).encode(),
                         "/v2/models/bench/infer", "application/json", None)
    head = json.dumps({"inputs": [{"name": "pixels", "shape": [1, 784], "datatype": "UINT8",
                                   "parameters": {"binary_data_size": 784}}],
                       "parameters": {"binary_data_output": True}}).encode()
    bodies["v2_binary"] = (head + bytes(img), "/v2/models/bench/infer",
                           "application/octet-stream", len(head))
    bodies["tfs"] = (json.dumps({"instances": [px]}).encode(), "/v1/models/bench:predict",
                     "application/json", None)
    for name, (body, path, ctype, hlen) in bodies.items():
        f = f"{tmp}/{name}.body"
        with open(f, "wb") as out:
            out.write(body)
        rps, _, bad = wrk_medians(port, f, name, path, ctype, hlen)
        print(f"{name}_rps {rps:.0f}")
        print(f"{name}_bad {bad:.0f}")


def cpu_seconds(pid):
    """User plus system CPU time of a process so far (seconds)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tls_predict(tmp, db, body_file):
    """One image through POST /predict over HTTPS and over HTTP: a server
    of each on its own copy of db (one server per database), wrk runs
    alternating between them so that both see the same machine. Prints
    each run, the medians of requests/s, p99 and the server's CPU time per
    request (microseconds), and the bad answers."""
    cert, key = f"{tmp}/cert.pem", f"{tmp}/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    copies = {}
    for scheme in ("http", "https"):
        copies[scheme] = f"{tmp}/{scheme}.db"
        shutil.copyfile(db, copies[scheme])
    tls = ["--tls-cert", cert, "--tls-key", key]
    servers = {scheme: start([f"{BUILD}/mnistd", "serve", "--port", "0", "--db",
                              copies[scheme], "--data-dir", DATA, "--workers", "1",
                              *(tls if scheme == "https" else [])])
               for scheme in ("http", "https")}
    try:
        runs = {"http": [], "https": []}
        for _ in range(WRK_REPEATS):
            for scheme, (p, port) in servers.items():
                cpu0 = cpu_seconds(p.pid)
                v = wrk(port, "/predict", body_file, "application/json", scheme=scheme)
                v["cpu_us"] = (cpu_seconds(p.pid) - cpu0) / max(1, v["wrk_requests"]) * 1e6
                runs[scheme].append(v)
    finally:
        for p, _ in servers.values():
            stop(p)
    for scheme, vals in runs.items():
        name = f"tls_{scheme}_predict"
        for i, v in enumerate(vals):
            print(f"{name}_run{i + 1} rps={v['wrk_rps']:.0f} "
                  f"p50_ms={v['wrk_p50_ms']:.3f} p99_ms={v['wrk_p99_ms']:.3f} "
                  f"server_cpu_us={v['cpu_us']:.1f}")
        print(f"{name}_rps {statistics.median(v['wrk_rps'] for v in vals):.0f}")
        print(f"{name}_cpu_us {statistics.median(v['cpu_us'] for v in vals):.1f}")
        print(f"{name}_p99_ms {statistics.median(v['wrk_p99_ms'] for v in vals):.3f}")
        print(f"{name}_bad {sum(v['wrk_errors'] + v['wrk_non2xx'] for v in vals):.0f}")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def written_bytes(pid):
    """Bytes the process has passed to write(2): the database and its log,
    and the log lines (sent to /dev/null here, ~100 bytes a request)."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def store_writes(tmp, name, args):
    """Bytes written by a fresh server: one dnn recipe run, then 4 tiny
    runs of 500 periods (2 at a time). Returns (per run, per period)."""
    srv, port = start([f"{BUILD}/mnistd", "serve", "--port", "0", "--db",
                       f"{tmp}/{name}.db", "--data-dir", DATA, "--workers", "2", *args])
    try:
        w0 = written_bytes(srv.pid)
        rid = call(port, "POST", "/runs", {"model": "dnn", "seed": 1})["id"]
        assert wait_run(port, rid)["status"] == "succeeded"
        w1 = written_bytes(srv.pid)
        spec = {"model": "linear", "steps": 500, "periods": 500, "examples": 100,
                "validation_examples": 10, "batch_size": 10}
        ids = [call(port, "POST", "/runs", dict(spec, seed=s))["id"] for s in range(4)]
        for i in ids:
            assert wait_run(port, i)["status"] == "succeeded"
        w2 = written_bytes(srv.pid)
    finally:
        stop(srv)
    return w1 - w0, (w2 - w1) / (len(ids) * spec["periods"])


def recipe_once(port, seed):
    """The dnn recipe through POST /runs: (started_at..finished_at in
    seconds, the run)."""
    rid = call(port, "POST", "/runs", {"model": "dnn", "seed": seed})["id"]
    run = wait_run(port, rid)
    assert run["status"] == "succeeded", run
    return iso(run["finished_at"]) - iso(run["started_at"]), run


def recipe_seconds(port):
    """The dnn recipe through POST /runs three times, one at a time: the
    median of started_at..finished_at, and the last run."""
    times = []
    for seed in (1, 2, 3):
        secs, run = recipe_once(port, seed)
        times.append(secs)
    return statistics.median(times), run


def rss_two_runs(port, pid):
    """mnistd's resident memory (MB) with MNIST loaded and two runs
    training, and how many trained then; the runs are cancelled after."""
    ids = [call(port, "POST", "/runs", {"model": "dnn", "steps": 100000,
                                       "periods": 100, "seed": s})["id"]
           for s in (11, 12)]
    time.sleep(3)
    busy = call(port, "GET", "/healthz")["training"]
    mb = rss_mb(pid)
    for i in ids:
        call(port, "POST", f"/runs/{i}/cancel")
    for i in ids:
        wait_run(port, i)
    return mb, busy


def postgresql(tmp, sq_port, sq_body):
    """The PostgreSQL figures (pg_* lines) against the SQLite server still
    running on sq_port (same flags: --workers 2), alternately, so that the
    machine's drift touches both alike: first one recipe run on each server
    that is not counted (warm-up: PostgreSQL's backends fill their catalog
    caches and mnistd its prepared statements on first use, as SQLite's
    server did in the figures before), then the recipe S, P PG_ROUNDS times
    (medians; ab_sqlite_* is SQLite's of the same rounds, each round's pair
    is printed), mnistd's memory on PostgreSQL with two runs training, then
    /predict under wrk S, P five times (medians). Both alternations are
    ABBA (S P, P S, S P, ...): a drift of the machine's load within a round
    then favours neither. /predict of a cached model does not read the
    store on either backend (serving/infer.c), so its ratio shows the
    machine's noise more than PostgreSQL. The PostgreSQL server is
    durable as production would be (pg-temp.sh --durable: fsync and
    synchronous_commit on, each commit flushed to disk), SQLite as mnistd
    sets it (WAL, synchronous=NORMAL: a commit reaches the OS, the disk at
    checkpoints), so PostgreSQL's promise here is the stronger one.
    Nothing when PostgreSQL's server is missing."""
    # its own folder in /tmp: the server runs as another user (pg-temp.sh),
    # who cannot enter the private tmp folder
    pgdir = tempfile.mktemp(prefix="mnistd-bench-pg.", dir="/tmp")
    out = subprocess.run([f"{HERE}/../scripts/pg-temp.sh", "start", pgdir,
                          "--durable"], capture_output=True, text=True)
    if out.returncode:
        print(f"bench: no PostgreSQL ({out.stderr.strip()}); pg_* skipped",
              file=sys.stderr)
        return
    try:
        srv, port = start([f"{BUILD}/mnistd", "serve", "--port", "0", "--db",
                           out.stdout.strip(), "--data-dir", DATA, "--workers", "2"])
        try:
            recipe_once(sq_port, 100)   # warm-up, not counted
            recipe_once(port, 100)
            sq_t, pg_t = [], []
            for seed in range(1, PG_ROUNDS + 1):
                # ABBA: the order flips each round, so that a drift of the
                # machine's load within a round favours neither server
                for p in ((sq_port, port) if seed % 2 else (port, sq_port)):
                    secs, r = recipe_once(p, seed)
                    if p == port:
                        pg_t.append(secs)
                        run = r
                    else:
                        sq_t.append(secs)
                print(f"pg_recipe_round{seed} sqlite_s={sq_t[-1]:.3f} pg_s={pg_t[-1]:.3f}")
            print(f"ab_sqlite_recipe_dnn_seconds {statistics.median(sq_t):.3f}")
            print(f"pg_recipe_dnn_seconds {statistics.median(pg_t):.3f}")
            mb, busy = rss_two_runs(port, srv.pid)
            print(f"pg_rss_two_runs_mb {mb:.1f}")
            print(f"pg_rss_runs_training {busy}")
            body = f"{tmp}/pg_one.json"
            with open(sq_body) as f:
                req = json.load(f)
            req["run"] = run["id"]
            with open(body, "w") as f:
                json.dump(req, f)
            sq_r, pg_r = [], []
            for i in range(WRK_REPEATS):
                pair = (("ab_sqlite_predict", sq_port, sq_body, sq_r),
                        ("pg_predict", port, body, pg_r))
                for name, p, b, acc in (pair if i % 2 == 0 else pair[::-1]):
                    v = wrk(p, "/predict", b, "application/json")
                    acc.append(v)
                    print(f"{name}_run{i + 1} rps={v['wrk_rps']:.0f} "
                          f"p50_ms={v['wrk_p50_ms']:.3f} p99_ms={v['wrk_p99_ms']:.3f}")
            for name, runs in (("ab_sqlite_predict", sq_r), ("pg_predict", pg_r)):
                print(f"{name}_rps {statistics.median(v['wrk_rps'] for v in runs):.0f}")
                print(f"{name}_bad {sum(v['wrk_errors'] + v['wrk_non2xx'] for v in runs):.0f}")
        finally:
            stop(srv)
    finally:
        subprocess.run([f"{HERE}/../scripts/pg-temp.sh", "stop", pgdir],
                       capture_output=True)


def main_postgresql():
    """--only postgresql: a SQLite server of the same flags as main's, and
    postgresql() against it."""
    tmp = tempfile.mkdtemp(prefix="mnistd-bench-")
    srv, port = start([f"{BUILD}/mnistd", "serve", "--port", "0", "--db",
                       f"{tmp}/bench.db", "--data-dir", DATA, "--workers", "2"])
    try:
        _, run = recipe_once(port, 1)
        one = f"{tmp}/one.json"
        with open(one, "w") as f:
            json.dump({"run": run["id"],
                       "pixels": [round(b / 255, 4) for b in test_images(1)[0]]}, f)
        postgresql(tmp, port, one)
    finally:
        stop(srv)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if ONLY == "postgresql":
        main_postgresql()
        return
    tmp = tempfile.mkdtemp(prefix="mnistd-bench-")
    srv, port = start([f"{BUILD}/mnistd", "serve", "--port", "0", "--db",
                       f"{tmp}/bench.db", "--data-dir", DATA, "--workers", "2"])
    try:
        # the exercise's dnn recipe end to end, one at a time
        secs, run = recipe_seconds(port)
        rid = run["id"]
        print(f"recipe_dnn_seconds {secs:.3f}")
        print(f"recipe_dnn_accuracy {run['validation_accuracy']:.4f}")

        # resident memory with MNIST loaded and two runs training
        mb, busy = rss_two_runs(port, srv.pid)
        print(f"rss_two_runs_mb {mb:.1f}")
        print(f"rss_runs_training {busy}")

        imgs = test_images(1000)
        one = f"{tmp}/one.json"
        with open(one, "w") as f:
            json.dump({"run": rid, "pixels": [round(b / 255, 4) for b in imgs[0]]}, f)
        batch = f"{tmp}/batch.json"
        with open(batch, "w") as f:
            json.dump({"run": rid, "pixels": [[round(b / 255, 4) for b in im] for im in imgs]}, f)
        raw = f"{tmp}/batch.bin"
        with open(raw, "wb") as f:
            f.write(b"".join(imgs))
        print(f"predict_body_bytes {os.path.getsize(one)}")

        rps, p99, bad = wrk_medians(port, one, "predict")
        print(f"predict_rps {rps:.0f}")
        print(f"predict_p99_ms {p99:.3f}")
        print(f"predict_bad {bad:.0f}")
        protocols(port, rid, imgs[0], tmp)

        # one image per request again, served by a default cnn
        cid = call(port, "POST", "/runs", {"model": "cnn", "steps": 200,
                                           "periods": 2, "seed": 1})["id"]
        crun = wait_run(port, cid, timeout=600)
        assert crun["status"] == "succeeded", crun
        one_cnn = f"{tmp}/one_cnn.json"
        with open(one_cnn, "w") as f:
            json.dump({"run": cid, "pixels": [round(b / 255, 4) for b in imgs[0]]}, f)
        rps, p99, bad = wrk_medians(port, one_cnn, "predict_cnn")
        print(f"predict_cnn_rps {rps:.0f}")
        print(f"predict_cnn_p99_ms {p99:.3f}")
        print(f"predict_cnn_bad {bad:.0f}")
        v = wrk(port, "/predict", batch, "application/json", conns=4)
        print(f"batch_json_images_per_s {v['wrk_rps'] * 1000:.0f}")
        v = wrk(port, f"/predict?run={rid}", raw, "application/octet-stream", conns=4)
        print(f"batch_raw_images_per_s {v['wrk_rps'] * 1000:.0f}")

        postgresql(tmp, port, one)

    finally:
        stop(srv)

    # HTTPS against HTTP, on copies of the database the server above left
    tls_predict(tmp, f"{tmp}/bench.db", one)

    for name, args in (("paced", ()), ("unpaced", ("--checkpoint-interval", "0"))):
        per_run, per_period = store_writes(tmp, name, args)
        print(f"store_bytes_per_run_{name} {per_run}")
        print(f"store_bytes_per_period_{name} {per_period:.0f}")

    # the ceiling with mnistd's default threading: one thread per core
    bare, bport = start([f"{BUILD}/bare_server", "0", str(max(2, os.cpu_count()))])
    try:
        rps, p99, _ = wrk_medians(bport, one, "bare")
        print(f"bare_rps {rps:.0f}")
        print(f"bare_p99_ms {p99:.3f}")
    finally:
        stop(bare)


if __name__ == "__main__":
    main()
