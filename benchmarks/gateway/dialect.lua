-- wrk script: the same small question in one of the gateway's three dialects (DIALECT=chat|messages|responses),
-- for bench_dialects.sh. Env: MODEL (default mock-gpt), API_KEY (default sk-bench).
local model   = os.getenv("MODEL") or "mock-gpt"
local api_key = os.getenv("API_KEY") or "sk-bench"
local dialect = os.getenv("DIALECT") or "chat"

wrk.method = "POST"
wrk.headers["Content-Type"]  = "application/json"
wrk.headers["Authorization"] = "Bearer " .. api_key
if dialect == "messages" then
  wrk.path = "/v1/messages"
  wrk.body = '{"model":"' .. model .. '","system":"You are a helpful assistant.",' ..
    '"messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16,"temperature":0}'
elseif dialect == "responses" then
  wrk.path = "/v1/responses"
  wrk.body = '{"model":"' .. model .. '","instructions":"You are a helpful assistant.",' ..
    '"input":"Say hello in five words.","max_output_tokens":16,"temperature":0}'
else
  wrk.path = "/v1/chat/completions"
  wrk.body = '{"model":"' .. model .. '","messages":[' ..
    '{"role":"system","content":"You are a helpful assistant."},' ..
    '{"role":"user","content":"Say hello in five words."}],"max_tokens":16,"temperature":0}'
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format('WRK_JSON {"requests":%d,"rps":%.1f,"lat_p50_ms":%.3f,"err_status":%d}\n',
    summary.requests, summary.requests / secs, latency:percentile(50) / 1000, summary.errors.status))
end
