"""Load: wrk on POST /predict (one real MNIST test image as JSON), 2
threads, 16 connections, 8 seconds, while two dnn runs train. No answer
may be other than 2xx, no socket may fail, and both runs must succeed.
Prints requests/s and the p50/p99 latencies."""
import json
import re
import shutil
import subprocess
import time

import pytest

from conftest import DNN_SMALL, time_scale

# long enough to outlast the 8 s of load (about 11 s alone on an idle core;
# as long in a slower build: fewer steps there)
LOAD_RUN = {"model": "dnn", "hidden_units": [100, 100],
            "steps": int(30000 / time_scale()) // 10 * 10, "periods": 10}
DURATION = 8
# A slower build (coverage, -O0, sanitizers) trains many times slower: there
# 30000 steps would take tens of minutes, far past the wait for the runs to
# succeed. A short calibration run of the same model measures this machine;
# the load runs then train what lasts OUTLAST_S seconds alone here, at most
# LOAD_RUN's steps (which a normal build reaches: it is not shortened).
CALIBRATION = dict(LOAD_RUN, steps=300, periods=1, seed=3)
OUTLAST_S = 60

LUA = r"""
local f = assert(io.open("%(body)s", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
  end
  local e = summary.errors
  -- flushed here, so that a failed write is an error (exit 1), not a lost line
  assert(io.stdout:write(string.format(
    'WRKSTATS {"requests": %%d, "duration_us": %%d, "non2xx": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, ' ..
    '"p90_us": %%d, "p99_us": %%d, "max_us": %%d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max)))
  assert(io.stdout:flush())
end
"""


def load_steps(c):
    """LOAD_RUN's steps for this machine (see CALIBRATION), and the seconds
    one step takes alone here."""
    run = c.train(CALIBRATION, timeout=600)
    per_step = run["periods"][0]["seconds"] / CALIBRATION["steps"]
    periods = LOAD_RUN["periods"]
    steps = int(OUTLAST_S / per_step) // periods * periods
    return min(LOAD_RUN["steps"], max(steps, 100 * periods)), per_step


def test_predict_under_load_while_training(start_server, validate, mnist, tmp_path):
    wrk = shutil.which("wrk")
    if not wrk:
        pytest.fail("wrk is not installed: run `make deps` (scripts/deps.sh installs "
                    "Debian's wrk package)")
    srv = start_server(workers=2)
    c = srv.client
    model = c.train(DNN_SMALL)
    imgs, labels = mnist.images("test", 1)
    payload = {"run": model["id"], "pixels": [b / 255.0 for b in imgs[0]]}
    body = validate(c.post_json("/predict", payload), "/predict", "post", 200)
    assert body["predictions"][0]["class"] == labels[0]

    steps, per_step = load_steps(c)
    load_run = dict(LOAD_RUN, steps=steps)
    runs = [c.create_run(dict(load_run, seed=s))["id"] for s in (1, 2)]
    for rid in runs:
        c.wait_for_run(rid, "running", timeout=30, until=lambda r: r["progress"]["step"] > 0)
    steps_before = {rid: c.run(rid)["progress"]["step"] for rid in runs}

    body_path = tmp_path / "predict.json"
    body_path.write_text(json.dumps(payload))
    script = tmp_path / "predict.lua"
    script.write_text(LUA % {"body": body_path})
    cmd = [wrk, "-t2", "-c16", f"-d{DURATION}s", "--timeout", "5s", "-s", str(script),
           f"http://127.0.0.1:{srv.port}/predict"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=DURATION + 30)
    took = time.monotonic() - t0
    assert out.returncode == 0, f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}"
    # wrk reports a script that does not load ("<script>: <error>") and goes
    # on without it: plain requests, no done(), no stats
    assert str(script) not in out.stderr, f"the lua script did not load: {out.stderr}"
    m = re.search(r"^WRKSTATS (\{.*\})$", out.stdout, re.M)
    assert m, f"no stats from the lua script:\n{out.stdout}\n{out.stderr}"
    st = json.loads(m.group(1))

    # the runs trained during the whole load: still running when it ended
    during = {rid: c.run(rid) for rid in runs}
    rps = st["requests"] / (st["duration_us"] / 1e6)
    print(f"\nload: {st['requests']} requests in {st['duration_us'] / 1e6:.1f} s: "
          f"{rps:.0f} requests/s, p50 {st['p50_us'] / 1000:.2f} ms, p90 "
          f"{st['p90_us'] / 1000:.2f} ms, p99 {st['p99_us'] / 1000:.2f} ms, max "
          f"{st['max_us'] / 1000:.2f} ms (wrk -t2 -c16 -d{DURATION}s, 2 runs of {steps} "
          f"steps training: "
          + ", ".join(f"run {rid} step {steps_before[rid]} -> {during[rid]['progress']['step']}"
                      for rid in runs) + ")")
    assert st["requests"] > 0
    assert st["non2xx"] == 0, st
    for k in ("connect", "read", "write", "timeout", "status"):
        assert st[k] == 0, f"{k} errors: {st}"
    assert took < DURATION + 10
    for rid, run in during.items():
        assert run["status"] == "running", f"run {rid} did not outlast the load: {run['status']}"
        assert run["progress"]["step"] > steps_before[rid], "training starved under load"

    for rid in runs:
        done = c.wait_for_run(rid, "succeeded", timeout=max(120, 4 * steps * per_step))
        assert len(done["periods"]) == LOAD_RUN["periods"]
    # the server is still well: the same prediction as before the load
    again = validate(c.post_json("/predict", payload), "/predict", "post", 200)
    assert again["predictions"] == body["predictions"]
    rc, took = srv.stop()
    assert rc == 0 and took < 10
