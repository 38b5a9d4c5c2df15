-- wrk script: one valid user_login event per request, as every existing client sends them.
-- The key comes from the environment: SLUICE_API_KEY=sk_... wrk -s toolkit/one_event.lua URL
-- (make loadtest ARGS="--wrk" sets it up, with an app of its own).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = os.getenv("SLUICE_API_KEY")
local sent = 0
request = function()
  sent = sent + 1
  local body = '{"eventName":"user_login","userId":' .. (sent % 100000 + 1) .. ',"method":"password"}'
  return wrk.format(nil, nil, nil, body)
end
