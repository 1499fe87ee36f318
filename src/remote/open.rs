//! Opening a remote: building its object_store client from its settings.

use super::webdav::http_auth;
use super::*;

impl Remote {
    /// Opens a remote from its settings.
    pub fn from_spec(spec: &RemoteSpec, location: &Location, jobs: Option<usize>, create: bool) -> Result<Remote> {
        let mut secrets = spec.secrets();
        for var in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_ACCESS_KEY",
            "AZURE_STORAGE_SAS_KEY",
            "AZURE_CLIENT_SECRET",
        ] {
            if let Ok(v) = std::env::var(var)
                && v.len() >= 4
            {
                secrets.push(v);
            }
        }
        let cfg_err = |e: object_store::Error| RemoteError::Config {
            remote: spec.name.clone(),
            message: redact(&crate::error_chain(&e), &secrets),
        };
        let retry = RetryConfig {
            max_retries: spec.int("retries")?.unwrap_or(5) as usize,
            retry_timeout: Duration::from_secs(120),
            ..Default::default()
        };
        let mut client = ClientOptions::new();
        if let Some(t) = spec.int("timeout")? {
            client = client.with_timeout(Duration::from_secs(t));
        }
        let endpoint = spec.get("endpointurl");
        // The builders read the rest of the environment themselves; client options
        // given to them replace the environment's, so `allow_http` is read here.
        let (env_endpoint, env_allow) = match location.scheme {
            Scheme::S3 => (
                env_any(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
                env_any(&["AWS_ALLOW_HTTP"]),
            ),
            Scheme::Azure => (env_any(&["AZURE_STORAGE_ENDPOINT"]), env_any(&["AZURE_ALLOW_HTTP"])),
            Scheme::Gcs => (None, env_any(&["GOOGLE_ALLOW_HTTP"])),
            Scheme::Local | Scheme::Http | Scheme::Ssh => (None, None),
        };
        let allow_http = spec.flag("allow_http")?.unwrap_or(false)
            || env_allow.is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || endpoint
                .or(env_endpoint.as_deref())
                .is_some_and(|e| e.starts_with("http://"));
        client = client.with_allow_http(allow_http);
        let tls = tls_trust(spec)?;
        client = match &tls {
            Trust::System => client,
            Trust::Any => client.with_allow_invalid_certificates(true),
            Trust::Also(pem) => object_store::Certificate::from_pem_bundle(pem)
                .map_err(cfg_err)?
                .into_iter()
                .fold(client, ClientOptions::with_root_certificate),
        };
        let webdav = match (location.scheme, &location.base_url) {
            (Scheme::Http, Some(url)) => {
                let headers = http_auth(spec)?;
                client = client.with_default_headers(headers.clone());
                let mut builder = reqwest::Client::builder().default_headers(headers);
                let bad = |e: String| RemoteError::Config {
                    remote: spec.name.clone(),
                    message: e,
                };
                builder = match &tls {
                    Trust::System => builder,
                    Trust::Any => builder.tls_danger_accept_invalid_certs(true),
                    Trust::Also(pem) => builder.tls_certs_merge(
                        reqwest::Certificate::from_pem_bundle(pem).map_err(|e| bad(crate::error_chain(&e)))?,
                    ),
                };
                if let Some(t) = spec.int("timeout")? {
                    builder = builder.timeout(Duration::from_secs(t));
                }
                Some(WebDav {
                    client: builder.build().map_err(|e| bad(crate::error_chain(&e)))?,
                    origin: reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?,
                })
            }
            _ => None,
        };
        let mut sftp = None;
        let store: Arc<dyn ObjectStore> = match location.scheme {
            Scheme::Local => {
                let dir = location.dir.clone().unwrap_or_default();
                let config = |message: String| RemoteError::Config {
                    remote: spec.name.clone(),
                    message,
                };
                if dir.exists() && !dir.is_dir() {
                    return Err(config(format!("`{}` is not a directory", dir.display())).into());
                } else if create {
                    fs_err::create_dir_all(&dir).map_err(|e| config(e.to_string()))?;
                } else if !dir.is_dir() {
                    return Err(config(format!("the directory `{}` does not exist", dir.display())).into());
                }
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(cfg_err)?)
            }
            Scheme::S3 => Arc::new(s3_builder(spec, location, client, retry)?.build().map_err(cfg_err)?),
            Scheme::Gcs => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&location.bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                if let Some(p) = spec.get("credentialpath") {
                    b = b.with_service_account_path(p);
                }
                if let Some(e) = endpoint {
                    b = b.with_base_url(e);
                }
                Arc::new(b.build().map_err(cfg_err)?)
            }
            Scheme::Azure => Arc::new(azure_builder(spec, location, client, retry)?.build().map_err(cfg_err)?),
            Scheme::Ssh => {
                let store = super::sftp::Sftp::new(super::ssh::Target::from_spec(spec, location)?);
                // Kept beside the store for what its interface has no call for.
                sftp = Some(store.clone());
                Arc::new(store)
            }
            Scheme::Http => {
                let url = location.base_url.clone().unwrap_or_default();
                let client = client.with_allow_http(url.starts_with("http://"));
                Arc::new(
                    object_store::http::HttpBuilder::new()
                        .with_url(url)
                        .with_client_options(client)
                        .with_retry(retry)
                        .build()
                        .map_err(cfg_err)?,
                )
            }
        };
        let dir = match &location.dir {
            Some(d) if location.scheme == Scheme::Local => {
                Some((Cache::new(d.clone(), 1), spec.flag("hardlink")?.unwrap_or(false)))
            }
            _ => None,
        };
        let pack = spec.flag("pack")?.unwrap_or(true);
        let jobs = jobs
            .or(spec.int("jobs")?.map(|j| j as usize))
            .unwrap_or_else(default_jobs)
            .max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .enable_all()
            .build()?;
        let prefix = location
            .prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(StorePath::default(), |p, part| p.clone().join(part));
        let remote = Remote {
            name: spec.name.clone(),
            url: spec.url.clone(),
            scheme: location.scheme,
            jobs,
            checks: match location.scheme {
                Scheme::Ssh => jobs.max(super::sftp::CHECKS_AT_ONCE),
                _ => jobs,
            },
            store,
            dir,
            pack,
            packed: tokio::sync::Mutex::new(None),
            index_copies: None,
            prefix,
            secrets,
            runtime,
            memory: Arc::new(tokio::sync::Semaphore::new(MEMORY_BUDGET_MIB as usize)),
            webdav,
            sftp,
            plain: Default::default(),
        };
        // A login that may ask on the terminal (a one-time code) happens now,
        // before a progress bar would draw over the question.
        if let Some(s) = remote.sftp.as_ref().filter(|s| s.asks()) {
            remote
                .block_on(s.connect_now())
                .map_err(|e| remote.fail("cannot connect", &e))?;
        }
        Ok(remote)
    }
}

