//! "Did you mean …?" for a name that is not one dvt knows (a setting, a
//! remote option, a remote, a stage), as git and clap suggest the closest
//! command.

/// Of `known`, the one `word` most likely misspells, if close enough to be a
/// slip of the fingers: a few edits away (a letter wrong, missing, extra, or
/// two swapped: `gne` for `gen`), or similar by Jaro's measure (which misses
/// a swap in a short word); the fewest edits first, then the most similar.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = match word.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        6..=10 => 2,
        _ => 3,
    };
    known
        .into_iter()
        .filter_map(|k| {
            let edits = strsim::osa_distance(word, k);
            let jaro = strsim::jaro(word, k);
            (edits <= limit || jaro >= 0.8).then_some((edits, jaro, k))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, k)| k)
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
        // A swap in a short word, which Jaro alone misses.
        assert_eq!(closest("gne", ["gen", "met"]), Some("gen"));
        assert_eq!(closest("tarin", ["train", "evaluate"]), Some("train"));
        // Fewest edits win; a one-letter name suggests nothing for another.
        assert_eq!(closest("evalute", ["eval", "evaluate"]), Some("evaluate"));
        assert_eq!(closest("a", ["b"]), None);
    }
}
