//! One OpenTelemetry span → one Herald span row, by one table.
//!
//! The table (also in `docs/ingest.md`), first match wins for each field:
//!
//! | Herald field | from |
//! |---|---|
//! | `id`, `span_id` | the span id, hex |
//! | `root_span_id` | the trace id, hex: every span of a trace shares it, in whatever request and order they arrive |
//! | `span_parents` | `[parent span id]`, or none for a root |
//! | `created`, `metrics.start`, `metrics.end` | start and end time (`metrics` in seconds since the epoch) |
//! | `input` | `braintrust.input_json` (JSON) · `braintrust.input` · OpenInference `input.value` (JSON when `input.mime_type` is JSON) · `llm.input_messages.N.message.*` · GenAI `gen_ai.input.messages` (JSON) · `gen_ai.prompt.N.*` |
//! | `output` | the same with `output` / `llm.output_messages` / `gen_ai.output.messages` / `gen_ai.completion.N.*` |
//! | `expected` | `braintrust.expected` |
//! | `error` | an `exception` event (`type: message`, then the stack trace) · the status message of an `ERROR` status (or `"error"`) |
//! | `scores` | `braintrust.scores` (JSON object) |
//! | `metrics.prompt_tokens` | `braintrust.metrics` · `llm.token_count.prompt` · `gen_ai.usage.input_tokens` · `gen_ai.usage.prompt_tokens` |
//! | `metrics.completion_tokens` | `llm.token_count.completion` · `gen_ai.usage.output_tokens` · `gen_ai.usage.completion_tokens` |
//! | `metrics.tokens` | `llm.token_count.total` · the sum of the two above |
//! | `metadata.model` | `gen_ai.request.model` · `llm.model_name` · `gen_ai.response.model` |
//! | `metadata.provider` | `gen_ai.provider.name` · `gen_ai.system` · `llm.provider` · `llm.system` |
//! | `metadata.<param>` | `gen_ai.request.<param>` (temperature, max_tokens, top_p…) · the keys of `llm.invocation_parameters` (JSON) |
//! | `metadata.operation` | `gen_ai.operation.name` |
//! | `metadata` (merged) | `braintrust.metadata` · OpenInference `metadata` (JSON object) |
//! | `tags` | `braintrust.tags` · `tag.tags` |
//! | `span_attributes.name` | the span name |
//! | `span_attributes.type` | `braintrust.span_attributes.type` · `openinference.span.kind` (LLM, EMBEDDING → `llm`; TOOL → `tool`; EVALUATOR → `score`; RETRIEVER, RERANKER, GUARDRAIL → `function`; CHAIN, AGENT → `task`) · `gen_ai.operation.name` (chat, text_completion, generate_content, embeddings → `llm`; execute_tool → `tool`; invoke_agent, create_agent → `task`) · `llm` for a span naming a model or carrying GenAI messages · `task` |
//! | `span_attributes` (merged) | `braintrust.span_attributes` (JSON object) |
//! | `metadata.otel` | what is not mapped, kept: `{kind, status, scope, resource, attributes}` with every unmapped span attribute and the resource's attributes |
//!
//! Attribute values keep their OTLP types (strings, booleans, integers,
//! doubles, arrays, key-value lists as objects; bytes as base64). A
//! `braintrust.*_json` or OpenInference JSON value that does not parse is
//! kept as the string it is.

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::metadata::{BraintrustMetadata, ObjectText, metadata_text};
use crate::store::MappedField;

/// One attribute value as JSON.
pub fn any_value(value: &AnyValue) -> Value {
    owned_value(value.clone())
}

