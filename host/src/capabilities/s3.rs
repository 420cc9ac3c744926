//! The S3 backend of the `object-store` capability (AWS S3 and S3-compatible
//! stores: MinIO, R2, Ceph…), built on `aws-sdk-s3`.
//!
//! [`S3Connector`] turns an export's settings into a client — static access
//! keys, the AWS default chain, or an assumed IAM role — and caches clients
//! by settings, so credentials are resolved (and roles assumed) once, not
//! per batch. [`S3Bucket`] is what one plugin call gets: one bucket, keys
//! confined to the export's prefix. Objects above [`MULTIPART_THRESHOLD`]
//! are uploaded in parts. The TLS stack is rustls with ring, like the rest
//! of the daemon (the SDK's default would build aws-lc from C).
//!
//! **Where a client may connect.** The endpoint goes through the same
//! address guard as the http capability: an `endpoint_url` naming a
//! loopback, private or link-local address, or a host name resolving only
//! to such addresses, is refused unless the operator allows private
//! networks ([`GuardedDns`] resolves inside the client, so the address
//! checked is the address connected to). And the daemon's own AWS
//! credentials (`credentials` `default` or `aws_iam`, which may carry a
//! session token) are only ever sent to AWS's own hosts, or to endpoints the
//! operator lists in `automations.ambient_credential_endpoints`: an API key
//! holder cannot point them at a server of their choosing. Static access
//! keys from a config go to that config's endpoint, as its author wrote.
//!
//! Errors keep S3's own code and message (`AccessDenied`, `NoSuchBucket`,
//! `SignatureDoesNotMatch`…), sorted into the WIT's `store-error` cases so
//! a plugin can tell a permanent refusal from a retryable outage.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, timeout::TimeoutConfig};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_types::error::display::DisplayErrorContext;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;

use super::net_guard::{GuardedResolver, HostAllowList, non_public_reason};
use super::object_store::{ObjectInfo, ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

/// How the host authenticates to the bucket, tagged by `type` (an
/// export config's `credentials`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum S3Credentials {
    /// Assume an IAM role (as Braintrust does), starting from the daemon's
    /// own default credentials.
    AwsIam {
        /// The role to assume, `arn:aws:iam::<account>:role/<name>`.
        role_arn: String,
        /// The external id the role's trust policy requires, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
    },
    /// A static access key.
    AccessKey {
        /// The access key id (not secret).
        access_key_id: String,
        /// The secret access key: redacted on read, never given to plugins.
        secret_access_key: String,
    },
    /// The AWS default chain of the daemon: environment, profile, web
    /// identity, container and instance role.
    Default,
}

/// Where a bucket is and how to reach it: the part of an export's config
/// this capability reads. The automations layer builds it
/// (`ExportConfig::s3_destination`), so the capability knows no config type.
#[derive(Debug, Clone)]
pub struct S3Destination<'a> {
    /// How to authenticate; the AWS default chain when absent.
    pub credentials: Option<&'a S3Credentials>,
    /// The bucket's region (the default chain's, else `us-east-1`, when absent).
    pub region: Option<&'a str>,
    /// An S3-compatible endpoint instead of AWS.
    pub endpoint_url: Option<&'a str>,
    /// Address buckets as `endpoint/bucket`.
    pub force_path_style: bool,
    /// The bucket.
    pub bucket: String,
    /// The key prefix inside it, without leading or trailing `/`.
    pub prefix: String,
}

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 32 << 20;

/// The size of each part of a multipart upload (S3 allows up to 10,000).
pub const PART_SIZE: usize = 16 << 20;

/// Parts uploaded at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The settings a client is built from: everything in an export's config
/// that is about reaching the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    credentials: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    force_path_style: bool,
}

impl ClientKey {
    fn of(config: &S3Destination<'_>) -> Self {
        Self {
            // Serialised with the secret: two configs differing only in the
            // secret must not share a client.
            credentials: config
                .credentials
                .and_then(|c| serde_json::to_string(c).ok()),
            region: config.region.map(str::to_owned),
            endpoint_url: config.endpoint_url.map(str::to_owned),
            force_path_style: config.force_path_style,
        }
    }
}

/// Builds and caches S3 clients for export configs.
#[derive(Default)]
pub struct S3Connector {
    clients: Mutex<HashMap<ClientKey, Client>>,
    policy: EndpointPolicy,
}

/// Where S3 clients may connect (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    /// Let endpoints be loopback, private or link-local addresses.
    pub allow_private_networks: bool,
    /// Endpoints besides AWS's own that may receive the daemon's ambient
    /// credentials.
    pub ambient_credential_endpoints: HostAllowList,
}

/// Why an export's endpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointRefused(pub String);

