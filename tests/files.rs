//! Nothing half-written (issue 15): an atomic write that fails at any step
//! (a full disk mid-write, a panic, the rename, an unwritable directory)
//! leaves the destination as it was and no temporary file behind.

mod common;

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use common::{temp_dir, text, varprop};
use varprop::Error;
use varprop::io::output::{write_atomic, write_atomic_with};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn no_temporary_files(dir: &Path) {
    let left: Vec<String> = names(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left in {dir:?}: {left:?}");
}

/// A writer that takes `room` bytes, then fails as a full disk does.
fn fill_then_fail(room: usize) -> impl FnOnce(&mut std::fs::File) -> std::io::Result<()> {
    move |file| {
        file.write_all(&vec![b'x'; room])?;
        file.flush()?;
        Err(std::io::Error::from(ErrorKind::StorageFull))
    }
}

#[test]
fn a_full_disk_mid_write_leaves_nothing_half_written() {
    let dir = temp_dir("files-full");
    let path = dir.join("out.csv");
    for room in [0, 1, 4096, 100_000] {
        let e = write_atomic_with(&path, fill_then_fail(room)).unwrap_err();
        match &e {
            Error::Io {
                path: named,
                source,
            } => {
                assert_eq!(named, &path.display().to_string());
                assert_eq!(source.kind(), ErrorKind::StorageFull);
            }
            other => panic!("{other}"),
        }
        assert!(!path.exists(), "after {room} bytes: {:?}", names(&dir));
        no_temporary_files(&dir);
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
    }

    // an existing file keeps its old content
    write_atomic(&path, b"old\n").unwrap();
    write_atomic_with(&path, fill_then_fail(10)).unwrap_err();
    assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
    assert_eq!(names(&dir), ["out.csv"]);

    // a panic while writing, too
    let caught = std::panic::catch_unwind(|| {
        let _ = write_atomic_with(&path, |file| {
            file.write_all(b"half")?;
            panic!("the writer panics");
        });
    });
    assert!(caught.is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"old\n");
    assert_eq!(names(&dir), ["out.csv"]);

    // and a write that succeeds replaces it
    write_atomic(&path, b"new\n").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
    assert_eq!(names(&dir), ["out.csv"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_rename_removes_the_temporary_file() {
    let dir = temp_dir("files-rename");
    // a non-empty directory where the file should go: written, then the
    // rename fails
    let path = dir.join("taken");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), b"keep").unwrap();
    let e = write_atomic(&path, b"content").unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(names(&dir), ["taken"]);
    assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"keep");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether a directory without write permission stops this process (not
/// for root, which permission bits do not stop).
#[cfg(unix)]
fn permissions_bind(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let bound = std::fs::write(&probe, b"").is_err();
    let _ = std::fs::remove_file(&probe);
    bound
}

#[test]
fn an_unwritable_destination_is_an_error_and_leaves_nothing() {
    let dir = temp_dir("files-unwritable");
    // a parent that is a regular file: fails for root too
    let file = dir.join("plain");
    std::fs::write(&file, b"plain").unwrap();
    let path = file.join("out.csv");
    let e = write_atomic(&path, b"content").unwrap_err();
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "{e}"
    );
    assert_eq!(names(&dir), ["plain"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"plain");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        if permissions_bind(&locked) {
            let e = write_atomic(&locked.join("out.csv"), b"content").unwrap_err();
            assert!(
                matches!(&e, Error::Io { source, .. } if source.kind() == ErrorKind::PermissionDenied),
                "{e}"
            );
            assert!(names(&locked).is_empty(), "{:?}", names(&locked));
        } else {
            eprintln!(
                "running as root: the read-only directory does not stop writes; the file parent above stands in"
            );
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The command line: `--out` and `--plot` into places that cannot take
/// them are refused before the run (exit code 2, bad input) with the flag
/// and the path named, and nothing left behind.
#[test]
fn out_and_plot_that_cannot_be_written_leave_nothing() {
    let dir = temp_dir("files-cli");
    let taken: PathBuf = dir.join("taken.csv");
    std::fs::create_dir(&taken).unwrap();
    let plain = dir.join("plain");
    std::fs::write(&plain, b"plain").unwrap();
    let under_file = plain.join("out.csv");
    for out in [&taken, &under_file] {
        let o = varprop(&[
            "theory",
            "--width",
            "16",
            "--depth",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(
            said.starts_with("error: --out: ") && said.contains(&out.display().to_string()),
            "{said}"
        );
        assert_eq!(names(&dir), ["plain", "taken.csv"]);
        assert!(names(&taken).is_empty());
    }
    let plot = plain.join("q.svg");
    let o = varprop(&[
        "run",
        "--width",
        "16",
        "--depth",
        "3",
        "--batch",
        "4",
        "--networks",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--plot",
        plot.to_str().unwrap(),
        "--out",
        dir.join("run.csv").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--plot") && text(&o).contains(&plot.display().to_string()),
        "{}",
        text(&o)
    );
    no_temporary_files(&dir);
    assert_eq!(std::fs::read(&plain).unwrap(), b"plain");
    let _ = std::fs::remove_dir_all(&dir);
}
