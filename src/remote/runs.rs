//! The run cache on a remote: `runs/XX/KEY.toml` under the remote's prefix, as
//! in the cache (see [`crate::pipeline::run_cache`]). Entries are small TOML
//! files, moved whole.

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as StorePath;

use super::Remote;
use crate::error::{RemoteError, Result};
use crate::pipeline::run_cache;

impl Remote {
    fn run_path(&self, key: &str) -> StorePath {
        let mut path = self.prefix.clone();
        for part in run_cache::rel_path(key).split('/') {
            path = path.join(part);
        }
        path
    }

    /// The keys of the run-cache entries on the remote, sorted.
    pub async fn run_keys(&self) -> Result<Vec<String>> {
        let dir = self.prefix.clone().join(run_cache::DIR);
        let listed = match self.list_below(&dir, "the run cache").await {
            Err(_) if self.is_plain() => {
                return Err(RemoteError::Refused {
                    remote: self.name.clone(),
                    message: format!(
                        "`{}` is a plain web server, whose run cache cannot be listed: fetch or pull without \
                         `--run-cache` (`dvt repro --pull` still finds each stage's run there by its key)",
                        self.url
                    ),
                }
                .into());
            }
            listed => listed?,
        };
        let mut keys: Vec<String> = listed
            .iter()
            .filter_map(|m| {
                let key = m.location.filename()?.strip_suffix(".toml")?;
                run_cache::is_key(key).then(|| key.to_string())
            })
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The text of run-cache entry `key`; `None` if the remote has no such entry.
    pub async fn get_run(&self, key: &str) -> Result<Option<String>> {
        let what = || format!("cannot download run-cache entry {key}");
        let bytes = match self.store.get(&self.run_path(key)).await {
            Ok(r) => r.bytes().await.map_err(|e| self.fail(&what(), &e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.fail(&what(), &e)),
        };
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// The texts of run-cache entries `keys`, read concurrently, in no order;
    /// `None` for an entry that is gone.
    pub async fn get_runs(&self, keys: Vec<String>) -> Result<Vec<(String, Option<String>)>> {
        let read: Vec<(String, Result<Option<String>>)> = futures::stream::iter(keys)
            .map(|key| async move {
                let text = self.get_run(&key).await;
                (key, text)
            })
            .buffer_unordered(self.jobs)
            .collect()
            .await;
        read.into_iter().map(|(key, text)| Ok((key, text?))).collect()
    }

    /// Deletes run-cache entries `keys` (missing ones are not an error).
    pub async fn delete_runs(&self, keys: &[String]) -> Result<()> {
        let paths: Vec<StorePath> = keys.iter().map(|k| self.run_path(k)).collect();
        self.delete_paths(paths, "cannot delete run-cache entries", &|| {})
            .await
    }

    /// Uploads run-cache entry `key` with `text`.
    pub async fn put_run(&self, key: &str, text: String) -> Result<()> {
        self.put_whole(&self.run_path(key), bytes::Bytes::from(text)).await
    }
}
