-- post_body.lua: wrk script that POSTs the file named by the environment
-- variable BODY with the Content-Type in CTYPE (and, when HLEN is set, the
-- Open Inference Protocol's Inference-Header-Content-Length: HLEN), and
-- prints latency percentiles in a form scripts/bench.sh reads.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CTYPE") or "application/json"
if os.getenv("HLEN") then
  wrk.headers["Inference-Header-Content-Length"] = os.getenv("HLEN")
end

function done(summary, latency, requests)
  io.write(string.format("wrk_requests %d\n", summary.requests))
  io.write(string.format("wrk_seconds %.3f\n", summary.duration / 1e6))
  io.write(string.format("wrk_rps %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("wrk_p50_ms %.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("wrk_p99_ms %.3f\n", latency:percentile(99) / 1000))
  local e = summary.errors
  io.write(string.format("wrk_errors %d\n", e.connect + e.read + e.write + e.timeout))
  io.write(string.format("wrk_non2xx %d\n", e.status))
end
