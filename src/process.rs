//! Starting processes. Every child dvt starts goes through [`spawn`], which
//! keeps this process's lock files from being released while a child is
//! being started (see [`spawn`]).
//!
//! Stage commands that can be stopped as a whole: a queued experiment's stages
//! run each in a process group of its own, so that `dvt queue kill` (another
//! process) and an interrupt of the queue runner reach the command and every
//! process it started, and nothing else.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Mutex, PoisonError, RwLock, RwLockWriteGuard};

/// Read while a child is being started, written while a lock file is closed.
static STARTING: RwLock<()> = RwLock::new(());

/// Starts `command`. A child holds a copy of each of this process's open
/// files from `fork` until `exec` closes them; a lock file (`flock`) another
/// thread closes meanwhile stays locked until then, and taking it again fails
/// as if another process held it. So no lock file is closed while a child is
/// being started (`lock_files_may_close`); `spawn` returns once it runs.
#[allow(clippy::disallowed_methods)]
pub fn spawn(command: &mut Command) -> io::Result<Child> {
    let _starting = STARTING.read().unwrap_or_else(PoisonError::into_inner);
    command.spawn()
}

/// Held while closing a lock file: waits for the children being started to
/// run, and starts none meanwhile (see [`spawn`]).
pub(crate) fn lock_files_may_close() -> RwLockWriteGuard<'static, ()> {
    STARTING.write().unwrap_or_else(PoisonError::into_inner)
}

use rustix::process::{Pid, Signal};

/// The process groups of the stage commands this process runs now.
static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A command running in a process group of its own; forgotten by
/// [`interrupt_all`] when waited for or dropped.
pub struct Group {
    child: Child,
}

impl Group {
    /// Starts `command` as the leader of a new process group, reading nothing
    /// (it is not in the terminal's foreground group, where reading stops it).
    pub fn spawn(command: &mut Command) -> io::Result<Group> {
        let child = spawn(command.process_group(0).stdin(std::process::Stdio::null()))?;
        GROUPS.lock().unwrap_or_else(PoisonError::into_inner).push(child.id());
        Ok(Group { child })
    }

    /// The group's id (its leader's pid).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the command (its leader) to exit.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        self.child.wait()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let id = self.child.id();
        GROUPS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|&g| g != id);
    }
}

/// Sends `SIGTERM` (`SIGKILL` if `force`) to every process of group `id`; a
/// group that is gone already is no error.
/// Refuses ids that are not another process's group: 0 and 1 mean "every
/// process" to `kill(2)`, and this process's own group would include dvt.
pub fn signal_group(id: u32, force: bool) -> io::Result<()> {
    let own = rustix::process::getpgrp().as_raw_pid();
    let pid = i32::try_from(id)
        .ok()
        .filter(|&p| p > 1 && p != own && u32::try_from(p).ok() != Some(std::process::id()))
        .and_then(Pid::from_raw)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{id} is not a stage's process group"),
            )
        })?;
    let signal = if force { Signal::KILL } else { Signal::TERM };
    match rustix::process::kill_process_group(pid, signal) {
        Err(rustix::io::Errno::SRCH) => Ok(()),
        r => Ok(r?),
    }
}

/// For a process being interrupted: passes the interrupt on (as `SIGTERM`,
/// which, unlike `SIGINT`, the commands a shell started with `&` do not
/// ignore) to the stage commands it runs in groups of their own, which the
/// terminal's Ctrl-C does not reach.
pub fn interrupt_all() {
    for &id in GROUPS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        let _ = signal_group(id, false);
    }
}

/// How a command that exited by signal `n` is described.
pub fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => return format!("signal {n}"),
    };
    name.to_string()
}

/// Becomes the leader of a new session, without a controlling terminal: for
/// `dvt queue start --detach`'s runner, so that closing the terminal does not
/// stop it.
pub fn detach() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}