/// AWS's own S3 and STS endpoints, which may always receive ambient
/// credentials: `s3.amazonaws.com`, `s3.<region>…`, `s3-<region>…`,
/// `s3.dualstack.<region>…`, `s3-fips.<region>…`, `sts…`, optionally after
/// one bucket label, under `amazonaws.com` or `amazonaws.com.cn`. Not every
/// `*.amazonaws.com` name is AWS's to answer: EC2, load balancer and API
/// Gateway names under it point at servers anyone can run.
fn is_aws_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = ["amazonaws.com.cn", "amazonaws.com"]
        .iter()
        .find_map(|apex| host.strip_suffix(&format!(".{apex}")))
    else {
        return false;
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let region = |l: &str| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let service = |labels: &[&str]| match labels {
        ["s3" | "sts" | "s3-fips"] => true,
        ["s3" | "sts" | "s3-fips", r] => region(r),
        ["s3" | "s3-fips", "dualstack", r] => region(r),
        [l] => l.strip_prefix("s3-").is_some_and(region),
        _ => false,
    };
    service(&labels) || (labels.len() > 1 && service(&labels[1..]))
}

impl EndpointPolicy {
    /// Checks `config`'s endpoint before any client is built for it.
    pub fn check(&self, config: &S3Destination<'_>) -> Result<(), EndpointRefused> {
        let Some(endpoint) = config.endpoint_url else {
            return Ok(());
        };
        let url = url::Url::parse(endpoint)
            .map_err(|e| EndpointRefused(format!("endpoint_url `{endpoint}` is not a URL: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>();
        if let (Ok(ip), false) = (literal, self.allow_private_networks)
            && let Some(reason) = non_public_reason(ip)
        {
            return Err(EndpointRefused(format!(
                "endpoint_url {endpoint} is a {reason} address, and private networks are not                  allowed (allow_private_networks)"
            )));
        }
        let ambient = matches!(
            config.credentials,
            None | Some(S3Credentials::Default) | Some(S3Credentials::AwsIam { .. })
        );
        if ambient && !is_aws_host(&host) && !self.ambient_credential_endpoints.allows(&host) {
            return Err(EndpointRefused(format!(
                "the daemon's own AWS credentials are sent only to AWS endpoints, not to {host}: \
                 use access_key credentials for this endpoint, or have the operator add it to \
                 automations.ambient_credential_endpoints"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Debug for S3Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Connector")
            .field("clients", &self.clients.lock().len())
            .finish()
    }
}

impl S3Connector {
    /// A connector whose clients follow `policy`.
    pub fn new(policy: EndpointPolicy) -> Self {
        Self {
            clients: Mutex::default(),
            policy,
        }
    }

    /// The bucket of `config`, ready for one plugin call; refused when its
    /// endpoint breaks the policy.
    pub async fn bucket(&self, config: &S3Destination<'_>) -> Result<S3Bucket, EndpointRefused> {
        self.policy.check(config)?;
        let key = ClientKey::of(config);
        let cached = self.clients.lock().get(&key).cloned();
        let client = match cached {
            Some(client) => client,
            None => {
                let client = build_client(config, self.policy.allow_private_networks).await;
                self.clients.lock().insert(key, client.clone());
                client
            }
        };
        Ok(S3Bucket {
            client,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
        })
    }
}

/// The address guard as the AWS SDK's resolver: host names resolving only
/// to non-public addresses fail to connect unless private networks are
/// allowed. (Address literals never reach a resolver; [`EndpointPolicy`]
/// checks the endpoint's, and the SDK's own literals — the instance
/// metadata service — stay reachable for the default credential chain.)
#[derive(Debug, Clone)]
pub struct GuardedDns(std::sync::Arc<GuardedResolver>);

impl aws_smithy_runtime_api::client::dns::ResolveDns for GuardedDns {
    fn resolve_dns<'a>(
        &'a self,
        name: &'a str,
    ) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDnsError};
        let guard = self.0.clone();
        let name = name.to_string();
        DnsFuture::new(async move {
            let addrs = guard
                .resolve_ips(&name)
                .await
                .map_err(ResolveDnsError::new)?;
            Ok(addrs.into_iter().map(|addr| addr.ip()).collect())
        })
    }
}

/// A client for `config`'s destination (uncached: [`S3Connector`] caches).
pub async fn build_client(config: &S3Destination<'_>, allow_private_networks: bool) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_with_resolver(GuardedDns(GuardedResolver::new(allow_private_networks)));
    // No region given: the default chain's (environment, profile), else
    // us-east-1. The chain is the loader's own, so it uses our HTTP client.
    let region = config.region.map(|r| Region::new(r.to_owned()));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(60))
        .build();
    let loader = || {
        let loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http.clone())
            .timeout_config(timeouts.clone());
        match &region {
            Some(region) => loader.region(region.clone()),
            None => loader,
        }
    };
    let sdk = match config.credentials {
        Some(S3Credentials::AccessKey {
            access_key_id,
            secret_access_key,
        }) => {
            let credentials = Credentials::new(
                access_key_id,
                secret_access_key,
                None,
                None,
                "herald-export-config",
            );
            loader().credentials_provider(credentials).load().await
        }
        Some(S3Credentials::AwsIam {
            role_arn,
            external_id,
        }) => {
            let base = loader().load().await;
            let mut role = AssumeRoleProvider::builder(role_arn)
                .session_name("herald-export")
                .configure(&base);
            if let Some(region) = base.region() {
                role = role.region(region.clone());
            }
            if let Some(external_id) = external_id {
                role = role.external_id(external_id);
            }
            let provider = role.build().await;
            loader().credentials_provider(provider).load().await
        }
        Some(S3Credentials::Default) | None => loader().load().await,
    };
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(config.force_path_style);
    if sdk.region().is_none() {
        s3 = s3.region(Region::new("us-east-1"));
    }
    if let Some(endpoint) = config.endpoint_url {
        s3 = s3.endpoint_url(endpoint);
    }
    Client::from_conf(s3.build())
}

/// One export's bucket: keys are confined to its prefix.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    client: Client,
    bucket: String,
    prefix: String,
}

impl S3Bucket {
    fn check_key(&self, key: &str) -> Result<(), StoreError> {
        let inside = self.prefix.is_empty() || key.starts_with(&format!("{}/", self.prefix));
        if key.is_empty() || !inside || key.split('/').any(|p| p == ".." || p == ".") {
            return Err(StoreError::AccessDenied(format!(
                "key {key:?} is outside this export's prefix {:?}",
                self.prefix
            )));
        }
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<ObjectInfo, StoreError> {
        let size = body.len() as u64;
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| store_error(e, "start a multipart upload of", key))?;
        let upload_id = upload.upload_id().unwrap_or_default().to_string();
        let parts: Vec<(i32, Bytes)> = (0..body.len())
            .step_by(PART_SIZE)
            .enumerate()
            .map(|(i, start)| {
                let end = (start + PART_SIZE).min(body.len());
                (i as i32 + 1, body.slice(start..end))
            })
            .collect();
        let uploaded: Result<Vec<CompletedPart>, StoreError> = futures::stream::iter(parts)
            .map(|(number, part)| {
                let upload_id = upload_id.clone();
                async move {
                    let done = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(part))
                        .send()
                        .await
                        .map_err(|e| store_error(e, "upload a part of", key))?;
                    Ok(CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(done.e_tag().map(str::to_string))
                        .build())
                }
            })
            .buffered(PARTS_IN_FLIGHT)
            .try_collect()
            .await;
        let parts = match uploaded {
            Ok(parts) => parts,
            Err(error) => {
                // Best effort: a dangling upload costs storage until the
                // bucket's lifecycle rule (if any) cleans it up.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(error);
            }
        };
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| store_error(e, "complete the multipart upload of", key))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size,
            etag: done.e_tag().map(str::to_string),
        })
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Bucket {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<ObjectInfo, StoreError> {
        self.check_key(key)?;
        if body.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, content_type, body).await;
        }
        let size = body.len() as u64;
        let done = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| store_error(e, "write", key))?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size,
            etag: done.e_tag().map(str::to_string),
        })
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, StoreError> {
        self.check_key(key)?;
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if max_bytes > 0 {
            request = request.range(format!("bytes=0-{}", max_bytes - 1));
        }
        let object = request
            .send()
            .await
            .map_err(|e| store_error(e, "read", key))?;
        let body = object.body.collect().await.map_err(|e| {
            StoreError::Unreachable(format!("reading s3://{}/{key}: {e}", self.bucket))
        })?;
        Ok(body.into_bytes().to_vec())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| store_error(e, "delete", key))?;
        Ok(())
    }
}

