-- POST with a small JSON body; headers come from wrk -H
wrk.method = "POST"
wrk.body = '{"amount":10,"currency":"EUR"}'
wrk.headers["Content-Type"] = "application/json"
