// Reference chat-template renderer for the tests: @huggingface/jinja, the engine Hugging Face uses
// in JavaScript.
//
//   node render.mjs CASES_JSON
//
// CASES_JSON holds [{"template": "...", "context": {...}}, ...]. Prints a JSON array with, for each
// case, {"output": "..."} or {"error": "..."}.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = cases.map(({ template, context }) => {
  try {
    return { output: new Template(template).render(context) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
});
process.stdout.write(JSON.stringify(results) + "\n");
