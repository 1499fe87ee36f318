//! Pushing refs to a git remote across the network (https, http, ssh, git)
//! through gix's transport. gix fetches but has no push, so this is the client
//! half of git's receive-pack protocol (v0, the only one receive-pack speaks):
//! the server lists its refs, dvt says which refs to move from what to what,
//! then streams a pack of the objects the server lacks. git's receive-pack keeps
//! that pack in quarantine until it has all of it and every object it needs,
//! and moves no ref before that, so a push cut short changes nothing there.
//!
//! The pack holds whole objects (no deltas): what dvt pushes is experiments'
//! commits, whose trees differ from a commit the server has by a few small files.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use gix::bstr::{BString, ByteSlice};
use gix::protocol::transport::Service;
use gix::protocol::transport::client::blocking_io::Transport as _;
use gix::protocol::transport::client::{MessageKind, TransportWithoutIO as _, WriteMode};

use super::share::RefUpdate;
use super::{Git, GitId};
use crate::error::{GitError, Result};

/// A ref to set on a git remote: its full name and the object it is to name
/// (a commit, or an annotated tag of one), or `None` to delete it.
#[derive(Debug, Clone)]
pub struct RefPush {
    /// The ref's full name (`refs/tags/v1`).
    pub name: String,
    /// What it is to name; `None` deletes it.
    pub id: Option<GitId>,
}

