"""Logs through Braintrust's Python SDK, unmodified, to the server named by
BRAINTRUST_APP_URL / BRAINTRUST_API_URL / BRAINTRUST_API_KEY.

    python bt_python.py PROJECT

A nested trace (a `@traced` function calling another, one span ended in a
later flush than it started), `logger.log`, an `Eval` experiment whose
scorer gives 0.5, and a dataset with one row inserted then updated.
Prints the ids the SDK used as JSON, for the test to look the rows up.
"""

import json
import sys

import braintrust

project = sys.argv[1]
out = {}
logger = braintrust.init_logger(project=project)


@braintrust.traced(name="retrieve", type="function")
def retrieve(question):
    span = braintrust.current_span()
    out["retrieve"] = {"id": span.id, "span_id": span.span_id}
    return ["doc-1", "doc-2"]


@braintrust.traced(name="answer", type="task")
def answer(question):
    span = braintrust.current_span()
    out["answer"] = {"id": span.id, "span_id": span.span_id, "root_span_id": span.root_span_id}
    docs = retrieve(question)
    span.log(metadata={"env": "prod", "docs": len(docs)}, scores={"Factuality": 0.25})
    return "Refunds take 5 days."


answer("refund?")
split = logger.start_span(name="llm call", type="llm")
split.log(input=[{"role": "user", "content": "hi"}])
logger.flush()
split.log(output="hello", metrics={"prompt_tokens": 3, "completion_tokens": 1})
split.end()
out["split"] = {"id": split.id, "span_id": split.span_id}
out["direct"] = logger.log(input="direct", output="out", tags=["sdk"], allow_concurrent_with_spans=True)
logger.flush()

result = braintrust.Eval(
    project,
    data=lambda: [{"input": 1, "expected": 2}, {"input": 2, "expected": 2}],
    task=lambda value: value + 1,
    scores=[lambda input, output, expected: 1.0 if output == expected else 0.0],
    experiment_name="sdk-eval",
)
out["experiment_id"] = result.summary.experiment_id
out["eval_scores"] = {name: score.score for name, score in result.summary.scores.items()}

dataset = braintrust.init_dataset(project=project, name="golden")
row = dataset.insert(input={"q": "refund?"}, expected="5 days", metadata={"source": "sdk"})
dataset.flush()
dataset.update(id=row, metadata={"source": "sdk", "reviewed": True})
dataset.flush()
out["dataset_id"] = dataset.id
out["dataset_row"] = row
print(json.dumps(out))
