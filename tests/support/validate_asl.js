// Reads a JSON array of state machine definitions on stdin; prints one result per definition.
const aslValidator = require("asl-validator");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((definition) => {
    const { isValid, errorsText } = aslValidator(definition);
    return { valid: isValid, errors: isValid ? "" : errorsText("\n") };
  });
  process.stdout.write(JSON.stringify(results));
});
