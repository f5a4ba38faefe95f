-- GET /.well-known/openid-configuration
wrk.method = "GET"
wrk.path = "/.well-known/openid-configuration"
wrk.headers["Accept"] = "application/json"
