// Operator calls through openclaw-node (a Node.js client of OpenClaw's
// gateway protocol) against a gateway; prints what each returned as JSON.
//
//   node openclaw-node.mjs <openclaw-node dir> <ws url> <token>
import { pathToFileURL } from "node:url";
import path from "node:path";

const [pkg, url, token] = process.argv.slice(2);
const { OpenClawClient } = await import(pathToFileURL(path.join(pkg, "dist", "index.mjs")).href);
const c = new OpenClawClient({ url, token, reconnect: false });
const out = {};
const step = async (name, f) => {
  try {
    out[name] = await f();
  } catch (e) {
    out[name] = { error: String((e && e.message) || e) };
  }
};
await step("connect", async () => {
  const h = await c.connect();
  return { type: h.type, protocol: h.protocol, scopes: h.auth && h.auth.scopes };
});
await step("health", () => c.health());
await step("agents", () => c.agents.list());
await step("config", () => c.config.get());
await step("chatSync", () => c.chatSync(process.env.OCN_MESSAGE || "hello"));
await step("sessions", () => c.sessions.list());
await step("history", () => c.sessions.history("agent:main:main", { limit: 10 }));
await step("channels", () => c.channels.status());
await step("wait", () => c.agentWait("no-such-run", { timeoutMs: 100 }));
process.stdout.write(JSON.stringify(out));
await c.disconnect();
process.exit(0);
