// Reference tokenizer for the tests: @huggingface/tokenizers (pure JavaScript) reading a model
// folder's tokenizer.json and tokenizer_config.json.
//
//   node tokenize.mjs MODEL_DIR TEXTS_JSON
//
// TEXTS_JSON holds a JSON array of strings. Prints one JSON object: for each text the ids without
// special tokens added (`ids`), the ids with them (`ids_with_special`), and the decoded ids with
// special tokens skipped (`decoded`).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, textsFile] = process.argv.slice(2);
const read = (path) => JSON.parse(readFileSync(path, "utf8"));
const tokenizer = new Tokenizer(read(join(dir, "tokenizer.json")), read(join(dir, "tokenizer_config.json")));
const out = { ids: [], ids_with_special: [], decoded: [] };
for (const text of read(textsFile)) {
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  out.ids.push(ids);
  out.ids_with_special.push(tokenizer.encode(text).ids);
  out.decoded.push(ids.length ? tokenizer.decode(ids, { skip_special_tokens: true }) : "");
}
process.stdout.write(JSON.stringify(out) + "\n");
