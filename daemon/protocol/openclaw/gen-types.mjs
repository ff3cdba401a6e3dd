// Prints Go struct definitions mirroring OpenClaw's params schemas, the
// starting point of daemon/protocol/openclaw_params.go (edit by hand after:
// doc comments, and which fields a handler uses). Run with Node 24:
//
//   node gen-types.mjs <openclaw dist dir> TypeName=method ...
//
// Scalars keep their JSON type (optional ones become pointers so "absent"
// and "zero" differ); objects, unions and arrays of non-strings are
// json.RawMessage (any JSON value); anyOf unions of objects are merged into
// one struct whose fields are the union and whose required fields are those
// every variant requires.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const [dist, ...pairs] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const methods = pairs.map((p) => p.split("=")[1]);
const schemas = JSON.parse(execFileSync(process.execPath, [path.join(here, "schemas.mjs"), dist, ...methods]));
const goName = (s) => s.replace(/(^|[_-])([a-z])/g, (_, __, c) => c.toUpperCase()).replace(/^[a-z]/, (c) => c.toUpperCase()).replace(/Id$/, "ID").replace(/Id([A-Z])/g, "ID$1").replace(/Ids$/, "IDs").replace(/Url$/, "URL").replace(/Urls$/, "URLs").replace(/Json$/, "JSON").replace(/Ms$/, "Ms");
function goType(s, required) {
  const t = s.type;
  if (t === "string" && !s.anyOf) return "string";
  if (t === "integer") return required ? "int64" : "*int64";
  if (t === "number") return required ? "float64" : "*float64";
  if (t === "boolean") return required ? "bool" : "*bool";
  if (t === "array" && s.items && s.items.type === "string") return "[]string";
  return "json.RawMessage";
}
for (const pair of pairs) {
  const [type, method] = pair.split("=");
  let s = schemas[method];
  if (!s) { console.log(`// ${type}: OpenClaw has no params schema for ${method}`); continue; }
  const variants = s.anyOf ? s.anyOf : [s];
  const props = {};
  let req = null;
  for (const v of variants) {
    Object.assign(props, v.properties || {});
    const r = new Set(v.required || []);
    req = req === null ? r : new Set([...req].filter((x) => r.has(x)));
  }
  console.log(`// ${type} are the params of ${method}.\ntype ${type} struct {`);
  for (const [k, p] of Object.entries(props)) {
    const required = req.has(k);
    console.log(`\t${goName(k)} ${goType(p, required)} \`json:"${k}${required ? "" : ",omitempty"}"\``);
  }
  console.log("}\n");
}
