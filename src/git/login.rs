//! Logins for git servers read over http(s): never recorded, never printed,
//! and, when a URL carries none, taken from `~/.netrc` as git (through curl)
//! takes them.

use reqwest::Url;

/// `url` without the login an http(s) URL may carry (`https://USER:TOKEN@HOST/…`
/// gives `https://HOST/…`), and whether it had one. Other URLs are returned as
/// they are: an ssh URL's user (`ssh://git@host/…`) is no secret, and is needed.
pub fn without_login(url: &str) -> (String, bool) {
    match http_url(url) {
        Some(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            (u.to_string(), true)
        }
        _ => (url.to_string(), false),
    }
}

/// `url` as messages show it: a password it carries replaced by `***`.
pub fn shown(url: &str) -> String {
    match http_url(url) {
        Some(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `url` as the transport gets it: an http(s) URL without a login is given the
/// one `~/.netrc` (or the file `$NETRC` names) has for its host, if any.
pub fn with_netrc_login(url: &str) -> String {
    let Some(mut u) = http_url(url).filter(|u| u.username().is_empty() && u.password().is_none()) else {
        return url.to_string();
    };
    let Some(host) = u.host_str().map(str::to_string) else {
        return url.to_string();
    };
    let Some(text) = netrc_path().and_then(|p| fs_err::read_to_string(p).ok()) else {
        return url.to_string();
    };
    match netrc_login(&text, &host) {
        Some((login, password)) if u.set_username(&login).is_ok() && u.set_password(Some(&password)).is_ok() => {
            tracing::debug!("{url}: the login of `{host}` in ~/.netrc");
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// The credential helpers that git's system and global configuration name for
/// `url` (`credential.helper`, `credential.<url>.helper`, as `git credential`
/// reads them), for a gix connection made from a repository that reads no git
/// configuration (dvt's clones of repositories read by URL). `None` when there
/// are none, or the URL is not one gix parses: the connection then does what it
/// did (asks at the terminal, if there is one).
pub fn git_credential_helpers(url: &str) -> Option<gix::remote::AuthenticateFn<'static>> {
    use gix::config::{Source, file::Metadata};
    let parsed = gix::Url::from_bytes(url.into()).ok()?;
    // System, XDG and ~/.gitconfig, honouring GIT_CONFIG_NOSYSTEM,
    // GIT_CONFIG_SYSTEM and GIT_CONFIG_GLOBAL; not the git installation's own
    // file, which only the `git` binary can locate.
    let metas = [Source::System, Source::Git, Source::User]
        .into_iter()
        .map(|source| Metadata {
            path: source
                .storage_location(&mut gix::path::env::var)
                .filter(|p| p.is_file()),
            source,
            level: 0,
            trust: gix::sec::Trust::Full,
        });
    let home = gix::path::env::home_dir();
    let options = gix::config::file::init::Options {
        includes: gix::config::file::includes::Options::follow_without_conditional(home.as_deref()),
        ..Default::default()
    };
    let config = gix::config::File::from_paths_metadata(metas, options).ok()??;
    let (mut cascade, _, prompt) = gix::config::credential_helpers(
        parsed,
        &config,
        true,
        |_| true,
        gix::open::permissions::Environment::all(),
        false,
    )
    .ok()?;
    if cascade.programs.is_empty() {
        return None;
    }
    tracing::debug!("{}: git's credential helpers", shown(url));
    Some(Box::new(move |action| cascade.invoke(action, prompt.clone())))
}

fn http_url(url: &str) -> Option<Url> {
    Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// `$NETRC`, else `~/.netrc`.
fn netrc_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("NETRC").filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(std::path::Path::new(&home).join(".netrc"))
}

/// The login and password that netrc text `text` gives `host`: its `machine
/// HOST` entry, else its `default` one. Tokens are separated by any white
/// space; `macdef` bodies (up to a blank line) are skipped.
fn netrc_login(text: &str, host: &str) -> Option<(String, String)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Entry {
        Host,
        Default,
        Other,
    }
    let mut entries: Vec<(Entry, Option<String>, Option<String>)> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            let last = entries.last_mut();
            match (word, last) {
                ("machine", _) => {
                    let which = match words.next() == Some(host) {
                        true => Entry::Host,
                        false => Entry::Other,
                    };
                    entries.push((which, None, None));
                }
                ("default", _) => entries.push((Entry::Default, None, None)),
                ("login", Some(e)) => e.1 = words.next().map(str::to_string),
                ("password", Some(e)) => e.2 = words.next().map(str::to_string),
                ("account", _) => {
                    words.next();
                }
                ("macdef", _) => {
                    entries.push((Entry::Other, None, None));
                    for l in lines.by_ref() {
                        if l.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    let first = |which: Entry| {
        entries
            .iter()
            .find(|e| e.0 == which)
            .map(|e| (e.1.clone().unwrap_or_default(), e.2.clone().unwrap_or_default()))
    };
    first(Entry::Host)
        .or_else(|| first(Entry::Default))
        .filter(|(l, p)| !l.is_empty() || !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_gives_the_host_entry_else_the_default() {
        let text = "machine other.example login o password op\n\
                    machine git.example.com\n  login me\n  password tok\n\
                    macdef init\ncd /\n\n\
                    default login anon password none\n";
        assert_eq!(netrc_login(text, "git.example.com"), Some(("me".into(), "tok".into())));
        assert_eq!(netrc_login(text, "elsewhere"), Some(("anon".into(), "none".into())));
        assert_eq!(netrc_login("machine a login x password y", "b"), None);
        assert_eq!(
            netrc_login("machine a login x password y machine b login z password w", "b"),
            Some(("z".into(), "w".into()))
        );
    }

    #[test]
    fn logins_are_dropped_and_hidden_from_http_urls_only() {
        assert_eq!(
            without_login("https://me:tok@h.example/r.git"),
            ("https://h.example/r.git".into(), true)
        );
        assert_eq!(
            without_login("https://h.example/r.git"),
            ("https://h.example/r.git".into(), false)
        );
        assert_eq!(
            without_login("ssh://git@h.example/r.git"),
            ("ssh://git@h.example/r.git".into(), false)
        );
        assert_eq!(
            shown("https://me:tok@h.example/r.git"),
            "https://me:***@h.example/r.git"
        );
        assert_eq!(shown("git@h.example:r.git"), "git@h.example:r.git");
    }
}