/// Server-side encryption of what is uploaded, under DVC's option names:
/// `sse` (`AES256`, `aws:kms`, `aws:kms:dsse`), `sse_kms_key_id` (the KMS key;
/// alone, it means `aws:kms`), `sse_customer_key` (SSE-C: a base64 AES-256
/// key that S3 encrypts with and wants again to read; `sse_customer_algorithm`
/// may only be `AES256`). A bucket policy that refuses unencrypted uploads
/// takes these.
fn with_encryption(
    b: object_store::aws::AmazonS3Builder,
    spec: &RemoteSpec,
) -> std::result::Result<object_store::aws::AmazonS3Builder, String> {
    // object_store names these settings only by their keys.
    let set = |b: object_store::aws::AmazonS3Builder, key: &str, value: &str| match key.parse() {
        Ok(key) => b.with_config(key, value),
        Err(_) => b,
    };
    if let Some(a) = spec.get("sse_customer_algorithm")
        && a != "AES256"
    {
        return Err(format!("`sse_customer_algorithm` is `{a}`; S3 takes only `AES256`"));
    }
    match (
        spec.get("sse"),
        spec.get("sse_kms_key_id"),
        spec.get("sse_customer_key"),
    ) {
        (None, None, None) => Ok(b),
        (_, Some(_), Some(_)) => Err("`sse_kms_key_id` and `sse_customer_key` exclude each other: set one".into()),
        (Some(sse), _, Some(_)) if sse != "sse-c" => Err(format!(
            "`sse` is `{sse}` and `sse_customer_key` is set: unset `sse` for SSE-C"
        )),
        (_, None, Some(key)) => {
            let b = set(b, "aws_server_side_encryption", "sse-c");
            Ok(set(b, "aws_sse_customer_key_base64", key))
        }
        (sse, kms, None) => {
            let sse = sse.unwrap_or("aws:kms");
            if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&sse) {
                return Err(format!(
                    "`sse` is `{sse}`; S3 takes `AES256`, `aws:kms` or `aws:kms:dsse`"
                ));
            }
            let b = set(b, "aws_server_side_encryption", sse);
            match kms {
                Some(id) if sse.starts_with("aws:kms") => Ok(set(b, "aws_sse_kms_key_id", id)),
                Some(_) => Err(format!("`sse_kms_key_id` needs `sse` = `aws:kms` (it is `{sse}`)")),
                None => Ok(b),
            }
        }
    }
}

