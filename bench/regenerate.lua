-- wrk script: regenerateContent over a pool of containers, a fresh Idempotency-Key each time.
-- The container list comes from the file named by the CONTAINERS environment variable.
local containers = {}
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  for line in io.lines(os.getenv("CONTAINERS")) do
    containers[#containers + 1] = line
  end
  counter = tid * 1000003
end

request = function()
  counter = counter + 1
  local cid = containers[(counter % #containers) + 1]
  local headers = {}
  headers["X-Api-Key"] = "lp_test_full"
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", tid, counter, os.time())
  return wrk.format("POST", "/v1/content/" .. cid .. "/regenerate", headers,
                    '{"brief":{"cta":"Benchmark"}}')
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  -- per-thread status counts are not merged by wrk; the Python side counts via the journal
end
