-- POST /token grant_type=refresh_token with rotation. Refresh tokens are single-use
-- (reuse revokes the family), so each request takes the next pre-minted token from
-- BENCH_REFRESH_FILE (one a line). Run with -t1: one thread, one list, no repeats.
local tokens = {}
local next_index = 0
local headers = {
  ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
  ["Content-Type"] = "application/x-www-form-urlencoded",
}

function init(args)
  for line in io.lines(os.getenv("BENCH_REFRESH_FILE")) do
    tokens[#tokens + 1] = line
  end
end

function request()
  next_index = next_index + 1
  local token = tokens[next_index]
  if token == nil then
    -- exhausted: the server answers invalid_grant, which wrk counts as non-2xx
    token = "exhausted"
  end
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end
