-- POST /introspect of one pre-issued access token (BENCH_TOKEN), client_secret_basic
wrk.method = "POST"
wrk.path = "/introspect"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "token=" .. os.getenv("BENCH_TOKEN") .. "&token_type_hint=access_token"
