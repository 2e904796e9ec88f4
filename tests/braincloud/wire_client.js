// Drives the UNCHANGED official brainCloud JS client (npm braincloud@4.15.0, with the
// xmlhttprequest@1.8.0 polyfill its README recommends for Node) against a live server.
// Input: the JSON scenario in $WIRE_SCENARIO. Output: one JSON object on stdout with every
// callback's response and what a pass-through proxy saw. Each call has its own time limit,
// so a callback that never fires is reported as {"timeout": true}, not a hang.
"use strict";

const http = require("http");

global.XMLHttpRequest = require("xmlhttprequest").XMLHttpRequest;
XMLHttpRequest.DONE = 4;
global.window = { XMLHttpRequest };
const bc = require("braincloud");

const scenario = JSON.parse(process.env.WIRE_SCENARIO);
// Longer than the client's own wait before it resends a lost packet (15 s), with room for a
// loaded machine: a run of two suites at once on 2 cores once took the resend past 20 s.
const CALL_MS = 60000;
const wrappers = [];

// A pass-through proxy in front of the server: logs each packet, and can lose the answer to
// one packet (answering 503 instead) so that the client resends the very same body.
const seen = [];
let loseNextRedeemAnswer = false;
const upstream = new URL(scenario.url);
const proxy = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    let ops = [];
    try {
      ops = JSON.parse(body.toString()).messages.map((m) => m.operation);
    } catch (e) {
      ops = ["<unparsed>"];
    }
    const lose = loseNextRedeemAnswer && ops.includes("REDEEM_CODE");
    if (lose) loseNextRedeemAnswer = false;
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: "/dispatcherv2",
        method: "POST",
        headers: { ...req.headers, host: upstream.host },
      },
      (up) => {
        const back = [];
        up.on("data", (c) => back.push(c));
        up.on("end", () => {
          const answer = Buffer.concat(back);
          seen.push({ ops, body: body.toString(), status: up.statusCode, lost: lose });
          if (lose) {
            res.writeHead(503, { "Retry-After": "0" });
            res.end("lost on the way back");
          } else {
            res.writeHead(up.statusCode, { "Content-Type": "application/json" });
            res.end(answer);
          }
        });
      }
    );
    forward.on("error", (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    forward.end(body);
  });
});

function wrapper(name, secret, viaProxy) {
  const w = new bc.BrainCloudWrapper(name);
  w.initialize(scenario.appId, secret, "1.0.0");
  w.brainCloudClient.setServerUrl(viaProxy ? `http://127.0.0.1:${proxy.address().port}` : scenario.url);
  wrappers.push(w);
  return w;
}

function call(start) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ timeout: true }), CALL_MS);
    start((result) => {
      clearTimeout(timer);
      resolve(result);
    });
  });
}

async function main() {
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const out = {};

  // Anonymous sign-in, twice with the same stored anonymous id.
  const anon = wrapper("anon", scenario.secret, false);
  out.anonymous = await call((cb) => anon.authenticateAnonymous(cb));
  const anonAgain = wrapper("anon", scenario.secret, false);
  out.anonymousAgain = await call((cb) => anonAgain.authenticateAnonymous(cb));

  // External sign-in with a user token minted by the backend; every call through the proxy.
  const ext = wrapper("ext", scenario.secret, true);
  out.external = await call((cb) =>
    ext.authenticateExternal(scenario.profileId, scenario.token, "backend", true, cb)
  );
  const rc = ext.redemptionCode;
  out.redeem = await call((cb) => rc.redeemCode(scenario.sloppyCode, scenario.codeType, null, cb));
  out.redeemAgain = await call((cb) => rc.redeemCode(scenario.sloppyCode, null, null, cb));
  out.unknownCode = await call((cb) => rc.redeemCode(scenario.unknownCode, null, null, cb));
  out.unknownType = await call((cb) =>
    rc.redeemCode(scenario.secondCode, scenario.unknownType, null, cb)
  );
  // Two calls in one tick: the client bundles them into one packet.
  [out.bundledRedeem, out.bundledList] = await Promise.all([
    call((cb) => rc.redeemCode(scenario.secondCode, null, { note: "bundled" }, cb)),
    call((cb) => rc.getRedeemedCodes(scenario.codeType, cb)),
  ]);
  // The answer to this redeem is lost: the client sends the same body again.
  loseNextRedeemAnswer = true;
  out.resent = await call((cb) => rc.redeemCode(scenario.thirdCode, null, null, cb));
  out.list = await call((cb) => rc.getRedeemedCodes(null, cb));

  // A wrong app secret: the callback still fires, with the signature error.
  const wrong = wrapper("wrong", "not-the-secret", false);
  out.wrongSecret = await call((cb) => wrong.authenticateAnonymous(cb));

  // A bad External token.
  const bad = wrapper("bad", scenario.secret, false);
  out.badToken = await call((cb) =>
    bad.authenticateExternal(scenario.profileId, scenario.token + "x", "backend", true, cb)
  );

  out.proxy = seen;
  for (const w of wrappers) w.brainCloudClient.stopHeartBeat();
  proxy.close();
  // The client logs to stdout too: the result is the one line after the marker.
  process.stdout.write("\nWIRE_RESULT " + JSON.stringify(out) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(String((err && err.stack) || err));
    process.exit(1);
  }
);
