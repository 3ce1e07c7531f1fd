// Peer of bench_tokenize for tokenizer.json: @huggingface/tokenizers (tests/tools/js), every line
// of TEXT_FILE encoded without special tokens, best of ROUNDS. Prints one JSON line.
//
//   node bench/tokenize_peer.mjs MODEL_DIR TEXT_FILE [ROUNDS]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const [dir, textFile, roundsArg] = process.argv.slice(2);
const here = new URL(".", import.meta.url).pathname;
const require = createRequire(join(here, "../tests/tools/js/package.json"));
const { Tokenizer } = require("@huggingface/tokenizers");
const read = (path) => JSON.parse(readFileSync(path, "utf8"));
const tokenizer = new Tokenizer(read(join(dir, "tokenizer.json")), read(join(dir, "tokenizer_config.json")));
const text = readFileSync(textFile, "utf8");
const lines = text.split("\n");
if (lines.at(-1) === "") lines.pop();
const bytes = lines.reduce((n, line) => n + Buffer.byteLength(line, "utf8"), 0);
let best = Infinity, tokens = 0;
for (let round = 0; round < Number(roundsArg ?? 3); ++round) {
  tokens = 0;
  const start = process.hrtime.bigint();
  for (const line of lines) tokens += tokenizer.encode(line, { add_special_tokens: false }).ids.length;
  best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
}
console.log(JSON.stringify({ impl: "@huggingface/tokenizers", tokens, bytes, seconds: best, mb_per_second: bytes / 1e6 / best }));
