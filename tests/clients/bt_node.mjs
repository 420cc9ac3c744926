// Logs through Braintrust's TypeScript SDK, unmodified, to the server named
// by BRAINTRUST_APP_URL / BRAINTRUST_API_URL / BRAINTRUST_API_KEY.
//
//     node bt_node.mjs PROJECT
//
// A nested trace, a span ended after a flush, `logger.log`, an `Eval`
// experiment and a dataset row; prints the ids the SDK used as JSON.
import { createRequire } from "node:module";
const require = createRequire(process.env.BRAINTRUST_NODE_MODULES + "/");
const bt = require("braintrust");

const project = process.argv[2];
const out = {};
const logger = bt.initLogger({ projectName: project });
await logger.traced(
  async (span) => {
    out.answer = { id: span.id, span_id: span.spanId, root_span_id: span.rootSpanId };
    span.log({ input: { question: "refund?" }, metadata: { env: "prod" } });
    await span.traced(
      async (child) => {
        out.retrieve = { id: child.id, span_id: child.spanId };
        child.log({ output: ["doc-1", "doc-2"] });
      },
      { name: "retrieve", type: "function" },
    );
    span.log({ output: "Refunds take 5 days.", scores: { Factuality: 0.25 } });
  },
  { name: "answer", type: "task" },
);
const split = logger.startSpan({ name: "llm call", type: "llm" });
split.log({ input: [{ role: "user", content: "hi" }] });
await logger.flush();
split.log({ output: "hello", metrics: { prompt_tokens: 3, completion_tokens: 1 } });
split.end();
out.split = { id: split.id, span_id: split.spanId };
out.direct = logger.log({ input: "direct", output: "out", tags: ["sdk"] }, { allowConcurrentWithSpans: true });
await logger.flush();

const result = await bt.Eval(project, {
  data: () => [{ input: 1, expected: 2 }, { input: 2, expected: 2 }],
  task: (value) => value + 1,
  scores: [({ output, expected }) => ({ name: "exact", score: output === expected ? 1 : 0 })],
  experimentName: "sdk-eval",
});
out.experiment_id = result.summary.experimentId;
out.eval_scores = Object.fromEntries(
  Object.entries(result.summary.scores).map(([name, s]) => [name, s.score]),
);

const dataset = bt.initDataset(project, { dataset: "golden" });
const row = dataset.insert({ input: { q: "refund?" }, expected: "5 days", metadata: { source: "sdk" } });
await dataset.flush();
out.dataset_id = await dataset.id;
out.dataset_row = row;
console.log(JSON.stringify(out));
