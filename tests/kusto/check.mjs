// Checks KQL texts with the official Kusto language service (@kusto/language-service-next).
//
// Why: the product's queries run on Log Analytics, which tests cannot reach. The language service is
// Microsoft's own parser and binder for Kusto (the one behind the portal's editor), so a query it
// binds without errors against the real table schemas is a query Log Analytics will parse and
// type-check. Driven by tests/unit/test_kql_language_service.py; not shipped with the app.
//
// stdin:  {"schema": {"database": "workspace",
//                     "tables": {"Name": [["Column", "kustoType"], ...]},
//                     "functions": [{"name": "f", "parameters": [["p", "string"]],
//                                    "columns": [["Column", "kustoType"], ...]}]},
//          "tokens": false,
//          "queries": [{"name": "q", "text": "..."}]}
// stdout: {"languageService": "<version>",
//          "results": [{"name": "q",
//                       "diagnostics": [{"severity", "code", "message", "start", "end"}],
//                       "tokens": [{"kind", "text", "trivia", "value"?}]}]}   (tokens only when asked)
// A string literal token carries `value`, its content as the service decodes it.
// Exit 0 when every query was checked, whatever the diagnostics say; 2 on bad input.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// A Bridge.NET translation of Kusto.Language: the runtime defines the global `Bridge` (and `System`),
// then the assembly defines the global `Kusto`. Neither file exports anything useful.
require("@kusto/language-service-next/bridge.min.js");
require("@kusto/language-service-next/Kusto.Language.Bridge.min.js");
const { version } = require("@kusto/language-service-next/package.json");

const Language = globalThis.Kusto.Language;
const Symbols = Language.Symbols;
const SyntaxKind = Language.Syntax.SyntaxKind;

function fail(message) {
  process.stderr.write(`check.mjs: ${message}\n`);
  process.exit(2);
}

function scalarType(kustoType, where) {
  const symbol = typeof kustoType === "string" ? Symbols.ScalarTypes.GetSymbol(kustoType) : null;
  if (!symbol) fail(`unknown Kusto type ${JSON.stringify(kustoType)} for ${where}`);
  return symbol;
}

function columns(pairs, where) {
  if (!Array.isArray(pairs) || pairs.length === 0) fail(`${where}: expected a non-empty list of [name, type] pairs`);
  return pairs.map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") fail(`${where}: bad column ${JSON.stringify(pair)}`);
    return new Symbols.ColumnSymbol(pair[0], scalarType(pair[1], `${where}.${pair[0]}`), null, null, null, null);
  });
}

function database(schema) {
  const members = [];
  for (const [name, pairs] of Object.entries(schema.tables ?? {})) {
    members.push(new Symbols.TableSymbol.$ctor4(name, columns(pairs, name)));
  }
  for (const fn of schema.functions ?? []) {
    if (typeof fn?.name !== "string") fail(`function without a name: ${JSON.stringify(fn)}`);
    const parameters = (fn.parameters ?? []).map(([name, type]) => new Symbols.Parameter.$ctor2(name, scalarType(type, `${fn.name}(${name})`)));
    // A tabular function declared by its result schema, as a Sentinel workspace function is seen by a query.
    const result = new Symbols.TableSymbol.$ctor4(null, columns(fn.columns, fn.name));
    members.push(new Symbols.FunctionSymbol.$ctor5(fn.name, result, parameters));
  }
  return new Symbols.DatabaseSymbol.ctor(schema.database ?? "workspace", members);
}

function list(items, type) {
  const out = [];
  for (let i = 0; i < System.Array.getCount(items, type); i++) out.push(System.Array.getItem(items, i, type));
  return out;
}

function check(query, globals, withTokens) {
  if (typeof query?.name !== "string" || typeof query?.text !== "string") fail(`bad query ${JSON.stringify(query)}`);
  const code = Language.KustoCode.ParseAndAnalyze(query.text, globals);
  const diagnostics = list(code.GetDiagnostics(), Language.Diagnostic).map((d) => ({
    severity: d.Severity,
    code: d.Code,
    message: d.Message,
    start: d.Start,
    end: d.End,
  }));
  const result = { name: query.name, diagnostics };
  if (withTokens) {
    result.tokens = [];
    for (let token = code.Syntax.GetFirstToken(true); token; token = token.GetNextToken(true)) {
      const entry = { kind: System.Enum.toString(SyntaxKind, token.Kind), text: token.Text, trivia: token.Trivia };
      if (token.Kind === SyntaxKind.StringLiteralToken) entry.value = Language.KustoFacts.GetStringLiteralValue(token.Text);
      result.tokens.push(entry);
    }
  }
  return result;
}

let request;
try {
  request = JSON.parse(readFileSync(0, "utf8"));
} catch (error) {
  fail(`stdin is not JSON: ${error.message}`);
}
if (!request || typeof request.schema !== "object" || !Array.isArray(request.queries)) {
  fail('expected {"schema": {...}, "queries": [...]}');
}

const globals = Language.GlobalState.Default.WithDatabase(database(request.schema));
const results = request.queries.map((query) => check(query, globals, request.tokens === true));
process.stdout.write(JSON.stringify({ languageService: version, results }) + "\n");
