//! The lock of a sweep's output directory (issue 15): a second sweep of the
//! same shard into a directory another one holds stops before any work
//! (exit 2, naming the directory and the holder's PID), `--wait` waits for
//! it, and a lock file left by a dead sweep never blocks.
//!
//! A holder is this test process itself where it can be: it takes the same
//! OS lock on the same file the binary does, with its own (live) PID in it.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{temp_dir, text};

const GRID: &str = "width = 16\ndepth = 3\nbatch = 4\nnetworks = 2\n[grid]\nseed = [0, 1, 2, 3]\n";

fn command(args: &[&str]) -> Command {
    common::varprop_outside_array_job(args)
}

fn sweep(file: &Path, dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    command(&args).output().expect("run varprop")
}

fn result_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            p.extension().is_some_and(|x| x == "json" || x == "csv")
        })
        .count()
}

/// Holds `path` as a sweep does: the OS lock, this process's PID in it.
fn hold(path: &Path) -> File {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    file.lock().unwrap();
    writeln!(file, "{} test-host", std::process::id()).unwrap();
    file
}

fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let root = temp_dir(name);
    let file = root.join("grid.toml");
    std::fs::write(&file, GRID).unwrap();
    let dir = root.join("out");
    std::fs::create_dir(&dir).unwrap();
    (root, file, dir)
}

#[test]
fn a_held_directory_is_refused_before_any_work() {
    let (root, file, dir) = setup("lock-held");
    let lock = dir.join(".varprop-sweep.lock");
    let held = hold(&lock);
    let out = sweep(&file, &dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert_eq!(
        said.trim_end(),
        format!(
            "error: --out-dir: {} is in use by another sweep (PID {} on test-host, lock {}); pass --wait to wait for it",
            dir.display(),
            std::process::id(),
            lock.display()
        )
    );
    assert_eq!(result_count(&dir), 0, "nothing computed");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        format!("{} test-host\n", std::process::id()),
        "the holder's file is left alone"
    );

    // shards have their own locks: shard 0/2 runs beside the whole grid's
    // holder, and is refused while its own lock is held
    let out = sweep(&file, &dir, &["--shard", "0/2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(dir.join("summary-shard-0-of-2.csv").exists());
    assert!(!dir.join(".varprop-sweep-shard-0-of-2.lock").exists());
    let shard_lock = hold(&dir.join(".varprop-sweep-shard-1-of-2.lock"));
    let out = sweep(&file, &dir, &["--shard", "1/2"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(".varprop-sweep-shard-1-of-2.lock"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("summary-shard-1-of-2.csv").exists());
    drop((held, shard_lock));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn wait_waits_for_the_holder_to_finish() {
    let (root, file, dir) = setup("lock-wait");
    let lock = dir.join(".varprop-sweep.lock");
    let held = hold(&lock);
    let mut child: Child = command(&[
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--quiet",
        "--wait",
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert_eq!(
        first.trim_end(),
        format!(
            "sweep: waiting for the other sweep into {} (PID {} on test-host) to finish",
            dir.display(),
            std::process::id()
        )
    );
    // it said so before blocking on the lock: nothing is computed yet
    assert_eq!(result_count(&dir), 0);
    // release as a sweep does: remove the file, then unlock
    std::fs::remove_file(&lock).unwrap();
    drop(held);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("4 computed"), "{rest}");
    assert_eq!(result_count(&dir), 4 + 1, "four results and the summary");
    assert!(!lock.exists(), "the waiter removed its lock when done");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_stale_lock_file_does_not_block() {
    let (root, file, dir) = setup("lock-stale");
    // a PID that was alive and is not any more
    let mut gone = command(&["--version"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let lock = dir.join(".varprop-sweep.lock");
    std::fs::write(&lock, format!("{pid} some-host\n")).unwrap();
    let out = sweep(&file, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("4 computed"), "{}", text(&out));
    assert!(!lock.exists(), "the stale file is taken over, then removed");
    let _ = std::fs::remove_dir_all(&root);
}

/// Two real sweeps: the second is refused while the first runs (no
/// timing: the test waits until the first's PID is in the lock file), and
/// after the first is interrupted (SIGINT, as Ctrl-C sends; no handler, so
/// the file stays behind) the next sweep is not blocked.
#[cfg(unix)]
#[test]
fn an_interrupted_sweep_leaves_no_lock_that_blocks() {
    use std::os::unix::process::ExitStatusExt;
    let (root, file, dir) = setup("lock-two");
    let long = root.join("long.toml");
    let seeds: Vec<String> = (0..2000).map(|s| s.to_string()).collect();
    std::fs::write(
        &long,
        format!(
            "width = 16\ndepth = 3\nbatch = 4\nnetworks = 2\n[grid]\nseed = [{}]\n",
            seeds.join(", ")
        ),
    )
    .unwrap();
    let lock = dir.join(".varprop-sweep.lock");
    let mut first = command(&[
        "sweep",
        long.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = first.id();
    loop {
        let holder = std::fs::read_to_string(&lock).unwrap_or_default();
        if holder.split_whitespace().next() == Some(pid.to_string().as_str()) {
            break;
        }
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first sweep ended ({status}) before it was seen holding {lock:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = sweep(&file, &dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("in use by another sweep (PID {pid}")),
        "{}",
        text(&out)
    );

    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = first.wait().unwrap();
    assert_eq!(status.signal(), Some(2), "{status}");
    assert!(lock.exists(), "Ctrl-C leaves the file behind");

    let out = sweep(&file, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!lock.exists());
    assert!(dir.join("summary.csv").exists());
    let _ = std::fs::remove_dir_all(&root);
}
