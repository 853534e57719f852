-- POST with a small JSON body and a new Idempotency-Key every request
local n = 0
local prefix = tostring(os.time()) .. "-"
function request()
    n = n + 1
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Idempotency-Key"] = prefix .. n,
    }, '{"amount":10,"currency":"EUR"}')
end
