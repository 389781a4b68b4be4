-- wrk script: regenerateContent over a pool of containers, a fresh Idempotency-Key each time.
-- The container list comes from the file named by the CONTAINERS environment variable.
local containers = {}
local counter = 0
local thread_id = 0
local threads = {}
local watched = {400, 401, 402, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  run = os.getenv("RUN") or "run"  -- the warm-up and the measurement never share a key
  for line in io.lines(os.getenv("CONTAINERS")) do
    containers[#containers + 1] = line
  end
  -- the two wrk threads start half a pool apart, so they never meet on a running job (R10)
  counter = tid * math.floor(#containers / 2)
end

request = function()
  counter = counter + 1
  local cid = containers[(counter % #containers) + 1]
  local headers = {}
  headers["X-Api-Key"] = "lp_test_full"
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("bench-%s-%d-%d-%d", run, tid, counter, os.time())
  return wrk.format("POST", "/v1/content/" .. cid .. "/regenerate", headers,
                    '{"brief":{"cta":"Benchmark"}}')
end

response = function(status, headers, body)
  if status >= 300 then
    local name = "s_" .. status
    _G[name] = (_G[name] or 0) + 1
    if status >= 500 or status == 409 then
      last_error = string.sub(body, 1, 300)
    end
  end
end

done = function(summary, latency, requests)
  -- Each thread counts in its own Lua state; add them up here, by status.
  local parts = {}
  for _, code in ipairs(watched) do
    local n = 0
    for _, thread in ipairs(threads) do
      n = n + (thread:get("s_" .. code) or 0)
    end
    if n > 0 then
      table.insert(parts, code .. "=" .. n)
    end
  end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
  for _, thread in ipairs(threads) do
    local e = thread:get("last_error")
    if e then
      io.write("last error: " .. e .. "\n")
      break
    end
  end
end
