-- wrk's sticky client for the race (race.sh with LOAD=wrk): every wrk thread
-- is one session. Its first answers set the `Session-A` cookie; every later
-- request sends it, so the run measures resumed sessions, as the issue's race
-- did. A misroute is an answer without a new cookie whose `x-pod` differs from
-- the pod that set the thread's current cookie (counted once the cookie has
-- been stable for 1,000 answers, so the requests still in flight with an
-- earlier cookie, and late first answers, do not count: at 100, races counted
-- a few at 102 to 200 answers). done() prints one JSON line for race.sh.
--
--   wrk -t1 -c64 -d6s -s examples/gateway/benches/sticky.lua http://127.0.0.1:19110/get

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

cookie = nil
pod = nil
stable = 0
misroutes = 0
sessions = 0
seen = nil

function request()
  if cookie then
    return wrk.format("GET", nil, { ["Cookie"] = "Session-A=" .. cookie })
  end
  return wrk.format("GET")
end

function response(status, headers, body)
  local set = headers["Set-Cookie"] or headers["set-cookie"]
  local got = headers["x-pod"] or headers["X-Pod"]
  if set then
    local value = string.match(set, "^Session%-A=([^;]+)")
    if value and value ~= cookie then
      cookie = value
      pod = got
      stable = 0
      sessions = sessions + 1
      return
    end
  end
  stable = stable + 1
  if cookie and stable > 1000 and got ~= pod then
    misroutes = misroutes + 1
    -- The first one, to tell a real misroute from a header value wrk's
    -- parser cut short.
    if not seen then
      seen = tostring(got) .. " for " .. tostring(pod) .. " after " .. stable
    end
  end
end

function done(summary, latency, requests)
  local m, s = 0, 0
  for _, t in ipairs(threads) do
    m = m + t:get("misroutes")
    s = s + t:get("sessions")
    local first = t:get("seen")
    if first then io.write("first misroute: x-pod " .. first .. " answers\n") end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, '
      .. '"non_2xx": %d, "transport_errors": %d, "misroutes": %d, "sessions_created": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, m, s))
end
