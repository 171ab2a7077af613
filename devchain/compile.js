// Reads a solc standard-JSON input on stdin, compiles it with the npm solc package pinned in
// package.json, and prints {"version": ..., "output": <standard-JSON output>} on stdout.
const solc = require("solc");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
