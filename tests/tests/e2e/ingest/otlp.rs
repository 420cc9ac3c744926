//! OpenTelemetry in: the real OTLP exporters of the OpenTelemetry Python
//! SDK over HTTP/protobuf (gzip), HTTP/JSON and gRPC, every mapped field
//! checked; then what a client can get wrong.

use std::io::Write;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::Method;
use serde_json::{Value, json};

use super::{logs_by_id, run_client};
use crate::automations::{DEADLINE, Herald, SETTINGS, log_alert, wait_for_requests, webhook};
use crate::harness::{DAEMON_KEY, Receiver, wait_until};

/// A daemon with OTLP/gRPC on an ephemeral port; returns it and that port.
async fn daemon() -> (Herald, String) {
    let data = Arc::new(tempfile::tempdir().unwrap());
    let h = Herald::start_with_env(
        SETTINGS,
        None,
        data,
        &[("HERALD_OTLP_GRPC_LISTEN", "127.0.0.1:0")],
    )
    .await;
    let marker = "OTLP/gRPC listening on ";
    wait_until(DEADLINE, "the OTLP/gRPC listener", || {
        let found = h.daemon.logs().contains(marker);
        async move { found }
    })
    .await;
    let logs = h.daemon.logs();
    let address = logs
        .split(marker)
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (h, address)
}

/// Asserts each mapped field of the trace `ids` names in `rows`.
fn assert_trace(rows: &std::collections::HashMap<String, Value>, ids: &Value, mode: &str) {
    let id = |name: &str| ids[name].as_str().unwrap().to_string();
    let row = |name: &str| {
        rows.get(&id(name))
            .unwrap_or_else(|| panic!("{mode}: no row for span {name}: {rows:?}"))
    };
    let trace_id = id("trace_id");
    for name in ["agent", "chat", "legacy", "scorer", "tool"] {
        let r = row(name);
        assert_eq!(r["span_id"], id(name).as_str(), "{mode} {name}");
        assert_eq!(
            r["root_span_id"],
            trace_id.as_str(),
            "{mode} {name}: one trace"
        );
        let (start, end) = (
            r["metrics"]["start"].as_f64().unwrap(),
            r["metrics"]["end"].as_f64().unwrap(),
        );
        assert!(start > 1.7e9 && start <= end, "{mode} {name}: {r}");
        if name != "agent" {
            assert_eq!(r["span_parents"], json!([id("agent")]), "{mode} {name}");
        }
    }
    let agent = row("agent");
    assert_eq!(
        agent["span_parents"],
        json!([]),
        "{mode}: the root has no parent"
    );
    assert_eq!(agent["is_root"], true);
    assert_eq!(
        agent["input"],
        json!({"question": "refund?"}),
        "{mode}: OpenInference JSON input"
    );
    assert_eq!(agent["output"], "Refunds take 5 days.");
    assert_eq!(
        agent["metadata"]["env"], "prod",
        "{mode}: OpenInference metadata"
    );
    assert_eq!(
        agent["span_attributes"],
        json!({"name": "agent", "type": "task"})
    );
    let otel = &agent["metadata"]["otel"];
    assert_eq!(
        otel["attributes"]["http.route"], "/chat",
        "{mode}: unmapped attributes kept"
    );
    assert_eq!(
        otel["resource"]["service.name"],
        format!("herald-test-{mode}")
    );
    assert_eq!(otel["scope"]["name"], "herald.tests");

    let chat = row("chat");
    assert_eq!(
        chat["input"],
        json!([{"role": "user", "parts": [{"type": "text", "content": "refund?"}]}]),
        "{mode}: gen_ai.input.messages"
    );
    assert_eq!(chat["output"][0]["parts"][0]["content"], "5 days");
    assert_eq!(chat["metrics"]["prompt_tokens"], 12.0);
    assert_eq!(chat["metrics"]["completion_tokens"], 30.0);
    assert_eq!(chat["metrics"]["tokens"], 42.0);
    assert_eq!(chat["metadata"]["model"], "gpt-4o");
    assert_eq!(chat["metadata"]["provider"], "openai");
    assert_eq!(chat["metadata"]["temperature"], 0.2);
    assert_eq!(chat["metadata"]["otel"]["kind"], "client");
    assert_eq!(chat["span_attributes"]["type"], "llm");

    let legacy = row("legacy");
    assert_eq!(
        legacy["input"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "refund?"}]),
        "{mode}: gen_ai.prompt.N"
    );
    assert_eq!(
        legacy["output"],
        json!([{"role": "assistant", "content": "5 days"}])
    );
    assert_eq!(legacy["metrics"]["prompt_tokens"], 7.0);
    assert_eq!(legacy["metrics"]["completion_tokens"], 2.0);
    assert_eq!(legacy["metrics"]["tokens"], 9.0);
    assert_eq!(legacy["metadata"]["provider"], "anthropic");
    assert_eq!(legacy["span_attributes"]["type"], "llm");

    let scorer = row("scorer");
    assert_eq!(
        scorer["input"],
        json!({"answer": "5 days"}),
        "{mode}: braintrust.input_json"
    );
    assert_eq!(scorer["output"], json!({"verdict": "ok"}));
    assert_eq!(scorer["expected"], "5 days");
    assert_eq!(scorer["scores"], json!({"Factuality": 0.25}));
    assert_eq!(scorer["metadata"]["judge"], "gpt-4o-mini");
    assert_eq!(scorer["tags"], json!(["graded"]));
    assert_eq!(
        scorer["span_attributes"],
        json!({"name": "score answer", "type": "score"})
    );

    let tool = row("tool");
    let error = tool["error"].as_str().unwrap();
    assert!(
        error.starts_with("KeyError: 'order 42'"),
        "{mode}: the exception event: {error}"
    );
    assert!(
        error.contains("Traceback"),
        "{mode}: with its stack trace: {error}"
    );
    assert_eq!(tool["span_attributes"]["type"], "tool");
    assert_eq!(
        tool["metadata"]["otel"]["status"]["message"],
        "order not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opentelemetry_sdk_sends_over_http_protobuf_json_and_grpc() {
    let (h, grpc) = daemon().await;
    // A log alert on the protobuf project, created before its spans come.
    let receiver = Receiver::start().await;
    let project = h.project("otel-proto").await;
    h.create(
        &project,
        "low factuality",
        log_alert("scores.Factuality < 0.5", 60, webhook(&receiver, "/otel")),
    )
    .await;
    for (mode, endpoint) in [
        ("proto", format!("{}/otel/v1/traces", h.daemon.url)),
        ("json", format!("{}/v1/traces", h.daemon.url)),
        ("grpc", format!("http://{grpc}")),
    ] {
        let args = vec![
            mode.to_string(),
            endpoint,
            DAEMON_KEY.to_string(),
            format!("project_name:otel-{mode}"),
        ];
        let ids = run_client("otel_send.py", args, Vec::new()).await;
        let rows = logs_by_id(&h, &format!("otel-{mode}")).await;
        assert_eq!(rows.len(), 5, "{mode}: five spans, one row each: {rows:?}");
        assert_trace(&rows, &ids, mode);
    }
    let sent = wait_for_requests(&receiver, "/otel", 1).await;
    let payload = sent[0].json();
    assert_eq!(
        payload["details"]["count"], 1,
        "the scorer span matched: {payload}"
    );
}

