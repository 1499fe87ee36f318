//! What WebDAV remotes need beyond object_store: authentication, and moving staged
//! uploads into place.

use super::*;

/// The headers that authenticate to a WebDAV (or plain web) server, from
/// DVC's option names: `token` (a bearer token), `custom_auth_header` (a
/// header that carries `password`), or `user` and `password` (HTTP basic
/// authentication); `auth` (`basic` or `custom`) picks one where several are
/// set, and `ask_password` asks for the password on the terminal.
pub(super) fn http_auth(spec: &RemoteSpec) -> Result<reqwest::header::HeaderMap> {
    use base64::Engine as _;
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
    let bad = |message: String| RemoteError::Config {
        remote: spec.name.clone(),
        message,
    };
    let user = spec.get("user");
    let auth = spec.get("auth").map(str::to_ascii_lowercase);
    match auth.as_deref() {
        None | Some("basic" | "custom") => {}
        Some("digest") => {
            return Err(bad(
                "HTTP digest authentication is not supported: use `auth = basic` over https, a `token`, \
                 or a `custom_auth_header`"
                    .into(),
            )
            .into());
        }
        Some(other) => return Err(bad(format!("`auth` is `{other}`: dvt takes `basic` or `custom`")).into()),
    }
    let password = match (spec.get("password"), spec.flag("ask_password")?.unwrap_or(false)) {
        (Some(p), _) => Some(p.to_string()),
        (None, false) => None,
        (None, true) => {
            let question = match user {
                Some(u) => format!("Password for {u} at {}: ", spec.url),
                None => format!("Password for {}: ", spec.url),
            };
            let typed = super::ssh::ask_on_terminal(&question, true, false)
                .map_err(|e| bad(format!("`ask_password` is set, but {e}: set `password` instead")))?;
            Some(typed)
        }
    };
    let basic = |user: &str| {
        let pair = format!("{user}:{}", password.as_deref().unwrap_or_default());
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        (AUTHORIZATION, format!("Basic {encoded}"))
    };
    let custom = |name: &str| -> Result<(HeaderName, String)> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("`custom_auth_header` is not a valid header name: `{name}`")))?;
        let value = password
            .clone()
            .ok_or_else(|| bad("`custom_auth_header` needs `password`, its value".into()))?;
        Ok((name, value))
    };
    let header = match auth.as_deref() {
        Some("basic") => {
            Some(basic(user.ok_or_else(|| {
                bad("`auth = basic` needs `user` (and `password`)".into())
            })?))
        }
        Some("custom") => Some(custom(spec.get("custom_auth_header").ok_or_else(|| {
            bad("`auth = custom` needs `custom_auth_header` (a header name) and `password` (its value)".into())
        })?)?),
        _ => match (spec.get("token"), spec.get("custom_auth_header")) {
            (Some(token), _) => Some((AUTHORIZATION, format!("Bearer {token}"))),
            (None, Some(name)) => Some(custom(name)?),
            (None, None) => match (user, &password) {
                (Some(user), _) => Some(basic(user)),
                (None, Some(_)) => return Err(bad("`password` needs `user` (or `custom_auth_header`)".into()).into()),
                (None, None) => None,
            },
        },
    };
    let mut headers = HeaderMap::new();
    if let Some((name, value)) = header {
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| bad(format!("`{name}` holds characters an HTTP header cannot carry")))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// What a WebDAV remote needs beyond object_store: its `rename` is COPY then DELETE,
/// and a server stopped during a COPY leaves a partial file under the final name.
/// A MOVE is a rename on the server, so an object appears whole or not at all.
pub(super) struct WebDav {
    pub(super) client: reqwest::Client,
    pub(super) origin: reqwest::Url,
}

impl WebDav {
    pub(super) fn url(&self, path: &StorePath) -> reqwest::Url {
        let mut url = self.origin.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(path.parts().map(|p| p.as_ref().to_string()));
        }
        url
    }

    pub(super) async fn send(
        &self,
        method: &[u8],
        path: &StorePath,
        dest: Option<&StorePath>,
    ) -> std::result::Result<u16, String> {
        let method = reqwest::Method::from_bytes(method).map_err(|e| e.to_string())?;
        let mut req = self.client.request(method, self.url(path));
        if let Some(dest) = dest {
            req = req
                .header("Destination", self.url(dest).as_str())
                .header("Overwrite", "T");
        }
        let response = req.send().await.map_err(|e| crate::error_chain(&e))?;
        Ok(response.status().as_u16())
    }

    /// Moves `from` to `to`, creating `to`'s missing parent collections.
    pub(super) async fn rename(
        &self,
        from: &StorePath,
        to: &StorePath,
    ) -> std::result::Result<(), object_store::Error> {
        let fail = |message: String| object_store::Error::Generic {
            store: "WebDAV",
            source: message.into(),
        };
        for attempt in 0..2 {
            let status = self.send(b"MOVE", from, Some(to)).await.map_err(fail)?;
            match status {
                200..=299 => return Ok(()),
                // The destination's parent collection may be missing: servers answer
                // 409 (RFC 4918), 404, or 403 (Go's x/net/webdav, under rclone).
                403 | 404 | 409 if attempt == 0 => {
                    let parts: Vec<_> = to.parts().collect();
                    let mut dir = StorePath::default();
                    for part in &parts[..parts.len().saturating_sub(1)] {
                        dir = dir.clone().join(part.as_ref());
                        // 201: created; 405: already there. Anything else shows in the retried MOVE.
                        self.send(b"MKCOL", &dir, None).await.map_err(fail)?;
                    }
                }
                _ => return Err(fail(format!("MOVE of `{from}` to `{to}` answered HTTP {status}"))),
            }
        }
        Err(fail(format!(
            "MOVE of `{from}` to `{to}`: its parent collection cannot be created"
        )))
    }
}
