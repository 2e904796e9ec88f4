-- wrk script: every request POSTs one distinct scan code with a user token.
-- Usage: wrk -t T -c C -d D -s bench/redeem.lua URL -- <dir> <path>
-- Thread n reads <dir>/codes-<n>.txt, lines "token<TAB>scanCode", and sends each line once.
-- done() prints one machine-readable line starting with BENCH.

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  local dir, target = args[1], args[2]
  lines = {}
  for line in io.lines(dir .. "/codes-" .. tid .. ".txt") do
    local token, code = line:match("^(%S+)\t(%S+)$")
    if token then
      lines[#lines + 1] = { token, code }
    end
  end
  path = target
  idx = 0
  ok = 0
  bad = 0
  exhausted = 0
end

function request()
  idx = idx + 1
  local item = lines[idx]
  if item == nil then
    -- Out of fresh codes: resend old ones (they will fail) and say so in the summary.
    exhausted = exhausted + 1
    item = lines[((idx - 1) % #lines) + 1]
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. item[1],
  }, '{"scanCode":"' .. item[2] .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_ok, total_bad, total_exhausted = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
    total_exhausted = total_exhausted + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH ok=%d bad=%d exhausted=%d requests=%d duration_us=%d p50_us=%d p90_us=%d "
      .. "p99_us=%d max_us=%d mean_us=%.0f err_connect=%d err_read=%d err_write=%d "
      .. "err_status=%d err_timeout=%d\n",
    total_ok, total_bad, total_exhausted, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout
  ))
end
