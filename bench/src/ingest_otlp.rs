//! `herald-bench ingest --otlp`: the same spans as the REST figure, sent
//! as OpenTelemetry spans over OTLP/HTTP (protobuf) and OTLP/gRPC, beside
//! a baseline measured in the same run: the rows inserted straight into a
//! SQLite database of the same schema, in the same batches and
//! transactions (one sequence allocation per batch), through rusqlite, with
//! their JSON already serialised — what the database alone costs.
//!
//! The OTLP spans carry what the REST spans carry, as `braintrust.*` JSON
//! attributes (input, output, metadata, scores, metrics, span attributes,
//! tags), so the server does at least the same work per span; bodies are
//! encoded before the clock starts, and each gRPC client has a connection
//! of its own, as each REST client has.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};

use super::ingest_load::{IngestArgs, KEY, span};
use herald::store::{DbTime, JSON_FIELDS, ObjectRef, Store, XactRange};

fn attribute(key: &str, value: &Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..KeyValue::default()
    }
}

/// REST span `i` as an OpenTelemetry span with the same content.
fn otlp_span(i: usize) -> Span {
    let rest = span(i);
    let root = (i / 8) as u128 + 1;
    let parent = if i.is_multiple_of(8) {
        Vec::new()
    } else {
        ((i / 8 * 8) as u64 + 1).to_be_bytes().to_vec()
    };
    let attributes = [
        ("braintrust.input_json", "input"),
        ("braintrust.output_json", "output"),
        ("braintrust.metadata", "metadata"),
        ("braintrust.scores", "scores"),
        ("braintrust.metrics", "metrics"),
        ("braintrust.tags", "tags"),
        ("braintrust.span_attributes", "span_attributes"),
    ]
    .iter()
    .map(|(key, field)| attribute(key, &rest[*field]))
    .collect();
    Span {
        trace_id: root.to_be_bytes().to_vec(),
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        parent_span_id: parent,
        name: "chat-completion".into(),
        start_time_unix_nano: 1_714_557_600_000_000_000 + i as u64 * 1_000_000_000,
        end_time_unix_nano: 1_714_557_601_250_000_000 + i as u64 * 1_000_000_000,
        attributes,
        ..Span::default()
    }
}

