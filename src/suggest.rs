//! "Did you mean …?" for a name that is not one dvt knows (a setting, a
//! remote option, a remote, a stage), as git and clap suggest the closest
//! command.

/// Of `known`, the one `word` most likely misspells: the closest by Jaro
/// similarity, if close enough to be a slip of the fingers.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro(word, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `did you mean `X`? ` for the closest of `known` to `word`, or nothing.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known).map_or_else(String::new, |k| format!("did you mean `{k}`? "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slips_find_their_word_and_strangers_find_none() {
        let settings = ["core.remote", "core.autostage", "cache.dir", "hooks.fetch"];
        assert_eq!(closest("core.remot", settings), Some("core.remote"));
        assert_eq!(closest("hook.fetch", settings), Some("hooks.fetch"));
        assert_eq!(
            closest("endpoint_url", ["endpointurl", "region", "profile"]),
            Some("endpointurl")
        );
        assert_eq!(closest("trian", ["train", "evaluate"]), Some("train"));
        assert_eq!(closest("nosuch", ["train", "evaluate"]), None);
        assert_eq!(closest("x", Vec::<&str>::new()), None);
    }
}