fn s3_builder(
    spec: &RemoteSpec,
    location: &Location,
    client: ClientOptions,
    retry: RetryConfig,
) -> Result<object_store::aws::AmazonS3Builder> {
    let mut b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&location.bucket)
        .with_client_options(client)
        .with_retry(retry);
    if let Some(e) = spec.get("endpointurl") {
        b = b.with_endpoint(e);
    }
    let config = |message: String| RemoteError::Config {
        remote: spec.name.clone(),
        message,
    };
    b = with_encryption(b, spec).map_err(config)?;
    let keys_given = spec.get("access_key_id").is_some() || spec.get("secret_access_key").is_some();
    let explicit = ["profile", "credentialpath", "configpath"]
        .iter()
        .any(|k| spec.get(k).is_some());
    // The AWS shared files, as the AWS CLI reads them: where the keys and
    // the region are not given otherwise.
    // The profile gives the region whatever gives the keys; its keys are
    // used only where neither the remote nor the environment has some.
    let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    let keys_from_profile = !keys_given && (!env_keys || explicit);
    let credentialpath = spec.get("credentialpath").map(std::path::Path::new);
    let configpath = spec.get("configpath").map(std::path::Path::new);
    let profile = match super::aws_profile::load(spec.get("profile"), credentialpath, configpath) {
        Ok(p) => p,
        Err(e) if keys_from_profile => return Err(config(e).into()),
        Err(_) => None,
    };
    let env_region = std::env::var_os("AWS_REGION").is_some() || std::env::var_os("AWS_DEFAULT_REGION").is_some();
    match (
        spec.get("region"),
        env_region,
        profile.as_ref().and_then(|p| p.region.as_deref()),
    ) {
        (Some(r), _, _) => b = b.with_region(r),
        (None, true, _) => {}
        (None, false, Some(r)) => {
            tracing::debug!("remote `{}`: region `{r}`, of the AWS profile", spec.name);
            b = b.with_region(r);
        }
        (None, false, None) => b = b.with_region("us-east-1"),
    }
    match (spec.get("access_key_id"), spec.get("secret_access_key")) {
        (Some(k), Some(s)) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            if let Some(t) = spec.get("session_token") {
                b = b.with_token(t);
            }
        }
        (Some(_), None) => {
            // The usual case in a fresh clone: the key id is committed, the
            // secret never is.
            return Err(RemoteError::NoSecret {
                remote: spec.name.clone(),
                of_other_repo: false,
            }
            .into());
        }
        (None, Some(_)) => {
            return Err(RemoteError::Config {
                remote: spec.name.clone(),
                message: "`secret_access_key` is set but `access_key_id` is not: set both, or neither".into(),
            }
            .into());
        }
        (None, None) if !keys_from_profile => {}
        (None, None) => match profile {
            Some(super::aws_profile::Profile {
                credentials: Some(super::aws_profile::Credentials::Keys(k, file)),
                name,
                ..
            }) => {
                tracing::debug!(
                    "remote `{}`: keys of AWS profile `{name}` in `{}`",
                    spec.name,
                    file.display()
                );
                b = b.with_access_key_id(k.key_id).with_secret_access_key(k.secret_key);
                if let Some(t) = k.token {
                    b = b.with_token(t);
                }
            }
            Some(super::aws_profile::Profile {
                credentials: Some(super::aws_profile::Credentials::Process(command)),
                name,
                ..
            }) => {
                tracing::debug!(
                    "remote `{}`: keys of AWS profile `{name}`'s credential_process",
                    spec.name
                );
                let process = super::aws_profile::ProcessCredentials::start(&name, &command).map_err(config)?;
                b = b.with_credentials(Arc::new(process));
            }
            Some(super::aws_profile::Profile { name, .. }) if explicit => {
                return Err(config(format!(
                    "AWS profile `{name}` has no keys (`aws_access_key_id` and `aws_secret_access_key`) and no \
                     `credential_process`"
                ))
                .into());
            }
            None if explicit => {
                let name = spec.get("profile").unwrap_or("default");
                return Err(config(format!("no AWS profile `{name}` in the credentials or config file")).into());
            }
            _ => {}
        },
    }
    Ok(b)
}

