-- wrk script for bench/capture.sh: one request per connection (the command line adds
-- `Connection: close`), and wrk (run with one thread) exits after TCPLIFE_BENCH_REQUESTS
-- responses, so the capture is bounded by count as well as by wrk's -d. (thread:stop() would
-- only stop sending: wrk itself waits out -d.) The connections still in flight are closed by
-- the kernel as the process exits.
local limit = tonumber(os.getenv("TCPLIFE_BENCH_REQUESTS") or "1000")
local done = 0

function response(status, headers, body)
  done = done + 1
  if done >= limit then
    io.stderr:write(string.format("wrk-stop.lua: %d responses, exiting\n", done))
    io.stderr:flush()
    os.exit(0)
  end
end
