// Prints, as JSON, the operator scopes OpenClaw's gateway requires for
// each gateway method named on the command line:
// {"method": {"scopes": [...], "node": bool, "classified": bool}}.
// It calls OpenClaw's own method-scopes module (found by its
// "//#region src/gateway/method-scopes.ts" marker in the installed dist),
// so the answer is OpenClaw's table, not a copy. Run with Node 24:
//
//   node scopes.mjs <openclaw dist dir> health agent ...
import { readdirSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [dist, ...methods] = process.argv.slice(2);
const file = readdirSync(dist)
  .filter((f) => f.endsWith(".mjs"))
  .map((f) => path.join(dist, f))
  .find((f) => readFileSync(f, "utf8").includes("//#region src/gateway/method-scopes.ts"));
if (!file) throw new Error("no module with //#region src/gateway/method-scopes.ts in " + dist);
const src = readFileSync(file, "utf8");
const exported = src.match(/export \{([^}]*)\};?\s*$/m);
if (!exported) throw new Error("no export list in " + file);
const alias = {};
for (const part of exported[1].split(",")) {
  const m = part.trim().match(/^(\w+) as (\w+)$/);
  if (m) alias[m[1]] = m[2];
}
const mod = await import(pathToFileURL(file).href);
const fn = (name) => {
  const f = mod[alias[name]];
  if (typeof f !== "function") throw new Error(`${file} does not export ${name}`);
  return f;
};
const leastPrivilege = fn("resolveLeastPrivilegeOperatorScopesForMethod");
const isNode = fn("isNodeRoleMethod");
const classified = fn("isGatewayMethodClassified");
const out = {};
for (const method of methods) {
  out[method] = { scopes: leastPrivilege(method, {}), node: isNode(method), classified: classified(method) };
}
process.stdout.write(JSON.stringify(out));