/// An export request of `n` spans of one trace, built in Rust.
fn request_of(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![7; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span {i}"),
            start_time_unix_nano: 1_800_000_000_000_000_000,
            end_time_unix_nano: 1_800_000_001_000_000_000,
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

async fn post(h: &Herald, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/otel/v1/traces", h.daemon.url))
        .bearer_auth(DAEMON_KEY)
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_otlp_input_gets_a_clear_answer_and_writes_nothing_by_halves() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    let (h, grpc) = daemon().await;
    let project = h.project("otel-errors").await;
    let parent = format!("project_id:{project}");
    let protobuf = [
        ("content-type", "application/x-protobuf"),
        ("x-bt-parent", parent.as_str()),
    ];

    // Malformed protobuf, a wrong content type, a gzip bomb.
    let (status, body) = post(&h, b"\xff\xff\xff not protobuf".to_vec(), &protobuf).await;
    assert_eq!(status, 400);
    let error = herald::ingest::otlp::http::RpcStatus::decode(body.as_slice()).unwrap();
    assert!(
        error.message.contains("malformed OTLP protobuf"),
        "{error:?}"
    );
    let (status, _) = post(&h, b"{}".to_vec(), &[("content-type", "text/plain")]).await;
    assert_eq!(status, 415);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&vec![0u8; 40 << 20]).unwrap();
    let bomb = gzip.finish().unwrap();
    let mut headers = protobuf.to_vec();
    headers.push(("content-encoding", "gzip"));
    let (status, _) = post(&h, bomb, &headers).await;
    assert_eq!(status, 413, "a small body inflating past the limit");

    // Too many spans in one request: refused whole.
    let (status, body) = post(&h, request_of(10_001).encode_to_vec(), &protobuf).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        logs_by_id(&h, "otel-errors").await.is_empty(),
        "nothing was written"
    );

    // No project, or an unknown one: partial success, nothing silently dropped.
    for parent in [None, Some(format!("project_id:{}", uuid::Uuid::new_v4()))] {
        let mut headers = vec![("content-type", "application/x-protobuf")];
        if let Some(parent) = &parent {
            headers.push(("x-bt-parent", parent.as_str()));
        }
        let (status, body) = post(&h, request_of(2).encode_to_vec(), &headers).await;
        assert_eq!(status, 200);
        let answer = ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
        let partial = answer.partial_success.expect("the rejection is reported");
        assert_eq!(partial.rejected_spans, 2, "{partial:?}");
        assert!(
            partial.error_message.contains("no project")
                || partial.error_message.contains("not found"),
            "{partial:?}"
        );
    }

    // A good request, in JSON with enum names as protobuf's printer writes
    // them, and the same spans again (an exporter's retry): one row each.
    let span = json!({"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
        "name": "json span", "kind": "SPAN_KIND_SERVER", "startTimeUnixNano": "1800000000000000000",
        "endTimeUnixNano": "1800000000500000000", "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
        "attributes": [{"key": "braintrust.scores", "value": {"stringValue": "{\"q\": 1}"}}]});
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).to_string();
    for _ in 0..2 {
        let headers = [
            ("content-type", "application/json"),
            ("x-bt-parent", parent.as_str()),
        ];
        let (status, answer) = post(&h, body.clone().into_bytes(), &headers).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap(), json!({}));
    }
    let rows = logs_by_id(&h, "otel-errors").await;
    assert_eq!(rows.len(), 1, "a retried span replaces its row: {rows:?}");
    let row = &rows["b7ad6b7169203331"];
    assert_eq!(row["error"], "boom");
    assert_eq!(row["scores"], json!({"q": 1}));
    assert_eq!(row["metadata"]["otel"]["kind"], "server");

    // A trace's spans in two requests, the child first: one trace.
    let mut child = request_of(1);
    child.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0xc; 8];
    child.resource_spans[0].scope_spans[0].spans[0].parent_span_id = vec![0xa; 8];
    let mut root = request_of(1);
    root.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0xa; 8];
    for part in [child, root] {
        let (status, _) = post(&h, part.encode_to_vec(), &protobuf).await;
        assert_eq!(status, 200);
    }
    let rows = logs_by_id(&h, "otel-errors").await;
    let (child, root) = (&rows["0c0c0c0c0c0c0c0c"], &rows["0a0a0a0a0a0a0a0a"]);
    assert_eq!(child["root_span_id"], root["root_span_id"]);
    assert_eq!(child["span_parents"], json!(["0a0a0a0a0a0a0a0a"]));
    assert_eq!(
        (&root["is_root"], &child["is_root"]),
        (&json!(true), &json!(false))
    );

    // Spans can go to an experiment.
    let experiment = h
        .post(
            "/v1/experiment",
            json!({"project_id": project, "name": "otel-exp"}),
        )
        .await;
    let experiment_id = experiment["id"].as_str().unwrap();
    let into_experiment = format!("experiment_id:{experiment_id}");
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("x-bt-parent", into_experiment.as_str()),
    ];
    let (status, _) = post(&h, request_of(3).encode_to_vec(), &headers).await;
    assert_eq!(status, 200);
    let events = h
        .get(&format!("/v1/experiment/{experiment_id}/fetch"))
        .await;
    assert_eq!(events["events"].as_array().unwrap().len(), 3, "{events}");

    // gRPC: the key is checked before anything else.
    let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    let mut request = tonic::Request::new(request_of(1));
    request
        .metadata_mut()
        .insert("x-bt-parent", parent.parse().unwrap());
    let refused = client.export(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let mut request = tonic::Request::new(request_of(10_001));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {DAEMON_KEY}").parse().unwrap(),
    );
    let too_many = client.export(request).await.unwrap_err();
    assert_eq!(
        too_many.code(),
        tonic::Code::InvalidArgument,
        "{too_many:?}"
    );
    let (status, _) = h.call(Method::GET, "/v1/project", None).await;
    assert_eq!(status, 200, "the daemon is still serving");
}
