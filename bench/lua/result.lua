-- One load for bench/side_by_side.py, pointed at either server (ours or the peer).
-- Environment:
--   BENCH_METHOD     GET (default) or POST
--   BENCH_BODY       urlencoded body of every POST
--   BENCH_BODY_FILE  instead: one body per line, each sent once (single-use refresh
--                    tokens); run with -t1. An exhausted list sends "exhausted", which
--                    the server refuses (counted as non-2xx).
--   BENCH_AUTH       value of the Authorization header
--   BENCH_LABEL      label of the result line
-- Prints one line at the end:
--   RESULT label=.. requests=.. duration_s=.. rps=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. non2xx=.. sock_errors=..
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
local body_file = os.getenv("BENCH_BODY_FILE") or ""
local auth = os.getenv("BENCH_AUTH") or ""
local label = os.getenv("BENCH_LABEL") or "load"
local bodies = {}
local next_body = 0

wrk.method = method
wrk.headers["Accept"] = "application/json"
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end
if method == "POST" then
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = body
end

function init(args)
  if body_file ~= "" then
    for line in io.lines(body_file) do
      bodies[#bodies + 1] = line
    end
  end
end

if body_file ~= "" then
  function request()
    next_body = next_body + 1
    return wrk.format(nil, nil, nil, bodies[next_body] or "exhausted")
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT label=%s requests=%d duration_s=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d sock_errors=%d\n",
    label, summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