/// Sorts an SDK error into the WIT's cases, in plain words with S3's code.
fn store_error<E>(
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    action: &str,
    key: &str,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or(match status {
                403 => "AccessDenied",
                404 => "NotFound",
                _ => "Unknown",
            });
            let message = service.err().message().unwrap_or("");
            let detail = format!("could not {action} {key}: {code} (HTTP {status}) {message}");
            let detail = detail.trim_end().to_string();
            match code {
                "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "AllAccessDisabled" => StoreError::AccessDenied(detail),
                "NoSuchBucket" => StoreError::NoSuchBucket(detail),
                "NoSuchKey" | "NotFound" => StoreError::NotFound(detail),
                _ if status >= 500 => StoreError::Unreachable(detail),
                _ => StoreError::Other(detail),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unreachable(format!(
                "could not {action} {key}: {}",
                DisplayErrorContext(&error)
            ))
        }
        _ => StoreError::Other(format!(
            "could not {action} {key}: {}",
            DisplayErrorContext(&error)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::is_aws_host;

    #[test]
    fn only_s3_and_sts_endpoints_are_aws_hosts() {
        for host in [
            "s3.amazonaws.com",
            "s3.eu-west-1.amazonaws.com",
            "s3-eu-west-1.amazonaws.com",
            "my-bucket.s3.us-east-2.amazonaws.com",
            "s3.dualstack.us-east-1.amazonaws.com",
            "sts.amazonaws.com",
            "s3.cn-north-1.amazonaws.com.cn",
        ] {
            assert!(is_aws_host(host), "{host}");
        }
        for host in [
            "ec2-1-2-3-4.compute-1.amazonaws.com",
            "s3-evil-123.us-east-1.elb.amazonaws.com",
            "abc.execute-api.us-east-1.amazonaws.com",
            "amazonaws.com.evil.example",
            "s3.attacker.example",
        ] {
            assert!(!is_aws_host(host), "{host}");
        }
    }
}
