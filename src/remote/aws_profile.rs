//! What the AWS shared files say about one profile, read as the AWS CLI
//! reads them: keys from `~/.aws/credentials` (or `credentialpath`, or
//! `AWS_SHARED_CREDENTIALS_FILE`), then from `~/.aws/config` (or
//! `AWS_CONFIG_FILE`), then from the profile's `credential_process`; and the
//! profile's `region`. The profile is the remote's `profile`, else
//! `AWS_PROFILE`, else `default`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::aws::AwsCredential;

/// Credentials from a `credential_process` are fetched again this long
/// before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// One profile's settings.
#[derive(Debug, Default)]
pub(super) struct Profile {
    pub name: String,
    /// Static keys, or a process that gives them.
    pub credentials: Option<Credentials>,
    pub region: Option<String>,
}

/// Where a profile's keys come from.
#[derive(Debug)]
pub(super) enum Credentials {
    /// Written in one of the files.
    Keys(AwsCredential, PathBuf),
    /// Given by this `credential_process` command, run only if the keys are
    /// used ([`ProcessCredentials::start`]).
    Process(String),
}

/// Reads profile `profile` (else `AWS_PROFILE`, else `default`);
/// `credentials` and `config` are the remote's `credentialpath` and
/// `configpath`. `None` if the files say nothing of the profile; an error
/// where a file named explicitly cannot be read. Nothing is run.
pub(super) fn load(
    profile: Option<&str>,
    credentials: Option<&Path>,
    config: Option<&Path>,
) -> Result<Option<Profile>, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let name = profile
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "default".into());
    let file = |given: Option<PathBuf>, var: &str, default: &str| {
        given
            .or_else(|| std::env::var_os(var).map(PathBuf::from))
            .or_else(|| home.as_ref().map(|h| h.join(default)))
    };
    let creds_path = file(
        credentials.map(Path::to_path_buf),
        "AWS_SHARED_CREDENTIALS_FILE",
        ".aws/credentials",
    );
    let config_path = file(config.map(Path::to_path_buf), "AWS_CONFIG_FILE", ".aws/config");
    let read = |path: &Option<PathBuf>, must: bool| -> Result<Option<String>, String> {
        let Some(path) = path else { return Ok(None) };
        match fs_err::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if must => Err(e.to_string()),
            Err(_) => Ok(None),
        }
    };
    let creds = read(&creds_path, credentials.is_some())?
        .and_then(|t| section(&t, &name))
        .map(|s| (s, creds_path.clone().unwrap_or_default()));
    let config = read(&config_path, config.is_some())?
        .and_then(|t| section(&t, &name))
        .map(|s| (s, config_path.clone().unwrap_or_default()));
    if creds.is_none() && config.is_none() {
        return Ok(None);
    }
    let keys = |(s, path): &(HashMap<String, String>, PathBuf)| {
        Some(Credentials::Keys(
            AwsCredential {
                key_id: s.get("aws_access_key_id")?.clone(),
                secret_key: s.get("aws_secret_access_key")?.clone(),
                token: s.get("aws_session_token").cloned(),
            },
            path.clone(),
        ))
    };
    let process = [&config, &creds]
        .into_iter()
        .flatten()
        .find_map(|(s, _)| s.get("credential_process").cloned());
    let credentials = match (creds.as_ref().and_then(keys), config.as_ref().and_then(keys), process) {
        (Some(k), _, _) | (None, Some(k), _) => Some(k),
        (None, None, Some(command)) => Some(Credentials::Process(command)),
        (None, None, None) => None,
    };
    let region = config.as_ref().and_then(|(s, _)| s.get("region").cloned());
    Ok(Some(Profile {
        name,
        credentials,
        region,
    }))
}

/// The keys and values of section `profile`: in the config file
/// `[profile NAME]` (or `[default]`), in the credentials file `[NAME]`; either
/// form is taken in either file. `None` if there is no such section.
fn section(text: &str, profile: &str) -> Option<HashMap<String, String>> {
    let mut found = None;
    let mut current = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            let named = header.strip_prefix("profile ").map(str::trim).unwrap_or(header);
            current = named == profile;
            if current {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if current
            && let Some((k, v)) = line.split_once('=')
            && let Some(map) = found.as_mut()
        {
            map.entry(k.trim().to_ascii_lowercase())
                .or_insert_with(|| v.trim().to_string());
        }
    }
    found
}

