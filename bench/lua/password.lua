-- POST /token grant_type=password (correct password: lockout stays on but never trips)
wrk.method = "POST"
wrk.path = "/token"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=password&username=" .. os.getenv("BENCH_USERNAME")
  .. "&password=" .. os.getenv("BENCH_PASSWORD_URLENC") .. "&scope=openid"
