//! The lock of a sweep's output directory: two sweeps of the same shard
//! into one directory would compute the same configurations twice and race
//! on its summary, so the second is refused (or, with `--wait`, waits).
//!
//! The lock is an OS file lock (`flock` on Unix, `LockFileEx` on Windows)
//! on `DIR/.varprop-sweep.lock` (a shard's: `.varprop-sweep-shard-I-of-N.lock`,
//! so that the shards of an array job can share one `--out-dir`). The file
//! holds the holder's PID and host, for the message; the lock itself is
//! the kernel's, so it goes with its process however that ends (an error,
//! Ctrl-C, `kill -9`, a node lost on NFS): a file left behind by a dead
//! sweep is stale by construction and the next sweep simply takes it. The
//! holder removes the file when it is done; a waiter that got the lock of a
//! file removed meanwhile opens the new one and tries again.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::Shard;
use super::driver::io_error;
use crate::error::{Error, Result};

/// The lock file of a sweep of `shard` (None: the whole grid) into `out_dir`.
pub fn lock_path(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    match shard {
        Some(s) => out_dir.join(format!(
            ".varprop-sweep-shard-{}-of-{}.lock",
            s.index, s.count
        )),
        None => out_dir.join(".varprop-sweep.lock"),
    }
}

/// How a sweep got its directory.
#[derive(Debug)]
pub enum Acquired {
    /// Held until dropped (which removes the file).
    Held(SweepLock),
    /// The file system has no locks (e.g. Lustre mounted without `flock`):
    /// the sweep runs unlocked; the text says why, for a warning.
    Unsupported(String),
}

/// A held lock: dropping it removes the file, then releases the lock.
#[derive(Debug)]
pub struct SweepLock {
    path: PathBuf,
    // closed (and so unlocked) after `drop` removed the file
    _file: File,
}

impl SweepLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SweepLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// "PID 1234 on node17" from a lock file's text (PID, then the host).
fn holder_text(text: &str) -> String {
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(pid), Some(host)) => format!("PID {pid} on {host}"),
        (Some(pid), None) => format!("PID {pid}"),
        // between the holder's lock and its write
        _ => "PID not yet written".into(),
    }
}

/// This machine's name, where the system tells it without a library.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
}

/// Whether the file open as `file` is still the one at `path` (not removed
/// or replaced by its holder's release since it was opened).
fn still_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Takes the lock of a sweep of `shard` into `out_dir` (created if
/// missing). Held by another process: an error naming the directory and
/// the holder's PID (exit code 2), or with `wait`, `waiting` is called
/// with the holder's description and the lock is awaited.
pub fn acquire(
    out_dir: &Path,
    shard: Option<Shard>,
    wait: bool,
    waiting: impl FnOnce(&str),
) -> Result<Acquired> {
    std::fs::create_dir_all(out_dir).map_err(io_error(out_dir))?;
    let path = lock_path(out_dir, shard);
    let mut waiting = Some(waiting);
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = holder_text(&text);
                if !wait {
                    return Err(Error::invalid(
                        "--out-dir",
                        format!(
                            "{} is in use by another sweep ({holder}, lock {}); pass --wait to wait for it",
                            out_dir.display(),
                            path.display()
                        ),
                    ));
                }
                if let Some(f) = waiting.take() {
                    f(&holder);
                }
                file.lock().map_err(io_error(&path))?;
            }
            Err(TryLockError::Error(e)) => {
                return Ok(Acquired::Unsupported(format!(
                    "cannot lock {} ({e}): a second sweep into {} would not be refused",
                    path.display(),
                    out_dir.display()
                )));
            }
        }
        if !still_at(&file, &path) {
            // the holder removed it on release: lock the file there now
            continue;
        }
        let mine = match host_name() {
            Some(host) => format!("{} {host}\n", std::process::id()),
            None => format!("{}\n", std::process::id()),
        };
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(mine.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(io_error(&path))?;
        return Ok(Acquired::Held(SweepLock { path, _file: file }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_described_by_its_pid_and_host() {
        assert_eq!(holder_text("1234 node17\n"), "PID 1234 on node17");
        assert_eq!(holder_text("1234\n"), "PID 1234");
        assert_eq!(holder_text(""), "PID not yet written");
        let dir = Path::new("out");
        assert_eq!(lock_path(dir, None), dir.join(".varprop-sweep.lock"));
        assert_eq!(
            lock_path(dir, Some(Shard { index: 1, count: 3 })),
            dir.join(".varprop-sweep-shard-1-of-3.lock")
        );
    }
}
