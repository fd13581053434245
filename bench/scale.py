#!/usr/bin/python3
"""scale.py DATA [MAX_WORKERS]: training throughput against the number of
workers on one machine (issue 20).

For workers = 1, 2, 4, ... up to MAX_WORKERS (default: the core count,
nproc; MAX_WORKERS itself is measured too when it is not a power of two),
the exercise's dnn recipe (dnn [100, 100], Adagrad 0.05, 1000 steps, batch
30, clip 5, 10 periods) is trained `RUNS_PER_WORKER x workers` times with
seeds 1, 2, ..., two ways:

- service: one `mnistd serve --workers N` on a fresh SQLite database (in a
  temporary folder, so on the same disk as /tmp); one warm-up run loads
  MNIST first, then every run is posted at once (POST /runs) and the wall
  time runs from the first POST to the last run's finished_at; a run's
  time is finished_at - started_at (the server's clock);
- engine: `mnistd train` processes, N side by side (each of N lanes trains
  its share one after the other): no HTTP, no store; a run's time is its
  process's wall time (MNIST is read by each process: a few tens of ms).

Each line prints runs, wall seconds, runs/s, the efficiency against one
worker (runs/s over N x the 1-worker runs/s), the median run time, and the
CPU seconds (user + system) spent per run: by the server process from the
first POST to the last run's end, or by the `mnistd train` processes. CPU
per run does not depend on the share of the cores the benchmark gets, so
on a machine shared with other work it shows what the wall figures cannot:
whether a run costs more work when more run side by side. cores_used is
CPU per run x runs/s: the cores the runs kept busy on average (a lone run
keeps more than one busy: its period ends are evaluated on a helper thread
beside its trainer, engine/train.h).
The last table puts the service's runs/s over the engine's: the store's
and the service's share. Every failed run or process is an error (exit 1).

Environment: MNISTD_CMD, the command that starts the binary (default
build/mnistd; the bundle sets its loader), SCALE_RUNS_PER_WORKER (4),
SCALE_REPEATS (1: with more, each line is the repeat with the median
runs/s), SCALE_SERVE_ARGS (extra `mnistd serve` flags, split on spaces).
The load average is printed before and after: other processes on the
machine take cores from the benchmark."""
import datetime
import json
import os
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

DATA = sys.argv[1] if len(sys.argv) > 1 else "data"
MAX_WORKERS = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
CMD = shlex.split(os.environ.get("MNISTD_CMD", "build/mnistd"))
PER_WORKER = int(os.environ.get("SCALE_RUNS_PER_WORKER", "4"))
REPEATS = int(os.environ.get("SCALE_REPEATS", "1"))
SERVE_ARGS = os.environ.get("SCALE_SERVE_ARGS", "").split()
RECIPE = {"model": "dnn", "hidden_units": [100, 100], "optimizer": "adagrad",
          "learning_rate": 0.05, "steps": 1000, "batch_size": 30,
          "clip_norm": 5, "periods": 10}
TRAIN_ARGS = ["--model", "dnn", "--hidden-units", "100,100", "--optimizer",
              "adagrad", "--learning-rate", "0.05", "--steps", "1000",
              "--batch-size", "30", "--clip-norm", "5", "--periods", "10"]


def worker_counts(top):
    ns, n = [], 1
    while n <= top:
        ns.append(n)
        n *= 2
    if ns[-1] != top:
        ns.append(top)
    return ns


def call(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"scale: {method} {path}: {e.code} {e.read().decode()}")


def iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def wait_all(port, ids, timeout):
    """Waits until none of the server's runs is queued or running (two
    one-row queries every 0.1 s, cheap for the server), then returns the
    runs of ids, by id."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not any(call(port, "GET", f"/runs?status={st}&limit=1")["runs"]
                   for st in ("queued", "running")):
            runs = call(port, "GET", "/runs?limit=1000")["runs"]
            return {r["id"]: r for r in runs if r["id"] in set(ids)}
        time.sleep(0.1)
    sys.exit(f"scale: runs did not end within {timeout} s")


def cpu_seconds(pid):
    """User + system CPU seconds of process pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service(workers, n_runs):
    """(wall seconds, [run seconds], CPU seconds) for n_runs recipe runs
    posted at once to a fresh server with `workers` workers."""
    with tempfile.TemporaryDirectory(prefix="mnistd-scale-") as tmp:
        cmd = CMD + ["serve", "--port", "0", "--db", f"{tmp}/scale.db",
                     "--data-dir", DATA, "--workers", str(workers),
                     "--max-queued", str(n_runs + 1)] + SERVE_ARGS
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        try:
            line = p.stdout.readline()
            if not line.startswith("listening on port "):
                sys.exit(f"scale: mnistd serve did not start: {line!r}")
            port = int(line.split()[-1])
            warm = call(port, "POST", "/runs", dict(RECIPE, seed=0))["id"]
            if wait_all(port, [warm], 300)[warm]["status"] != "succeeded":
                sys.exit("scale: the warm-up run did not succeed")
            t0, cpu0 = time.time(), cpu_seconds(p.pid)
            ids = [call(port, "POST", "/runs", dict(RECIPE, seed=i + 1))["id"]
                   for i in range(n_runs)]
            runs = wait_all(port, ids, 60 + 30 * n_runs)
            cpu = cpu_seconds(p.pid) - cpu0
            if len(runs) != n_runs:
                sys.exit(f"scale: {n_runs - len(runs)} runs went missing")
            bad = [r for r in runs.values() if r["status"] != "succeeded"]
            if bad:
                sys.exit(f"scale: run {bad[0]['id']} ended {bad[0]['status']}: "
                         f"{bad[0].get('error')}")
            end = max(iso(r["finished_at"]) for r in runs.values())
            times = [iso(r["finished_at"]) - iso(r["started_at"])
                     for r in runs.values()]
            return end - t0, times, cpu
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)


def engine(workers, n_runs):
    """(wall seconds, [run seconds], CPU seconds) for n_runs `mnistd train`
    processes, `workers` at a time."""
    times, failed, lock = [], [], threading.Lock()
    seeds = iter(range(1, n_runs + 1))

    def lane():
        while True:
            with lock:
                seed = next(seeds, None)
            if seed is None:
                return
            t = time.time()
            r = subprocess.run(CMD + ["train"] + TRAIN_ARGS +
                               ["--seed", str(seed), "--data-dir", DATA],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            with lock:
                times.append(time.time() - t)
                if r.returncode:
                    failed.append(r.stderr.strip())

    t0 = time.time()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lanes = [threading.Thread(target=lane) for _ in range(workers)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    wall = time.time() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if failed:
        sys.exit(f"scale: mnistd train failed: {failed[0]}")
    return wall, times, (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)


def measure(fn, workers):
    n_runs = PER_WORKER * workers
    reps = [fn(workers, n_runs) for _ in range(REPEATS)]
    reps.sort(key=lambda r: n_runs / r[0])
    wall, times, cpu = reps[len(reps) // 2]
    return {"workers": workers, "runs": n_runs, "wall": wall,
            "rps": n_runs / wall, "median": statistics.median(times),
            "cpu": cpu / n_runs}


def table(title, rows):
    print(title)
    print(f"{'workers':>7} {'runs':>5} {'wall_s':>7} {'runs/s':>7} "
          f"{'efficiency':>10} {'median_run_s':>12} {'cpu_per_run_s':>13} "
          f"{'cores_used':>10}")
    base = rows[0]["rps"]
    for r in rows:
        eff = r["rps"] / (r["workers"] * base)
        print(f"{r['workers']:>7} {r['runs']:>5} {r['wall']:>7.2f} "
              f"{r['rps']:>7.2f} {eff:>10.2f} {r['median']:>12.3f} "
              f"{r['cpu']:>13.3f} {r['cpu'] * r['rps']:>10.2f}")
    sys.stdout.flush()


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ns = worker_counts(MAX_WORKERS)
    print(f"scale: {os.cpu_count()} cores online, workers {ns}, "
          f"{PER_WORKER} runs per worker, {REPEATS} repeat(s); "
          f"load average {load()}")
    sys.stdout.flush()
    srv = [measure(service, n) for n in ns]
    table("service: POST /runs, SQLite store (run time: started_at to "
          "finished_at)", srv)
    eng = [measure(engine, n) for n in ns]
    table("engine alone: `mnistd train` processes side by side (run time: "
          "process wall time)", eng)
    print("service runs/s over engine runs/s (the store's and service's share)")
    for s, e in zip(srv, eng):
        print(f"{s['workers']:>7} {s['rps'] / e['rps']:>7.2f}")
    print(f"load average at the end {load()}")


if __name__ == "__main__":
    main()