/// One attribute value as JSON, its strings moved rather than copied (the
/// span's own attributes are most of what a request decodes to).
pub fn owned_value(value: AnyValue) -> Value {
    match value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::from(i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.into_iter().map(owned_value).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(owned_attributes(list.values)),
        Some(any_value::Value::BytesValue(bytes)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // An index into a profile's string table: traces never carry one.
        Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
    }
}

/// Longest resource value or scope name copied into each span.
const MAX_SHARED_VALUE: usize = 1024;
/// Most resource attributes copied into each span.
const MAX_SHARED_KEYS: usize = 64;

/// `text`, cut to [`MAX_SHARED_VALUE`] bytes.
pub fn short(text: &str) -> String {
    let mut cut = text.len().min(MAX_SHARED_VALUE);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

/// The resource's attributes as every span of it keeps them: at most
/// [`MAX_SHARED_KEYS`], each at most [`MAX_SHARED_VALUE`] bytes of JSON;
/// how many were left out is kept as `_omitted`.
pub fn bounded(resource: Map<String, Value>) -> Map<String, Value> {
    let total = resource.len();
    let mut kept: Map<String, Value> = resource
        .into_iter()
        .filter(|(key, value)| {
            key.len() <= MAX_SHARED_VALUE && value.to_string().len() <= MAX_SHARED_VALUE
        })
        .take(MAX_SHARED_KEYS)
        .collect();
    if kept.len() < total {
        kept.insert("_omitted".into(), Value::from(total - kept.len()));
    }
    kept
}

/// Key-value pairs as a JSON object (a later duplicate key wins).
pub fn attributes(pairs: &[KeyValue]) -> Map<String, Value> {
    owned_attributes(pairs.to_vec())
}

/// [`attributes`], moving the keys and values.
pub fn owned_attributes(pairs: Vec<KeyValue>) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|kv| (kv.key, kv.value.map_or(Value::Null, owned_value)))
        .collect()
}

/// What the resource and scope around a span say about it, as the JSON
/// text kept under `metadata.otel` (serialised once, not once per span).
#[derive(Debug, Default)]
pub struct Context {
    /// The resource's attributes (`None` when it has none).
    resource: Option<Box<RawValue>>,
    /// The instrumentation scope: `{name, version}`.
    scope: Option<Box<RawValue>>,
}

impl Context {
    /// The context of the spans under `resource` and `scope`.
    pub fn new(resource: &Map<String, Value>, scope: Option<&InstrumentationScope>) -> Self {
        Self {
            resource: (!resource.is_empty()).then(|| json_text(resource)),
            scope: scope.map(|scope| {
                json_text(&json!({"name": short(&scope.name), "version": short(&scope.version)}))
            }),
        }
    }
}

/// Reads attributes, taking each one that a rule maps out of the bag so
/// what is left is exactly what no rule used.
struct Bag(Map<String, Value>);

