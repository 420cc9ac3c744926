//! A real S3 server on loopback, for the export benchmark and the test
//! suite: `s3s` (the S3 protocol, SigV4 signature checks included) over
//! `s3s-fs` (objects as files under a directory).
//!
//! It is not a mock: requests are signed by the same `aws-sdk-s3` client
//! the daemon uses and verified against the server's one access key, so a
//! wrong secret fails with `SignatureDoesNotMatch` exactly as on AWS. One
//! gap of `s3s-fs` is closed here: it writes into a bucket that does not
//! exist, where S3 answers `NoSuchBucket`; [`Buckets`] refuses as S3 does.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CreateBucketInput, CreateBucketOutput,
    CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteObjectInput, DeleteObjectOutput,
    GetObjectInput, GetObjectOutput, ListObjectsV2Input, ListObjectsV2Output, PutObjectInput,
    PutObjectOutput, UploadPartInput, UploadPartOutput,
};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

use herald::automations::config::ExportConfig;

/// `s3s-fs` with S3's bucket checks on writes: the operations the daemon
/// and the tests use, forwarded.
struct Buckets {
    fs: s3s_fs::FileSystem,
    root: std::path::PathBuf,
}

impl Buckets {
    fn exists(&self, bucket: &str) -> S3Result<()> {
        let valid = !bucket.is_empty() && !bucket.contains(['/', '.']);
        if valid && self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist"
            ))
        }
    }
}

/// Forwards each listed operation to `s3s-fs`, checking the bucket first
/// where the operation has one to check.
macro_rules! forward {
    ($($method:ident($input:ty) -> $output:ty, check: $check:expr;)*) => {
        #[async_trait::async_trait]
        impl S3 for Buckets {
            $(
                async fn $method(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    if $check {
                        self.exists(&req.input.bucket)?;
                    }
                    self.fs.$method(req).await
                }
            )*
        }
    };
}

forward! {
    create_bucket(CreateBucketInput) -> CreateBucketOutput, check: false;
    put_object(PutObjectInput) -> PutObjectOutput, check: true;
    get_object(GetObjectInput) -> GetObjectOutput, check: true;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput, check: true;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output, check: true;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput, check: true;
    upload_part(UploadPartInput) -> UploadPartOutput, check: true;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput, check: true;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput, check: false;
}

/// The access key id the loopback server accepts.
pub const ACCESS_KEY_ID: &str = "HERALDLOOPBACKKEY";
/// The secret access key the loopback server accepts.
pub const SECRET_ACCESS_KEY: &str = "herald-loopback-secret-access-key";

/// A running loopback S3 server; stops when dropped.
pub struct LoopbackS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    task: JoinHandle<()>,
}

impl Drop for LoopbackS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LoopbackS3 {
    /// Serves the directory `root` (which must exist) on a free port.
    pub async fn start(root: &Path) -> anyhow::Result<Self> {
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| anyhow::anyhow!("opening {}: {e:?}", root.display()))?;
        let mut builder = S3ServiceBuilder::new(Buckets {
            fs,
            root: root.to_path_buf(),
        });
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = builder.build();
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        Ok(Self { endpoint, task })
    }

    /// The export config fields that reach this server: credentials,
    /// endpoint, region, path-style addressing.
    pub fn destination(&self) -> serde_json::Value {
        Self::destination_at(&self.endpoint)
    }

    /// [`LoopbackS3::destination`] for a server at `endpoint` (run by
    /// another process).
    pub fn destination_at(endpoint: &str) -> serde_json::Value {
        json!({
            "credentials": {"type": "access_key", "access_key_id": ACCESS_KEY_ID,
                            "secret_access_key": SECRET_ACCESS_KEY},
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "force_path_style": true,
        })
    }

    /// An S3 client for this server.
    pub async fn client(&self) -> aws_sdk_s3::Client {
        let mut config = self.destination();
        config["export_definition"] = json!({"type": "log_spans"});
        config["export_path"] = "s3://unused".into();
        config["format"] = "jsonl".into();
        config["interval_seconds"] = 60.into();
        let config: ExportConfig =
            serde_json::from_value(config).expect("the loopback destination is a valid config");
        herald::capabilities::s3::build_client(&config.s3_destination(), true).await
    }

    /// Creates `bucket`.
    pub async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.client()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .with_context(|| format!("creating bucket {bucket}"))?;
        Ok(())
    }

    /// Every object in `bucket` under `prefix`, as `(key, bytes)`, by key.
    pub async fn objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let client = self.client().await;
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .with_context(|| format!("listing {bucket}/{prefix}"))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let object = client.get_object().bucket(bucket).key(&key).send().await?;
            let bytes = object.body.collect().await?.into_bytes().to_vec();
            out.push((key, bytes));
        }
        Ok(out)
    }
}
