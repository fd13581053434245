#!/usr/bin/python3
"""sweep_bench.py BUILD DATA: the hyperparameter search benchmark (issue
17). Starts mnistd (2 workers) on a fresh database and measures, printing
`name value` lines:
- the exercise's search through POST /sweeps: 12 dnn trials over the
  learning rate (log-uniform, 0.0005 to 0.5) and the hidden units, 2 in
  parallel, the median stopping rule (grace 2 periods), seed 1, 1000 steps
  of batch 30 in 5 periods; wall time from the POST to the sweep's
  finished_at, the best validation accuracy and the pruned count;
- the same 12 trials (the runs' own resolved params, seeds included) one
  after another through POST /runs, each waited for before the next, no
  early stopping: wall time of the whole;
- when python3-torch is installed, the same search done in Python with
  PyTorch (bench/torch_sweep.py, run by scripts/bench.sh): reported there.
The ratios are computed by scripts/bench.sh from the same run."""
import datetime
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD, DATA = sys.argv[1], sys.argv[2]

SEARCH = {
    "base": {"model": "dnn", "steps": 1000, "periods": 5},
    "space": {"learning_rate": {"min": 0.0005, "max": 0.5, "scale": "log"},
              "hidden_units": {"values": [[100, 100], [200, 100], [300]]}},
    "algorithm": "random", "trials": 12, "parallel": 2,
    "early_stopping": {"rule": "median", "grace_periods": 2}, "seed": 1,
}


def call(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.Popen([f"{BUILD}/mnistd", "serve", "--port", "0", "--db", f"{tmp}/b.db",
                              "--data-dir", DATA, "--workers", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        if not line.startswith("listening on port "):
            p.kill()
            sys.exit(f"sweep_bench: mnistd did not start: {line!r}")
        port = int(line.split()[-1])
        try:
            t0 = time.time()
            sid = call(port, "POST", "/sweeps", SEARCH)["id"]
            while True:
                w = call(port, "GET", f"/sweeps/{sid}")
                if w["status"] not in ("queued", "running"):
                    break
                time.sleep(0.05)
            if w["status"] != "succeeded":
                sys.exit(f"sweep_bench: the sweep ended {w['status']}: {w['error']}")
            print(f"sweep_12_seconds {iso(w['finished_at']) - t0:.2f}")
            print(f"sweep_12_best_accuracy {w['best']['objective']:.4f}")
            print(f"sweep_12_pruned {w['counts']['pruned']}")
            trials = [call(port, "GET", f"/runs/{t['run']}")["params"] for t in w["trials"]]

            # the same 12 trials one after another, no early stopping
            t0 = time.time()
            for params in trials:
                rid = call(port, "POST", "/runs", params)["id"]
                while True:
                    run = call(port, "GET", f"/runs/{rid}")
                    if run["status"] not in ("queued", "running"):
                        break
                    time.sleep(0.01)
                if run["status"] != "succeeded":
                    sys.exit(f"sweep_bench: run {rid} ended {run['status']}")
            print(f"sweep_12_serial_seconds {time.time() - t0:.2f}")
            with open(f"{tmp}/trials.json", "w") as f:
                json.dump(trials, f)
            # the trials' params for the PyTorch version of the search
            print("sweep_12_trials_json " + json.dumps(trials, separators=(",", ":")))
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)


if __name__ == "__main__":
    main()
