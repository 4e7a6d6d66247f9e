-- wrk script for the 10,000-concurrent-clients run (bench/concurrency.py). WALSAGA_WRK_MODE picks what every
-- request of this wrk process does:
--   order   POST /orders on one of a few hot SKUs for one of a few hot customers, each with its own Idempotency-Key;
--   cancel  POST /orders/{id}/cancel on one of the orders listed in WALSAGA_WRK_ORDERS (placed before the run), each
--           with its own Idempotency-Key: the first cancel of an order wins (202), the later ones must answer 409;
--   read    GET /orders/{id} on one of those orders.
-- A 429 makes a later request wait Retry-After (2 s). Each thread counts the statuses it saw; done() prints them, wrk's own error counts and latency percentiles as one
-- JSON line (prefixed WRK_JSON) for the harness.
local mode = os.getenv("WALSAGA_WRK_MODE") or "order"
local run_id = os.getenv("WALSAGA_WRK_RUN") or "run"
local authorization = "Bearer " .. (os.getenv("WALSAGA_WRK_TOKEN") or "")  -- an operator's: any customer's orders
local skus = {}
for sku in string.gmatch(os.getenv("WALSAGA_WRK_SKUS") or "hot-0", "[^,]+") do skus[#skus + 1] = sku end
local counter, threads, targets = 0, {}, {}
thread_id = 0  -- a global: setup() sets each thread's own with thread:set (a local here would shadow it)

function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
  threads[#threads + 1] = thread
end

function init(args)
  statuses = {}
  local f = io.open(os.getenv("WALSAGA_WRK_ORDERS") or "/dev/null")
  if f then
    for line in f:lines() do targets[#targets + 1] = line end
    f:close()
  end
end

local function target()
  return targets[(counter * 7 + thread_id) % #targets + 1]
end

function request()
  counter = counter + 1
  if mode == "read" then
    return wrk.format("GET", "/orders/" .. target(), {["Authorization"] = authorization})
  end
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = authorization,
                   ["Idempotency-Key"] = string.format("wrk-%s-%s-%d-%d", run_id, mode, thread_id, counter)}
  if mode == "cancel" then
    return wrk.format("POST", "/orders/" .. target() .. "/cancel", headers, "")
  end
  local body = string.format(
    '{"customer_id":"wrk-%s-c%d","currency":"USD","payment_method":"pm_card_visa",' ..
    '"items":[{"sku":"%s","quantity":1,"unit_price":"9.99"}]}', run_id, counter % 20, skus[counter % #skus + 1])
  return wrk.format("POST", "/orders", headers, body)
end

-- a client told 429 (the gateway's write queue is full) honours Retry-After before its next request; wrk asks
-- delay() before every request of the thread, so each 429 owes one later request a wait
local owed = 0

function delay()
  if owed > 0 then
    owed = owed - 1
    return 2000
  end
  return 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 429 then owed = owed + 1 end
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(total) do parts[#parts + 1] = string.format('"%d":%d', status, n) end
  io.write(string.format(
    'WRK_JSON {"mode":"%s","statuses":{%s},"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d},"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    mode, table.concat(parts, ","), summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