fn request(range: std::ops::Range<usize>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: range.map(otlp_span).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// The batches of `args`, built by `build`.
fn batches<T>(args: &IngestArgs, build: impl Fn(std::ops::Range<usize>) -> T) -> Vec<T> {
    (0..args.spans)
        .step_by(args.batch)
        .map(|start| build(start..(start + args.batch).min(args.spans)))
        .collect()
}

/// Sends a one-span warm-up (opening the connection, untimed), then every
/// batch, encoded before the clock starts, with `send` from
/// `args.concurrency` tasks, and checks that `project` holds every span;
/// spans/s.
async fn drive<F, Fut>(
    args: &IngestArgs,
    store: &Store,
    project: uuid::Uuid,
    send: F,
) -> anyhow::Result<f64>
where
    F: Fn(bytes::Bytes) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let encode = |range| bytes::Bytes::from(request(range).encode_to_vec());
    send(encode(args.spans..args.spans + 1)).await?;
    let batches = Arc::new(batches(args, encode));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (batches, next, send) = (batches.clone(), next.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= batches.len() {
                    return Ok::<_, anyhow::Error>(());
                }
                send(batches[i].clone()).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = args.spans as f64 / started.elapsed().as_secs_f64();
    check_count(store, project, args.spans + 1).await?;
    Ok(rate)
}

async fn check_count(store: &Store, project: uuid::Uuid, expected: usize) -> anyhow::Result<()> {
    let stored = store
        .count_events(ObjectRef::project_logs(project), None, XactRange::default())
        .await?;
    if stored != expected as u64 {
        bail!("expected {expected} rows, found {stored}");
    }
    Ok(())
}

/// OTLP/HTTP with protobuf bodies, against the API router on `addr`.
pub(super) async fn http(
    store: &Store,
    addr: std::net::SocketAddr,
    args: &IngestArgs,
) -> anyhow::Result<f64> {
    let (project, _) = store.create_project("bench-otlp-http", None).await?;
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/otel/v1/traces");
    let parent = format!("project_id:{}", project.id);
    let send = move |body: bytes::Bytes| {
        let (client, url, parent) = (client.clone(), url.clone(), parent.clone());
        async move {
            let response = client
                .post(&url)
                .bearer_auth(KEY)
                .header("content-type", "application/x-protobuf")
                .header("x-bt-parent", parent)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            if !status.is_success() || !body.is_empty() {
                bail!(
                    "OTLP/HTTP export answered {status} with {} bytes",
                    body.len()
                );
            }
            Ok(())
        }
    };
    drive(args, store, project.id, send).await
}

/// A gRPC codec for `TraceService/Export` that sends requests encoded
/// before the clock starts, as the REST and OTLP/HTTP bodies are (the
/// generated client would encode each one inside the timed loop, on the
/// same two cores as the server), and decodes the answer.
#[derive(Clone, Copy)]
struct PreEncoded;

impl tonic::codec::Codec for PreEncoded {
    type Encode = bytes::Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;
    fn encoder(&mut self) -> Self {
        PreEncoded
    }
    fn decoder(&mut self) -> Self {
        PreEncoded
    }
}

impl tonic::codec::Encoder for PreEncoded {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for PreEncoded {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// OTLP/gRPC against the gRPC service on `addr`.
pub(super) async fn grpc(
    store: &Store,
    addr: std::net::SocketAddr,
    args: &IngestArgs,
) -> anyhow::Result<f64> {
    let (project, _) = store.create_project("bench-otlp-grpc", None).await?;
    // One connection per client, as each REST client has its own (an
    // exporter keeps one connection; four exporters keep four).
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
            .context("connecting to OTLP/gRPC")?;
        clients.push(tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20));
    }
    let (clients, turn) = (Arc::new(clients), Arc::new(AtomicUsize::new(0)));
    let parent = format!("project_id:{}", project.id);
    let send = move |body: bytes::Bytes| {
        let turn = turn.fetch_add(1, Ordering::Relaxed) % clients.len();
        let (mut client, parent) = (clients[turn].clone(), parent.clone());
        async move {
            let mut request = tonic::Request::new(body);
            let metadata = request.metadata_mut();
            metadata.insert("authorization", format!("Bearer {KEY}").parse()?);
            metadata.insert("x-bt-parent", parent.parse()?);
            client.ready().await?;
            let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
            let answer = client
                .unary(request, path.parse()?, PreEncoded)
                .await?
                .into_inner();
            if answer.partial_success.is_some() {
                bail!("OTLP/gRPC export rejected spans: {answer:?}");
            }
            Ok(())
        }
    };
    drive(args, store, project.id, send).await
}

/// The rows straight into SQLite: same schema (a migrated database), same
/// batches, one transaction and one sequence allocation per batch.
pub(super) fn sqlite_baseline(path: &std::path::Path, args: &IngestArgs) -> anyhow::Result<f64> {
    let connection = rusqlite::Connection::open(path)?;
    connection.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let project = uuid::Uuid::new_v4().to_string();
    connection.execute(
        "INSERT INTO projects (id, name, created) VALUES (?1, 'baseline', ?2)",
        rusqlite::params![project, DbTime::now().to_text()],
    )?;
    let text = |v: &Value| (!v.is_null()).then(|| v.to_string());
    type Row = (String, String, String, bool, Vec<Option<String>>);
    let rows: Vec<Vec<Row>> = batches(args, |range| {
        range
            .map(|i| {
                let s = span(i);
                let id = |f: &str| s[f].as_str().unwrap_or_default().to_string();
                let json = JSON_FIELDS.iter().map(|f| text(&s[*f])).collect();
                (
                    id("id"),
                    id("span_id"),
                    id("root_span_id"),
                    s["span_parents"].is_null(),
                    json,
                )
            })
            .collect()
    });
    let columns = JSON_FIELDS.join(", ");
    let slots: Vec<String> = (8..8 + JSON_FIELDS.len())
        .map(|n| format!("?{n}"))
        .collect();
    let sql = format!(
        "INSERT INTO events (object_type, object_id, project_id, id, xact_id, created, span_id, \
         root_span_id, is_root, {columns}) VALUES ('project_logs', ?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, \
         {})",
        slots.join(", ")
    );
    let created = DbTime::now().to_text();
    let started = Instant::now();
    for batch in &rows {
        let tx = connection.unchecked_transaction()?;
        let last: i64 = tx.query_row(
            "UPDATE xact_counter SET last = last + ?1 WHERE id = 1 RETURNING last",
            [batch.len() as i64],
            |row| row.get(0),
        )?;
        let first = last - batch.len() as i64 + 1;
        let mut insert = tx.prepare_cached(&sql)?;
        for (k, (id, span_id, root, is_root, json)) in batch.iter().enumerate() {
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(7 + json.len());
            let xact = first + k as i64;
            values.extend([
                &project as &dyn rusqlite::ToSql,
                id,
                &xact,
                &created,
                span_id,
                root,
                is_root,
            ]);
            values.extend(json.iter().map(|v| v as &dyn rusqlite::ToSql));
            insert.execute(values.as_slice())?;
        }
        drop(insert);
        tx.commit()?;
    }
    Ok(args.spans as f64 / started.elapsed().as_secs_f64())
}

/// Writes out what the runs so far left in the page cache, so that the
/// kernel's writeback of one run's database (about 300 MB, flushed some
/// 30 s after it was written) does not land inside the next run's clock:
/// every file in `dir` is synced.
pub(super) fn settle(dir: &std::path::Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    Ok(())
}

/// Runs the three, each on a fresh database file as the REST figure was
/// (a database that already holds the other runs' rows has deeper indexes
/// and would make the later transports look slower) and after the runs
/// before it were written out ([`settle`]), and returns their figures with
/// ratios to `rest`.
pub(super) async fn measure(rest: f64, args: &IngestArgs) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let fresh = |name: &str| format!("sqlite://{}", dir.path().join(name).display());

    let store = Store::connect(&fresh("otlp-http.db")).await?;
    let (http_addr, api) = super::ingest::serve_api(&store).await?;
    let http = http(&store, http_addr, args).await;
    api.abort();
    store.close().await;
    let http = http?;
    settle(dir.path())?;

    let store = Store::connect(&fresh("otlp-grpc.db")).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc_addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let authorize: herald::ingest::otlp::grpc::Authorize =
        Arc::new(|value| herald::api::auth::bearer_token(value) == Some(KEY));
    let server = tokio::spawn(herald::ingest::otlp::grpc::serve(
        listener,
        store.clone(),
        authorize,
        async {
            let _ = stopped.await;
        },
    ));
    let grpc = grpc(&store, grpc_addr, args).await;
    let _ = stop.send(());
    let _ = server.await;
    store.close().await;
    let grpc = grpc?;
    settle(dir.path())?;

    // The baseline's database: migrated by the store, then closed.
    let path = dir.path().join("baseline.db");
    Store::connect(&fresh("baseline.db")).await?.close().await;
    let args_copy = args.clone();
    let baseline =
        tokio::task::spawn_blocking(move || sqlite_baseline(&path, &args_copy)).await??;
    println!(
        "    otlp: HTTP/protobuf {http:>9.0} spans/s ({:.2}x REST), gRPC {grpc:>9.0} spans/s ({:.2}x REST)",
        http / rest,
        grpc / rest
    );
    println!(
        "baseline: {baseline:>9.0} spans/s straight into SQLite (rusqlite, same schema and batches); REST is {:.2}x of it",
        rest / baseline
    );
    Ok(json!({
        "otlp_http_spans_per_sec": http.round(),
        "otlp_grpc_spans_per_sec": grpc.round(),
        "sqlite_baseline_spans_per_sec": baseline.round(),
        "otlp_http_vs_rest": (http / rest * 100.0).round() / 100.0,
        "otlp_grpc_vs_rest": (grpc / rest * 100.0).round() / 100.0,
        "rest_vs_baseline": (rest / baseline * 100.0).round() / 100.0,
    }))
}
