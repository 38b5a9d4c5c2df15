// Sends calls with @segment/analytics-node, as an app would, and reports what it saw.
// stdin: {"host", "writeKey", "calls": [[method, params], ...]}, params as the library's
// own (messageId, timestamp...). stdout: {"responses": [{request, status, body}],
// "results": [{messageId, error}]}: every request with its answer, and each call's callback.
// tests/e2e/test_v1_clients.py runs it; `make clients` installs the library.
"use strict";

const { Analytics } = require("@segment/analytics-node");

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { host, writeKey, calls } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

  const responses = [];
  // The library's default client is globalThis.fetch; this is that, keeping each answer.
  const httpClient = async (url, init) => {
    const response = await fetch(url, init);
    responses.push({
      request: init.body,
      status: response.status,
      body: await response.clone().text(),
    });
    return response;
  };
  // One batch for all the calls; no retries, so an unexpected failure shows at once.
  const analytics = new Analytics({
    writeKey,
    host,
    flushAt: calls.length,
    maxRetries: 0,
    httpClient,
  });
  const results = calls.map(([method, params]) => {
    const result = { messageId: params.messageId, error: null };
    analytics[method](params, (error) => {
      if (error) result.error = String(error.reason || error.message || error);
    });
    return result;
  });
  await analytics.closeAndFlush({ timeout: 20000 });
  process.stdout.write(JSON.stringify({ responses, results }));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(1);
});