impl Git {
    /// Sets each of `refs` on the git remote at `url`, sending the objects the
    /// remote lacks, or deletes it. A ref there that names another commit is
    /// replaced only with `force` ([`RefUpdate::Kept`] otherwise, and nothing
    /// is sent for it); one to delete that is not there is
    /// [`RefUpdate::Unchanged`].
    pub(super) fn push_refs_over_network(
        &self,
        url: gix::Url,
        refs: &[RefPush],
        force: bool,
        what: &str,
    ) -> Result<Vec<RefUpdate>> {
        let fail = |message: String| -> crate::Error {
            GitError::Failed {
                what: what.to_string(),
                message,
            }
            .into()
        };
        let gix_fail = |e: gix::Error| fail(crate::error_chain(&e));
        let remote = self.repo.remote_at(url.clone()).map_err(gix_fail)?;
        let mut con = remote.connect(gix::remote::Direction::Push).map_err(gix_fail)?;
        if let Some(options) = self
            .repo
            .transport_options(url.to_bstring().as_bstr(), None)
            .map_err(gix_fail)?
        {
            con.transport_mut()
                .configure(&*options)
                .map_err(|e| fail(crate::error_chain(&e)))?;
        }
        let authenticate = con.configured_credentials(url).map_err(gix_fail)?;
        let handshake = gix::protocol::handshake(
            con.transport_mut(),
            Service::ReceivePack,
            authenticate,
            Vec::new(),
            &mut gix::progress::Discard,
        )
        .map_err(|e| fail(crate::error_chain(&e)))?;
        if !handshake.capabilities.contains("report-status") {
            return Err(fail(
                "the server does not report whether it took a push (no `report-status`)".into(),
            ));
        }
        if let Some(format) = handshake.capabilities.capability("object-format")
            && format
                .value()
                .is_some_and(|v| v != self.repo.object_hash().to_string().as_bytes())
        {
            return Err(fail(format!(
                "the repository there uses {} object ids, this one {}",
                format.value().unwrap_or_default(),
                self.repo.object_hash()
            )));
        }
        // What each ref there names (peeled, for the commits dvt can start from).
        let mut there: HashMap<BString, GitId> = HashMap::new();
        let mut haves: Vec<GitId> = Vec::new();
        for r in handshake.refs.iter().flatten() {
            let (name, target, peeled) = r.unpack();
            if let Some(target) = target {
                there.insert(name.to_owned(), target.to_owned());
            }
            if let Some(id) = peeled.or(target)
                && self.repo.find_commit(id).is_ok()
            {
                haves.push(id.to_owned());
            }
        }

        let mut updates = Vec::new();
        let mut commands = Vec::new();
        let mut tips = Vec::new();
        let mut replaced = Vec::new();
        let null = self.repo.object_hash().null();
        for r in refs {
            let old = there.get(r.name.as_bytes().as_bstr()).copied();
            let update = match (old, r.id) {
                (None, None) => RefUpdate::Unchanged,
                (Some(_), None) => RefUpdate::Deleted,
                (None, Some(_)) => RefUpdate::New,
                (Some(c), Some(new)) if c == new => RefUpdate::Unchanged,
                (Some(_), Some(_)) if force => RefUpdate::Replaced,
                (Some(_), Some(_)) => RefUpdate::Kept,
            };
            if matches!(update, RefUpdate::New | RefUpdate::Replaced | RefUpdate::Deleted) {
                replaced.extend(old.filter(|c| self.repo.find_commit(*c).is_ok()));
                commands.push(format!("{} {} {}", old.unwrap_or(null), r.id.unwrap_or(null), r.name));
                tips.extend(r.id);
            }
            updates.push(update);
        }
        if commands.is_empty() {
            // Dropping the connection sends the flush that says "nothing".
            return Ok(updates);
        }

        if updates.contains(&RefUpdate::Deleted) && !handshake.capabilities.contains("delete-refs") {
            return Err(fail(
                "the server does not take deletions of refs (no `delete-refs`)".into(),
            ));
        }
        // A tip a ref there names already (a rename) needs nothing sent, and
        // may be a commit this repository does not have.
        let new_tips: Vec<GitId> = tips
            .iter()
            .filter(|t| !there.values().any(|v| v == *t))
            .copied()
            .collect();
        let objects = self.objects_to_send(&new_tips, &haves, &replaced).map_err(fail)?;
        let mut request = con
            .transport_mut()
            .request(WriteMode::Binary, MessageKind::Flush, false)
            .map_err(|e| fail(crate::error_chain(&e)))?;
        let io_fail = |e: std::io::Error| fail(format!("sending the push: {e}"));
        // Asked for when offered: the report and the hooks' messages come
        // multiplexed, and nothing else (no progress).
        let caps: Vec<&str> = ["report-status", "side-band-64k", "quiet", "delete-refs"]
            .into_iter()
            .filter(|c| handshake.capabilities.contains(c))
            .collect();
        let side_band = caps.contains(&"side-band-64k");
        for (i, command) in commands.iter().enumerate() {
            let line = match i {
                0 => format!("{command}\0{} agent=dvt/{}", caps.join(" "), env!("CARGO_PKG_VERSION")),
                _ => command.clone(),
            };
            request.write_all(line.as_bytes()).map_err(io_fail)?;
        }
        request.write_message(MessageKind::Flush).map_err(io_fail)?;
        let (mut body, mut response) = request.into_parts();
        // No pack when every command deletes (the protocol says so).
        if !tips.is_empty() {
            self.write_pack(&objects, &mut body).map_err(fail)?;
        }
        body.flush().map_err(io_fail)?;
        drop(body);

        let said = std::rc::Rc::new(std::cell::RefCell::new(Vec::<u8>::new()));
        let report = match side_band {
            true => {
                let to = said.clone();
                response.set_progress_handler(Some(Box::new(move |_, text| {
                    to.borrow_mut().extend_from_slice(text);
                    std::ops::ControlFlow::Continue(())
                })));
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut response, &mut data)
                    .map_err(|e| fail(format!("reading the server's report: {e}")))?;
                data
            }
            false => {
                let mut data = Vec::new();
                while let Some(line) = response.readline() {
                    let line = line
                        .map_err(|e| fail(format!("reading the server's report: {e}")))?
                        .map_err(|e| fail(format!("reading the server's report: {e}")))?;
                    let Some(text) = line.as_slice() else { break };
                    data.extend_from_slice(format!("{:04x}", text.len() + 4).as_bytes());
                    data.extend_from_slice(text);
                }
                data
            }
        };
        // What the server's hooks said, as git shows it (`remote: ...`).
        let said: String = said
            .borrow()
            .to_str_lossy()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| format!("\n  remote: {}", l.trim_end()))
            .collect();
        // `unpack ok`, then `ok REF` or `ng REF REASON` per command.
        let mut refused = Vec::new();
        let mut unpacked = None;
        for text in pkt_lines(&report) {
            let text = text.trim_end().to_str_lossy().into_owned();
            if let Some(rest) = text.strip_prefix("unpack ") {
                unpacked = Some(rest.to_string());
            } else if let Some(rest) = text.strip_prefix("ng ") {
                let (name, why) = rest.split_once(' ').unwrap_or((rest, "no reason given"));
                refused.push(format!("`{name}` ({why})"));
            }
        }
        match unpacked.as_deref() {
            Some("ok") => {}
            Some(why) => {
                return Err(fail(format!("the server could not take the objects: {why}{said}")));
            }
            None => return Err(fail(format!("the server ended the push without a report{said}"))),
        }
        if !refused.is_empty() {
            return Err(fail(format!("the server refused {}{said}", refused.join(", "))));
        }
        Ok(updates)
    }

    /// The objects that the commits `tips` reach and the remote does not
    /// have, taking the remote to have all that `haves` reach: the commits
    /// between, and of their trees what lacks from the trees of the commits the
    /// remote has just below them and of `replaced` (commits there that refs
    /// are moved away from: an experiment run again shares most of its files).
    fn objects_to_send(
        &self,
        tips: &[GitId],
        haves: &[GitId],
        replaced: &[GitId],
    ) -> std::result::Result<Vec<GitId>, String> {
        // Annotated tags go as they are, their commits are walked.
        let mut tags = Vec::new();
        let mut commits_at = Vec::new();
        for tip in tips {
            let mut id = *tip;
            loop {
                let object = self.read_object(id, "object")?;
                match object.kind {
                    gix::objs::Kind::Tag => {
                        tags.push(id);
                        id = gix::objs::TagRef::from_bytes(&object.data, self.repo.object_hash())
                            .map_err(|e| format!("tag {id}: {e}"))?
                            .target();
                    }
                    gix::objs::Kind::Commit => break commits_at.push(id),
                    kind => return Err(format!("{id} is a {kind}: dvt pushes refs to commits and tags")),
                }
            }
        }
        let walk = self
            .repo
            .rev_walk(commits_at)
            .with_hidden(haves.iter().copied())
            .all()
            .map_err(|e| format!("walking the commits to push: {}", crate::error_chain(&e)))?;
        let mut commits = Vec::new();
        for info in walk {
            let info = info.map_err(|e| format!("walking the commits to push: {}", crate::error_chain(&e)))?;
            commits.push(info.id);
        }
        let new: HashSet<GitId> = commits.iter().copied().collect();
        let mut had = HashSet::new();
        let mut trees = Vec::new();
        let mut edges: Vec<GitId> = replaced.to_vec();
        for id in &commits {
            let (tree, parents) = self.read_commit(*id)?;
            trees.push(tree);
            edges.extend(
                parents
                    .into_iter()
                    .filter(|p| !new.contains(p) && self.repo.has_object(*p)),
            );
        }
        for edge in edges {
            let (tree, _) = self.read_commit(edge)?;
            self.tree_objects(tree, &HashSet::new(), &mut had, None)?;
        }
        let mut out = tags;
        out.extend(commits);
        let mut seen = HashSet::new();
        for tree in trees {
            self.tree_objects(tree, &had, &mut seen, Some(&mut out))?;
        }
        Ok(out)
    }

    /// The object `id` (a `kind`, for the error).
    fn read_object(&self, id: GitId, kind: &str) -> std::result::Result<gix::Object<'_>, String> {
        self.repo
            .find_object(id)
            .map_err(|e| format!("reading {kind} {id}: {}", crate::error_chain(&e)))
    }

    /// The tree and the parents of the commit `id`.
    fn read_commit(&self, id: GitId) -> std::result::Result<(GitId, Vec<GitId>), String> {
        let object = self.read_object(id, "commit")?;
        let commit = gix::objs::CommitRef::from_bytes(&object.data, self.repo.object_hash())
            .map_err(|e| format!("commit {id}: {e}"))?;
        Ok((commit.tree(), commit.parents().collect()))
    }

    /// Adds to `seen` (and appends to `out`) the tree `tree` and all it
    /// reaches, except what is in `skip` (and all it reaches) or `seen` already.
    fn tree_objects(
        &self,
        tree: GitId,
        skip: &HashSet<GitId>,
        seen: &mut HashSet<GitId>,
        mut out: Option<&mut Vec<GitId>>,
    ) -> std::result::Result<(), String> {
        let mut todo = vec![(tree, true)];
        while let Some((id, is_tree)) = todo.pop() {
            if skip.contains(&id) || !seen.insert(id) {
                continue;
            }
            if let Some(out) = out.as_mut() {
                out.push(id);
            }
            if !is_tree {
                continue;
            }
            let object = self.read_object(id, "tree")?;
            let parsed = gix::objs::TreeRef::from_bytes(&object.data, self.repo.object_hash())
                .map_err(|e| format!("tree {id}: {e}"))?;
            // Submodules' commits live in other repositories.
            todo.extend(
                parsed
                    .entries
                    .iter()
                    .filter(|e| !e.mode.is_commit())
                    .map(|e| (e.oid.to_owned(), e.mode.is_tree())),
            );
        }
        Ok(())
    }

    /// Writes a pack (version 2) of `objects` to `to`, with gix's pack
    /// generator: an object stored in a local pack as a delta against another
    /// object of `objects` goes as that delta, as `git push` sends it; any
    /// other goes whole. No delta refers to an object outside the pack.
    fn write_pack(&self, objects: &[GitId], to: &mut dyn Write) -> std::result::Result<(), String> {
        use gix_pack::data::output;
        let mut db = self
            .repo
            .objects
            .clone()
            .into_inner()
            .into_arc()
            .map_err(|e| format!("opening the object database: {e}"))?;
        // Entries are found by pack and offset: keep every pack mapped.
        db.prevent_pack_unload();
        let interrupt = std::sync::atomic::AtomicBool::new(false);
        let (counts, _) = output::count::objects_unthreaded(
            &db,
            &mut objects.iter().map(|id| Ok(*id)),
            &gix::progress::Discard,
            &interrupt,
            output::count::objects::ObjectExpansion::AsIs,
        )
        .map_err(|e| format!("finding the objects to send: {}", crate::error_chain(&e)))?;
        let count = u32::try_from(counts.len()).map_err(|_| "too many objects for one pack".to_string())?;
        let entries = output::entry::iter_from_counts(
            counts,
            db,
            Box::new(gix::progress::Discard),
            output::entry::iter_from_counts::Options {
                thread_limit: Some(1),
                mode: output::entry::iter_from_counts::Mode::PackCopyAndBaseObjects,
                allow_thin_pack: false,
                version: gix_pack::data::Version::V2,
                compression: gix::zlib::Compression::BEST_SPEED,
                ..Default::default()
            },
        )
        .map_err(|e| format!("packing the objects: {}", crate::error_chain(&e)))?;
        // Chunks in the order of the counts (a delta's base comes before it),
        // each written as soon as it is its turn.
        let mut writer = output::bytes::FromEntriesIter::new(
            gix::parallel::InOrderIter::from(entries),
            to,
            count,
            gix_pack::data::Version::V2,
            self.repo.object_hash(),
        );
        for written in writer.by_ref() {
            written.map_err(|e| format!("sending the objects: {}", crate::error_chain(&e)))?;
        }
        Ok(())
    }
}

/// The payloads of the packet lines in `data`, up to the first flush.
fn pkt_lines(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let Some(len) = std::str::from_utf8(&data[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            break;
        };
        if len < 4 || len > data.len() {
            break;
        }
        out.push(&data[4..len]);
        data = &data[len..];
    }
    out
}
