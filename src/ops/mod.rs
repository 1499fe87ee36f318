//! The commands, as library calls: each takes the repo, its options and a
//! progress sink, and returns a serializable report.

pub mod add;
pub mod artifacts;
pub mod checkout;
pub mod commit;
pub mod config;
pub mod data_status;
pub mod describe;
pub mod destroy;
pub mod diff;
pub mod doctor;
pub mod exp;
pub mod exp_share;
pub mod fsck;
pub mod gc;
pub mod hooks;
pub mod import;
pub mod import_url;
pub mod list;
pub mod merge;
pub mod migrate;
pub mod mv;
pub mod plots;
pub mod queue;
pub mod remove;
pub mod repro;
pub mod stages;
pub mod status;
pub mod switch;
pub mod transfer;
pub mod versions;

pub use add::{AddOptions, AddReport, add};
pub use checkout::{CheckoutOptions, CheckoutReport, checkout};
pub use commit::{CommitOptions, CommitReport, commit};
pub use data_status::{DataStatus, DataStatusOptions, data_status};
pub use describe::{Description, TagOptions, TagReport, describe, tag};
pub use destroy::{DestroyPlan, destroy};
pub use diff::{DiffOptions, DiffReport, diff};
pub use fsck::{FsckReport, Repair, fsck, repair};
pub use gc::{GcOptions, GcPlan, gc};
pub use hooks::install_hooks;
pub use import::{GetOptions, GetReport, ImportOptions, ShownUrl, UpdateOptions, get, import, show_url, update};
pub use import_url::{
    DownloadUrlOptions, DownloadUrlReport, ImportUrlOptions, ImportUrlReport, Uploaded, UrlEntry, add_external,
    download_url, import_url, ls_url,
};
pub use list::{ListOptions, Listing, Usage, du, list};
pub use mv::{MoveOptions, MoveReport, mv};
pub use remove::{RemoveOptions, RemoveReport, remove};
pub use repro::{ReproOptions, ReproReport, repro};
pub use status::{StatusOptions, StatusReport, status};
pub use transfer::{
    DataFilter, DataKind, FetchReport, PullReport, PushReport, RemoteFsckReport, RemoteStatusReport, RunsReport,
    TransferOptions, fetch, fsck_remote, pull, push, remote_status,
};
pub use versions::{VersionsOptions, VersionsReport, versions};
