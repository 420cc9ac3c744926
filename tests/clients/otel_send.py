"""Sends one trace through the OpenTelemetry Python SDK's OTLP exporter.

    python otel_send.py {proto|json|grpc} ENDPOINT API_KEY PARENT

The trace covers each attribute convention Herald maps: an OpenInference
agent span (root), a GenAI chat span in the current conventions, one in
the older indexed ones, a span with Braintrust's own attributes, and a
tool span that raises. Prints the trace id and each span's id as JSON.
"""

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

mode, endpoint, key, parent = sys.argv[1:5]
headers = {"authorization": f"Bearer {key}", "x-bt-parent": parent}
if mode == "proto":
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, compression=Compression.Gzip)
elif mode == "json":
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers)
elif mode == "grpc":
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(
        endpoint=endpoint, insecure=True, headers=tuple(headers.items()), compression=grpc.Compression.Gzip
    )
else:
    raise SystemExit(f"unknown mode {mode}")

provider = TracerProvider(resource=Resource.create({"service.name": f"herald-test-{mode}"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("herald.tests", "1.0")
ids = {}


def remember(name, span):
    context = span.get_span_context()
    ids[name] = format(context.span_id, "016x")
    ids["trace_id"] = format(context.trace_id, "032x")


with tracer.start_as_current_span(
    "agent",
    attributes={
        "openinference.span.kind": "AGENT",
        "input.value": json.dumps({"question": "refund?"}),
        "input.mime_type": "application/json",
        "output.value": "Refunds take 5 days.",
        "metadata": json.dumps({"env": "prod"}),
        "http.route": "/chat",
    },
) as root:
    remember("agent", root)
    with tracer.start_as_current_span("chat gpt-4o", kind=trace.SpanKind.CLIENT) as chat:
        remember("chat", chat)
        chat.set_attribute("gen_ai.operation.name", "chat")
        chat.set_attribute("gen_ai.request.model", "gpt-4o")
        chat.set_attribute("gen_ai.provider.name", "openai")
        chat.set_attribute("gen_ai.request.temperature", 0.2)
        chat.set_attribute(
            "gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text", "content": "refund?"}]}])
        )
        chat.set_attribute(
            "gen_ai.output.messages",
            json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "5 days"}]}]),
        )
        chat.set_attribute("gen_ai.usage.input_tokens", 12)
        chat.set_attribute("gen_ai.usage.output_tokens", 30)
    with tracer.start_as_current_span("legacy completion", kind=trace.SpanKind.CLIENT) as legacy:
        remember("legacy", legacy)
        legacy.set_attribute("gen_ai.system", "anthropic")
        legacy.set_attribute("gen_ai.request.model", "claude-3")
        legacy.set_attribute("gen_ai.prompt.0.role", "system")
        legacy.set_attribute("gen_ai.prompt.0.content", "be brief")
        legacy.set_attribute("gen_ai.prompt.1.role", "user")
        legacy.set_attribute("gen_ai.prompt.1.content", "refund?")
        legacy.set_attribute("gen_ai.completion.0.role", "assistant")
        legacy.set_attribute("gen_ai.completion.0.content", "5 days")
        legacy.set_attribute("gen_ai.usage.prompt_tokens", 7)
        legacy.set_attribute("gen_ai.usage.completion_tokens", 2)
    with tracer.start_as_current_span("score answer") as scorer:
        remember("scorer", scorer)
        scorer.set_attribute("braintrust.input_json", json.dumps({"answer": "5 days"}))
        scorer.set_attribute("braintrust.output_json", json.dumps({"verdict": "ok"}))
        scorer.set_attribute("braintrust.expected", "5 days")
        scorer.set_attribute("braintrust.scores", json.dumps({"Factuality": 0.25}))
        scorer.set_attribute("braintrust.metadata", json.dumps({"judge": "gpt-4o-mini"}))
        scorer.set_attribute("braintrust.tags", json.dumps(["graded"]))
        scorer.set_attribute("braintrust.span_attributes", json.dumps({"type": "score"}))
    with tracer.start_as_current_span("lookup order", attributes={"openinference.span.kind": "TOOL"}) as tool:
        remember("tool", tool)
        try:
            raise KeyError("order 42")
        except KeyError as error:
            tool.record_exception(error)
            tool.set_status(Status(StatusCode.ERROR, "order not found"))

assert provider.force_flush(30_000), "flush timed out"
provider.shutdown()
print(json.dumps(ids))
