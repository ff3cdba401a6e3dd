// Prints, as JSON, OpenClaw's params schema of each gateway method named on
// the command line: {"method": schema | null}. The schemas are read from
// the installed openclaw package's own validators (their .schema), so the
// answer is what OpenClaw's gateway enforces. Run with Node 24:
//
//   node schemas.mjs <openclaw dist dir> agent chat.history ...
//   node schemas.mjs <openclaw dist dir> --exports AgentsListResultSchema ...
//
// Used by the schema-compatibility test (openclaw_compat_test.go) and by
// gen-types.mjs.
import { pathToFileURL } from "node:url";
import path from "node:path";

const [dist, ...args] = process.argv.slice(2);
const m = await import(pathToFileURL(path.join(dist, "gateway", "protocol", "index.js")).href);
if (args[0] === "--exports") {
  // The named schemas the protocol module exports (result schemas).
  const out = {};
  for (const name of args.slice(1)) out[name] = m[name] ?? null;
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
const methods = args;
const pascal = (s) => s.split(/[.\-]/).map((w) => w[0].toUpperCase() + w.slice(1)).join("");
const out = {};
for (const method of methods) {
  const v = m["validate" + pascal(method) + "Params"];
  out[method] = v && v.schema ? v.schema : null;
}
process.stdout.write(JSON.stringify(out));
