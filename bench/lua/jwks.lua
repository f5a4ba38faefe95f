-- GET /jwks.json
wrk.method = "GET"
wrk.path = "/jwks.json"
wrk.headers["Accept"] = "application/json"
