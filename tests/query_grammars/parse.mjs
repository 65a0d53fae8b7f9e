// Parses LogQL and TraceQL queries with Grafana's own lezer grammars (the ones its query editors use).
//
// stdin:  [{"lang": "logql" | "traceql", "query": "...", "where": "..."}, ...]
// stdout: [{"where": "...", "query": "...", "ok": true | false, "error": null | "..."}, ...]
//
// Exits 0 whenever stdin was a JSON array, whatever the queries; the caller decides what fails.
// Exits 2 when stdin is not a JSON array.
import { parser as logql } from "@grafana/lezer-logql";
import { parser as traceql } from "@grafana/lezer-traceql";

const PARSERS = { logql, traceql };
const CONTEXT = 12; // characters shown either side of an error

function around(query, from, to) {
  const start = Math.max(0, from - CONTEXT);
  const end = Math.min(query.length, Math.max(to, from) + CONTEXT);
  const text = query.slice(start, from) + "⟨" + query.slice(from, to) + "⟩" + query.slice(to, end);
  return (start > 0 ? "…" : "") + text + (end < query.length ? "…" : "");
}

function position(query, offset) {
  const before = query.slice(0, offset).split("\n");
  return `line ${before.length} col ${before[before.length - 1].length + 1} (offset ${offset})`;
}

function check({ lang, query, where }) {
  const result = { where, query, ok: false, error: null };
  const parser = PARSERS[lang];
  if (!parser) {
    result.error = `unknown lang ${JSON.stringify(lang)} (expected one of ${Object.keys(PARSERS).join(", ")})`;
    return result;
  }
  if (typeof query !== "string" || query.trim() === "") {
    result.error = "empty query";
    return result;
  }
  const tree = parser.parse(query);
  let first = null;
  tree.iterate({
    enter(node) {
      if (first) return false;
      if (node.type.isError) {
        first = { from: node.from, to: node.to };
        return false;
      }
      return undefined;
    },
  });
  if (first) {
    result.error = `${lang} syntax error at ${position(query, first.from)}: ${around(query, first.from, first.to)}`;
  } else if (tree.length !== query.length) {
    result.error = `${lang} parse covers ${tree.length} of ${query.length} characters; ` +
      `stops at ${position(query, tree.length)}: ${around(query, tree.length, query.length)}`;
  } else if (tree.type.name !== parser.topNode.name) {
    result.error = `${lang} top node is ${tree.type.name}, expected ${parser.topNode.name}`;
  } else {
    result.ok = true;
  }
  return result;
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let input;
try {
  input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
} catch (err) {
  process.stderr.write(`parse.mjs: stdin is not JSON: ${err.message}\n`);
  process.exit(2);
}
if (!Array.isArray(input)) {
  process.stderr.write("parse.mjs: stdin must be a JSON array of {lang, query, where}\n");
  process.exit(2);
}
process.stdout.write(JSON.stringify(input.map(check), null, 1) + "\n");
