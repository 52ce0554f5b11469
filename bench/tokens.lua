-- wrk script for bench/run.sh: GET the URL with one token after another from a file.
--
--   wrk ... -s bench/tokens.lua URL -- TOKENS_FILE   one token a line, cycled in order
--   wrk ... -s bench/tokens.lua URL -- none          no token at all
--
-- Every request is formatted once, in init; request() only hands the next one out, so the
-- load generator costs the same whatever the workload. done() prints one machine-readable line:
--   WRK_JSON {"requests": ..., "duration_us": ..., "non2xx3xx": ..., "p50_us": ..., ...}

local prepared = {}
local count = 0
local next_index = 0

function init(args)
  local file = args[1]
  if file ~= nil and file ~= "none" then
    for line in io.lines(file) do
      if #line > 0 then
        count = count + 1
        prepared[count] = wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. line })
      end
    end
    if count == 0 then
      error("no token in " .. file)
    end
  else
    count = 1
    prepared[1] = wrk.format("GET", wrk.path)
  end
end

function request()
  next_index = next_index + 1
  if next_index > count then
    next_index = 1
  end
  return prepared[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx3xx": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"mean_us": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