impl Bag {
    fn take(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key).filter(|v| !v.is_null())
    }

    /// The first of `keys` present (all of them are taken).
    fn first(&mut self, keys: &[&str]) -> Option<Value> {
        let mut found = None;
        for key in keys {
            if let Some(value) = self.take(key) {
                found.get_or_insert(value);
            }
        }
        found
    }

    /// A JSON-text attribute, parsed (kept as text when it is not JSON).
    fn json(&mut self, key: &str) -> Option<Value> {
        self.take(key).map(parse_json_text)
    }

    /// A JSON-text attribute that becomes a whole field: its text, checked
    /// but not parsed into a tree (a string that is not JSON is kept as
    /// that string, as [`Bag::json`] does).
    fn json_verbatim(&mut self, key: &str) -> Option<MappedField> {
        match self.take(key)? {
            // One scan and a copy (checking, then taking the string as it
            // is, would scan it twice).
            Value::String(text) => match serde_json::from_str::<Box<RawValue>>(&text) {
                Ok(raw) => Some(MappedField::Text(raw)),
                Err(_) => Some(MappedField::Value(Value::String(text))),
            },
            other => Some(MappedField::Value(other)),
        }
    }

    /// `prefix.N.suffix…` attributes as a list of objects, in N order:
    /// `gen_ai.prompt.0.role` + `gen_ai.prompt.0.content` → `[{role, content}]`.
    fn indexed(&mut self, prefix: &str, strip: &str) -> Option<Value> {
        let keys: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        if keys.is_empty() {
            return None;
        }
        let mut items: std::collections::BTreeMap<u64, Map<String, Value>> = Default::default();
        for key in keys {
            let rest = &key[prefix.len()..];
            let Some((index, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(index) = index.parse::<u64>() else {
                continue;
            };
            let field = field.strip_prefix(strip).unwrap_or(field).to_string();
            if let Some(value) = self.take(&key) {
                items.entry(index).or_default().insert(field, value);
            }
        }
        (!items.is_empty()).then(|| Value::Array(items.into_values().map(Value::Object).collect()))
    }

    /// Every attribute under `prefix.` as an object keyed by the rest.
    fn under(&mut self, prefix: &str) -> Map<String, Value> {
        let keys: Vec<String> = self
            .0
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let mut out = Map::new();
        for key in keys {
            if let Some(value) = self.take(&key) {
                out.insert(key[prefix.len()..].to_string(), value);
            }
        }
        out
    }
}

/// `value` as JSON text (a JSON value or map always serialises).
fn json_text(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("JSON values serialise")
}

/// One span, mapped: its fields, in the form the store validates
/// ([`validate_mapped_event`](crate::store::validate_mapped_event)), with
/// `metadata` and the `braintrust.*_json` fields as JSON text.
#[derive(Debug)]
pub struct SpanEvent {
    /// The event's fields, as the REST API would take them.
    pub fields: Vec<(&'static str, MappedField)>,
}

/// Where `attributes` say their span goes: the last `braintrust.parent`
/// among them, when it is a string (as the mapping reads it).
pub fn parent_attribute(attributes: &[KeyValue]) -> Option<&str> {
    let last = attributes
        .iter()
        .rev()
        .find(|kv| kv.key == "braintrust.parent")?;
    match last.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(text) => Some(text),
        _ => None,
    }
}

fn parse_json_text(value: Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        other => other,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn merge_into(target: &mut Map<String, Value>, extra: Option<Value>) {
    if let Some(Value::Object(extra)) = extra {
        target.extend(extra);
    }
}

/// Seconds since the epoch, from nanoseconds.
fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn hex_id(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The span type from OpenInference's kind or GenAI's operation.
fn span_type(openinference: Option<&Value>, operation: Option<&Value>) -> Option<&'static str> {
    if let Some(kind) = openinference.and_then(Value::as_str) {
        return Some(match kind.to_ascii_uppercase().as_str() {
            "LLM" | "EMBEDDING" => "llm",
            "TOOL" => "tool",
            "EVALUATOR" => "score",
            "RETRIEVER" | "RERANKER" | "GUARDRAIL" => "function",
            _ => "task",
        });
    }
    let operation = operation.and_then(Value::as_str)?;
    Some(match operation {
        "chat" | "text_completion" | "generate_content" | "embeddings" | "completion" => "llm",
        "execute_tool" => "tool",
        _ => "task",
    })
}

/// The error of a span: its `exception` event, else an `ERROR` status.
fn error_of(span: &Span) -> Option<Value> {
    for event in &span.events {
        if event.name != "exception" {
            continue;
        }
        let attrs = attributes(&event.attributes);
        let text = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or_default();
        let mut message = match (text("exception.type"), text("exception.message")) {
            ("", "") => "exception".to_string(),
            (kind, "") => kind.to_string(),
            ("", message) => message.to_string(),
            (kind, message) => format!("{kind}: {message}"),
        };
        let stack = text("exception.stacktrace");
        if !stack.is_empty() {
            message.push('\n');
            message.push_str(stack);
        }
        return Some(Value::String(message));
    }
    let status = span.status.as_ref()?;
    (status.code == StatusCode::Error as i32).then(|| {
        Value::String(if status.message.is_empty() {
            "error".into()
        } else {
            status.message.clone()
        })
    })
}

/// The Herald event (an insert request's event object) for `span`. Its
/// `braintrust.parent` routes it (see [`parent_attribute`]) and is not
/// kept.
pub fn span_event(mut span: Span, context: &Context) -> SpanEvent {
    let mut bag = Bag(owned_attributes(std::mem::take(&mut span.attributes)));
    let span = &span;
    bag.take("braintrust.parent");

    let genai_messages = [
        "gen_ai.input.messages",
        "gen_ai.prompt.0.content",
        "gen_ai.prompt.0.role",
    ]
    .iter()
    .any(|key| bag.0.contains_key(*key));
    let input_json = bag.json_verbatim("braintrust.input_json");
    let output_json = bag.json_verbatim("braintrust.output_json");
    let expected_json = bag.json_verbatim("braintrust.expected_json");
    // The other sources are only read (and taken from the bag) when the
    // `*_json` attribute is absent, so they stay in `metadata.otel` otherwise.
    let input = input_json
        .is_none()
        .then(|| {
            bag.take("braintrust.input")
                .or_else(|| openinference_value(&mut bag, "input"))
                .or_else(|| bag.indexed("llm.input_messages.", "message."))
                .or_else(|| bag.json("gen_ai.input.messages"))
                .or_else(|| bag.indexed("gen_ai.prompt.", ""))
        })
        .flatten();
    let output = output_json
        .is_none()
        .then(|| {
            bag.take("braintrust.output")
                .or_else(|| openinference_value(&mut bag, "output"))
                .or_else(|| bag.indexed("llm.output_messages.", "message."))
                .or_else(|| bag.json("gen_ai.output.messages"))
                .or_else(|| bag.indexed("gen_ai.completion.", ""))
        })
        .flatten();
    let expected = expected_json
        .is_none()
        .then(|| bag.json("braintrust.expected"))
        .flatten();
    let scores = bag.json("braintrust.scores");

    let mut metrics = Map::new();
    if span.start_time_unix_nano > 0 {
        metrics.insert("start".into(), json!(seconds(span.start_time_unix_nano)));
    }
    if span.end_time_unix_nano > 0 {
        metrics.insert("end".into(), json!(seconds(span.end_time_unix_nano)));
    }
    let prompt = bag.first(&[
        "llm.token_count.prompt",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
    ]);
    let completion = bag.first(&[
        "llm.token_count.completion",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
    ]);
    let total = bag.first(&["llm.token_count.total", "gen_ai.usage.total_tokens"]);
    let (prompt, completion) = (
        prompt.as_ref().and_then(number),
        completion.as_ref().and_then(number),
    );
    if let Some(n) = prompt {
        metrics.insert("prompt_tokens".into(), json!(n));
    }
    if let Some(n) = completion {
        metrics.insert("completion_tokens".into(), json!(n));
    }
    match (total.as_ref().and_then(number), prompt, completion) {
        (Some(t), _, _) => {
            metrics.insert("tokens".into(), json!(t));
        }
        (None, Some(p), Some(c)) => {
            metrics.insert("tokens".into(), json!(p + c));
        }
        _ => {}
    }
    merge_into(&mut metrics, bag.json("braintrust.metrics"));

    let mut metadata = Map::new();
    if let Some(model) = bag.first(&[
        "gen_ai.request.model",
        "llm.model_name",
        "gen_ai.response.model",
    ]) {
        metadata.insert("model".into(), model);
    }
    if let Some(provider) = bag.first(&[
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
    ]) {
        metadata.insert("provider".into(), provider);
    }
    for (param, value) in bag.under("gen_ai.request.") {
        metadata.insert(param, value);
    }
    merge_into(&mut metadata, bag.json("llm.invocation_parameters"));
    merge_into(&mut metadata, bag.json("metadata"));
    // `braintrust.metadata` (JSON text of an object) stays text; a value
    // that is not one stays in the bag, so it ends up under `otel`.
    let braintrust_text = match bag.take("braintrust.metadata") {
        Some(Value::String(text)) => Some(text),
        Some(Value::Object(members)) => {
            metadata.extend(members);
            None
        }
        Some(other) => {
            bag.0.insert("braintrust.metadata".into(), other);
            None
        }
        None => None,
    };
    let braintrust_metadata = braintrust_text
        .as_deref()
        .and_then(BraintrustMetadata::parse);
    if let (Some(text), None) = (&braintrust_text, &braintrust_metadata) {
        bag.0
            .insert("braintrust.metadata".into(), Value::String(text.clone()));
    }

    let tags = bag.json("braintrust.tags").or_else(|| bag.take("tag.tags"));

    let mut span_attributes = Map::new();
    span_attributes.insert("name".into(), Value::String(span.name.clone()));
    let openinference_kind = bag.take("openinference.span.kind");
    let operation = bag.take("gen_ai.operation.name");
    // A span that names a model or carries GenAI messages is a model call
    // even without an operation name (older instrumentation sets none).
    let names_a_model = metadata.contains_key("model")
        || braintrust_metadata
            .as_ref()
            .is_some_and(|b| b.contains_key("model"))
        || genai_messages;
    let kind = span_type(openinference_kind.as_ref(), operation.as_ref())
        .unwrap_or(if names_a_model { "llm" } else { "task" });
    span_attributes.insert("type".into(), Value::String(kind.into()));
    merge_into(&mut span_attributes, bag.json("braintrust.span_attributes"));

    let mut otel = ObjectText::new();
    otel.value("kind", &json!(span_kind_name(span.kind)));
    if let Some(status) = &span.status
        && status.code != 0
    {
        otel.value(
            "status",
            &json!({"code": status.code, "message": status.message}),
        );
    }
    if let Some(scope) = &context.scope {
        otel.raw("scope", scope);
    }
    if let Some(resource) = &context.resource {
        otel.raw("resource", resource);
    }
    if !bag.0.is_empty() {
        otel.value("attributes", &Value::Object(std::mem::take(&mut bag.0)));
    }
    let otel = otel.finish();
    let operation = operation.as_ref().map(json_text);
    let mut own: Vec<(&str, &RawValue)> = Vec::with_capacity(2);
    if let Some(operation) = &operation {
        own.push(("operation", operation));
    }
    own.push(("otel", &otel));
    let metadata = metadata_text(&metadata, braintrust_metadata.as_ref(), &own);

    let span_id = hex_id(&span.span_id);
    let parents: Vec<Value> = if span.parent_span_id.is_empty() {
        Vec::new()
    } else {
        vec![json!(hex_id(&span.parent_span_id))]
    };
    let mut fields = Vec::with_capacity(14);
    fields.push(("id", MappedField::Value(json!(span_id))));
    fields.push(("span_id", MappedField::Value(Value::String(span_id))));
    let root_span_id = Value::String(hex_id(&span.trace_id));
    fields.push(("root_span_id", MappedField::Value(root_span_id)));
    fields.push(("span_parents", MappedField::Value(Value::Array(parents))));
    if span.start_time_unix_nano > 0 {
        let created = chrono::DateTime::from_timestamp_nanos(span.start_time_unix_nano as i64);
        fields.push(("created", MappedField::Value(json!(created.to_rfc3339()))));
    }
    // A `braintrust.*_json` attribute wins over the other sources of its
    // field (which were then not read).
    let sources = [
        ("input", input_json, input),
        ("output", output_json, output),
        ("expected", expected_json, expected),
        ("error", None, error_of(span)),
        ("scores", None, scores),
        ("tags", None, tags),
    ];
    for (name, json, value) in sources {
        if let Some(field) = json.or(value.map(MappedField::Value)) {
            fields.push((name, field));
        }
    }
    fields.push(("metadata", MappedField::Text(metadata)));
    fields.push(("metrics", MappedField::Value(Value::Object(metrics))));
    let span_attributes = Value::Object(span_attributes);
    fields.push(("span_attributes", MappedField::Value(span_attributes)));
    SpanEvent { fields }
}

/// OpenInference's `input.value` / `output.value`, parsed when its mime
/// type says JSON.
fn openinference_value(bag: &mut Bag, field: &str) -> Option<Value> {
    let mime = bag.take(&format!("{field}.mime_type"));
    let value = bag.take(&format!("{field}.value"))?;
    let is_json = mime
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|m| m.contains("json"));
    Some(if is_json {
        parse_json_text(value)
    } else {
        value
    })
}

fn span_kind_name(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use opentelemetry_proto::tonic::trace::v1::Status;

    fn string(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..KeyValue::default()
        }
    }

    /// The whole event, text fields parsed back in.
    fn whole(mapped: SpanEvent) -> Value {
        let mut event = json!({});
        for (name, field) in mapped.fields {
            event[name] = match field {
                MappedField::Value(value) => value,
                MappedField::Text(raw) => serde_json::from_str(raw.get()).unwrap(),
            };
        }
        event
    }

    fn span_with(attributes: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "s".into(),
            attributes,
            ..Span::default()
        }
    }

    #[test]
    fn indexed_messages_keep_their_numeric_order() {
        let attributes = (0..12)
            .rev()
            .map(|i| string(&format!("gen_ai.prompt.{i}.content"), &format!("m{i}")))
            .collect();
        let event = whole(span_event(span_with(attributes), &Context::default()));
        let contents: Vec<&str> = event["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(contents[..3], ["m0", "m1", "m2"]);
        assert_eq!(contents[11], "m11", "10 and 11 come after 9");
        assert_eq!(event["span_attributes"]["type"], "llm");
    }

    #[test]
    fn values_keep_their_types_and_bad_json_stays_text() {
        let list = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![string("a", "b")],
            })),
        };
        let array = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(any_value::Value::IntValue(3)),
                    },
                    AnyValue {
                        value: Some(any_value::Value::BytesValue(vec![0xff])),
                    },
                ],
            })),
        };
        assert_eq!(any_value(&list), json!({"a": "b"}));
        assert_eq!(any_value(&array), json!([3, "/w=="]));
        let attributes = vec![
            string("braintrust.parent", "project_name:old"),
            string("braintrust.input_json", "{not json"),
            string("braintrust.parent", "project_name:p"),
        ];
        assert_eq!(parent_attribute(&attributes), Some("project_name:p"));
        let event = whole(span_event(span_with(attributes), &Context::default()));
        assert_eq!(event["input"], "{not json");
        assert!(
            event["metadata"]["otel"].get("attributes").is_none(),
            "{event}"
        );
    }

    #[test]
    fn braintrust_metadata_wins_over_mapped_keys_and_a_non_object_is_kept() {
        let event = whole(span_event(
            span_with(vec![
                string("gen_ai.request.model", "gpt-4o"),
                string("gen_ai.request.temperature", "0.2"),
                string("gen_ai.operation.name", "chat"),
                string(
                    "braintrust.metadata",
                    r#"{"model": "mine", "operation": "theirs", "otel": 1}"#,
                ),
            ]),
            &Context::default(),
        ));
        let metadata = &event["metadata"];
        assert_eq!(metadata["model"], "mine", "{event}");
        assert_eq!(metadata["temperature"], "0.2");
        assert_eq!(metadata["operation"], "chat", "Herald's own key wins");
        assert_eq!(metadata["otel"]["kind"], "unspecified");

        let event = whole(span_event(
            span_with(vec![
                string("braintrust.metadata", "[1, 2]"),
                string("braintrust.metadata.model", "m"),
            ]),
            &Context::default(),
        ));
        let kept = &event["metadata"]["otel"]["attributes"];
        assert_eq!(kept["braintrust.metadata"], "[1, 2]", "{event}");
        assert_eq!(kept["braintrust.metadata.model"], "m");
    }

    #[test]
    fn an_error_status_without_an_exception_is_the_error() {
        let mut span = span_with(Vec::new());
        span.status = Some(Status {
            message: String::new(),
            code: StatusCode::Error as i32,
        });
        let event = whole(span_event(span, &Context::default()));
        assert_eq!(event["error"], "error");
        assert_eq!(event["span_parents"], json!([]));
        assert_eq!(event["root_span_id"], "01".repeat(16));
    }
}
