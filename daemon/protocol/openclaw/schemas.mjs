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
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { pathToFileURL } from "node:url";
import path from "node:path";

// Result schemas OpenClaw defines but does not export (its bundler kept
// them as bare expressions): the source region that defines each and the
// text the expression starts with. unexported evaluates that region's
// module again with the expression bound to a name, so the answer is
// still OpenClaw's own schema; null when the text is gone (the schema
// changed: the test then fails and names it).
const UNEXPORTED = {
  ModelsListResultSchema: {
    region: "packages/gateway-protocol/src/schema/model-catalog.ts",
    start: "closedObject({\n\tmodels: Type.Array(ModelChoiceSchema),",
  },
};

async function unexported(dist, name) {
  const u = UNEXPORTED[name];
  if (!u) return null;
  const marker = "//#region " + u.region;
  const file = readdirSync(dist).filter((f) => f.endsWith(".mjs")).map((f) => path.join(dist, f))
    .find((f) => readFileSync(f, "utf8").includes(marker));
  if (!file) return null;
  let src = readFileSync(file, "utf8");
  const at = src.indexOf(u.start, src.indexOf(marker));
  const end = src.indexOf("//#endregion", src.indexOf(marker));
  if (at < 0 || at > end) return null;
  const bound = "__unexported_" + name;
  src = src.slice(0, at) + `const ${bound} = ` + src.slice(at) + `\nexport { ${bound} };\n`;
  // The copy lives in a temporary directory: its relative imports point
  // at dist, and its node_modules links the packages it imports to the
  // ones the original resolves.
  const base = pathToFileURL(dist).href + "/";
  src = src.replace(/(from\s*|import\()(["'])\.\//g, (_, kw, q) => kw + q + base);
  const dir = mkdtempSync(path.join(os.tmpdir(), "openclaw-schema-"));
  try {
    const req = createRequire(file);
    for (const [, spec] of src.matchAll(/from\s*["']([^."'][^"']*)["']/g)) {
      if (spec.startsWith("node:")) continue;
      const parts = spec.split("/");
      const pkg = parts.slice(0, spec.startsWith("@") ? 2 : 1).join("/");
      const link = path.join(dir, "node_modules", pkg);
      const found = (req.resolve.paths(pkg) ?? []).map((d) => path.join(d, pkg)).find((d) => existsSync(d));
      if (!found || existsSync(link)) continue;
      mkdirSync(path.dirname(link), { recursive: true });
      symlinkSync(found, link, "dir");
    }
    const copy = path.join(dir, path.basename(file));
    writeFileSync(copy, src);
    return (await import(pathToFileURL(copy).href))[bound] ?? null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const [dist, ...args] = process.argv.slice(2);
const m = await import(pathToFileURL(path.join(dist, "gateway", "protocol", "index.js")).href);
if (args[0] === "--exports") {
  // The named schemas the protocol module exports (result schemas), and
  // the UNEXPORTED ones.
  const out = {};
  for (const name of args.slice(1)) out[name] = m[name] ?? (await unexported(dist, name));
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