fn azure_builder(
    spec: &RemoteSpec,
    location: &Location,
    client: ClientOptions,
    retry: RetryConfig,
) -> Result<object_store::azure::MicrosoftAzureBuilder> {
    use object_store::azure::AzureConfigKey;
    let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
        .with_container_name(&location.bucket)
        .with_client_options(client)
        .with_retry(retry);
    if let Some(cs) = spec.get("connection_string") {
        for part in cs.split(';') {
            let Some((k, v)) = part.split_once('=') else { continue };
            match k.trim() {
                "AccountName" => b = b.with_account(v),
                "AccountKey" => b = b.with_access_key(v),
                "BlobEndpoint" => b = b.with_endpoint(v.trim_end_matches('/').to_string()),
                "SharedAccessSignature" => b = b.with_config(AzureConfigKey::SasKey, v),
                "UseDevelopmentStorage" if v.eq_ignore_ascii_case("true") => b = b.with_use_emulator(true),
                _ => {}
            }
        }
    }
    if let Some(a) = spec.get("account_name") {
        b = b.with_account(a);
    }
    if let Some(k) = spec.get("account_key") {
        b = b.with_access_key(k);
    }
    if let Some(s) = spec.get("sas_token") {
        b = b.with_config(AzureConfigKey::SasKey, s.trim_start_matches('?'));
    }
    if let Some(t) = spec.get("tenant_id") {
        b = b.with_tenant_id(t);
    }
    if let Some(c) = spec.get("client_id") {
        b = b.with_client_id(c);
    }
    if let Some(s) = spec.get("client_secret") {
        b = b.with_client_secret(s);
    }
    if let Some(e) = spec.get("endpointurl") {
        b = b.with_endpoint(e.trim_end_matches('/').to_string());
    }
    Ok(b)
}

/// The value of the first of `vars` that is set.
fn env_any(vars: &[&str]) -> Option<String> {
    vars.iter().find_map(|v| std::env::var(v).ok())
}

/// Which TLS certificates a remote accepts (DVC's `ssl_verify`).
enum Trust {
    /// Those the system trusts (`true`, the default).
    System,
    /// Any (`false`): for a test server with a self-signed certificate.
    Any,
    /// Also those signed by the CAs in this PEM bundle (`ssl_verify` is its path).
    Also(Vec<u8>),
}

fn tls_trust(spec: &RemoteSpec) -> Result<Trust> {
    Ok(match spec.get("ssl_verify") {
        None | Some("true") => Trust::System,
        Some("false") => Trust::Any,
        Some(path) => Trust::Also(fs_err::read(path).map_err(|e| RemoteError::Config {
            remote: spec.name.clone(),
            message: format!("`ssl_verify` names a CA bundle that cannot be read: {e}"),
        })?),
    })
}
