-- Request generation and a machine-readable summary for bench/run.py.
--
-- With no script arguments every request is the same GET (plus any -H headers),
-- which wrk then builds once. With "-- ranges <file size> <range length> <seed>"
-- each request asks for a random range of the file; the seed is fixed per round
-- so that both servers are sent the same sequence of ranges.

local size, span

local function random_range()
   local first = math.floor(math.random() * (size - span + 1))
   local range = "bytes=" .. first .. "-" .. (first + span - 1)
   return wrk.format(nil, nil, { ["Range"] = range })
end

function init(args)
   if args[1] == "ranges" then
      size, span = tonumber(args[2]), tonumber(args[3])
      math.randomseed(tonumber(args[4]))
      -- Defined only here: wrk treats a script without request() as static.
      request = random_range
   end
end

-- One line the runner parses; wrk's own text output stays above it for humans.
-- "status" is wrk's "Non-2xx or 3xx responses" count (statuses above 399).
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"duration_us": %.0f, "requests": %.0f, "bytes": %.0f, "connect": %.0f, "read": %.0f, '
         .. '"write": %.0f, "status": %.0f, "timeout": %.0f, "p50_us": %.0f, "p99_us": %.0f}\n',
      summary.duration, summary.requests, summary.bytes, e.connect, e.read,
      e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