/// Keys a profile's `credential_process` gives, fetched again when they
/// are about to expire.
#[derive(Debug)]
pub(super) struct ProcessCredentials {
    profile: String,
    command: String,
    current: tokio::sync::Mutex<(Arc<AwsCredential>, Option<SystemTime>)>,
}

impl ProcessCredentials {
    /// Runs `command` once now (an error, as it said it, if it failed), and
    /// again whenever its keys are about to expire.
    pub(super) fn start(profile: &str, command: &str) -> Result<ProcessCredentials, String> {
        let (credential, expires) = run(profile, command)?;
        Ok(ProcessCredentials {
            profile: profile.to_string(),
            command: command.to_string(),
            current: tokio::sync::Mutex::new((Arc::new(credential), expires)),
        })
    }
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for ProcessCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut current = self.current.lock().await;
        let fresh = current.1.is_none_or(|t| t > SystemTime::now() + REFRESH_BEFORE);
        if !fresh {
            let (profile, command) = (self.profile.clone(), self.command.clone());
            let (credential, expires) = tokio::task::spawn_blocking(move || run(&profile, &command))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|message| object_store::Error::Generic {
                    store: "S3",
                    source: message.into(),
                })?;
            *current = (Arc::new(credential), expires);
        }
        Ok(current.0.clone())
    }
}

/// Runs `command` (with `sh -c`, its standard error and input the
/// terminal's, for a tool that asks for an MFA code) and reads the keys it
/// prints, as the AWS CLI reads them: JSON with `Version` 1, `AccessKeyId`,
/// `SecretAccessKey`, and maybe `SessionToken` and `Expiration`.
fn run(profile: &str, command: &str) -> Result<(AwsCredential, Option<SystemTime>), String> {
    let failed = |why: String| format!("the credential_process of AWS profile `{profile}` {why}");
    tracing::debug!("running the credential_process of AWS profile `{profile}`");
    let child = crate::process::spawn(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdout(std::process::Stdio::piped()),
    )
    .map_err(|e| failed(format!("could not start: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("could not be read: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!("failed ({})", out.status)));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| failed(format!("did not print JSON ({e})")))?;
    if json.get("Version").and_then(serde_json::Value::as_u64) != Some(1) {
        return Err(failed("printed no `\"Version\": 1`".into()));
    }
    let field = |k: &str| json.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    let (Some(key_id), Some(secret_key)) = (field("AccessKeyId"), field("SecretAccessKey")) else {
        return Err(failed("printed no `AccessKeyId` and `SecretAccessKey`".into()));
    };
    let expires = match field("Expiration") {
        None => None,
        Some(at) => {
            let at = chrono::DateTime::parse_from_rfc3339(&at)
                .map_err(|e| failed(format!("printed an `Expiration` that is not a time: `{at}` ({e})")))?;
            let secs = u64::try_from(at.timestamp()).unwrap_or(0);
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        }
    };
    Ok((
        AwsCredential {
            key_id,
            secret_key,
            token: field("SessionToken"),
        },
        expires,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_as_the_cli_reads_them() {
        let config = "[default]\nregion = us-west-2\n\n[profile lab]\nregion=eu-central-1\n\
                      credential_process = vault exec lab -j\n# note\n[sso-session corp]\nregion = x\n";
        assert_eq!(section(config, "default").unwrap()["region"], "us-west-2");
        let lab = section(config, "lab").unwrap();
        assert_eq!(lab["region"], "eu-central-1");
        assert_eq!(lab["credential_process"], "vault exec lab -j");
        assert!(section(config, "corp").is_none());
        assert!(section(config, "other").is_none());
        let creds = "[lab]\naws_access_key_id = AK\naws_secret_access_key = SK\n";
        assert_eq!(section(creds, "lab").unwrap()["aws_access_key_id"], "AK");
    }
}
