//! The commands, as library calls: each takes the repo, its options and a
//! progress sink, and returns a serializable report.

pub mod add;
pub mod checkout;
pub mod fsck;
pub mod remove;
pub mod status;
pub mod transfer;

pub use add::{AddOptions, AddReport, add};
pub use checkout::{CheckoutOptions, CheckoutReport, checkout};
pub use fsck::{FsckReport, fsck};
pub use remove::{RemoveOptions, RemoveReport, remove};
pub use status::{StatusOptions, StatusReport, status};
pub use transfer::{
    FetchReport, PullReport, PushReport, RemoteStatusReport, TransferOptions, fetch, pull, push, remote_status,
};
