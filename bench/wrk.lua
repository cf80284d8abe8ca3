-- Used by bench/run.py for every wrk run. Settings come from the environment:
--   BENCH_COOKIE     Cookie header sent with every request (static request, no Lua per call)
--   BENCH_POOL       file of "cookie<TAB>json body" lines; when set, each request takes the
--                    next line of this thread's share
--   BENCH_THREADS    wrk's -t, so threads use disjoint shares of the pool
--   BENCH_METHOD     HTTP method for pool requests (default POST)
--   BENCH_CONTENT_TYPE  Content-Type of pool request bodies (default application/json)
-- At the end it prints one line: BENCHJSON {...} with counts and latency percentiles (µs).

local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

local pool_file = os.getenv("BENCH_POOL")
local next_thread_id = 0

function setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
end

if pool_file and pool_file ~= "" then
  local method = os.getenv("BENCH_METHOD") or "POST"
  local content_type = os.getenv("BENCH_CONTENT_TYPE") or ""
  if content_type == "" then content_type = "application/json" end
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local requests = {}
  local position = 0

  function init(args)
    local tid = thread_id or 0
    local index = 0
    for line in io.lines(pool_file) do
      if index % nthreads == tid then
        local tab = string.find(line, "\t", 1, true)
        local headers = {
          ["Cookie"] = string.sub(line, 1, tab - 1),
          ["Content-Type"] = content_type,
        }
        requests[#requests + 1] = wrk.format(method, nil, headers, string.sub(line, tab + 1))
      end
      index = index + 1
    end
  end

  function request()
    position = position % #requests + 1
    return requests[position]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"status_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
