//! Issue 15 for `merge`: merge refuses missing shards unless
//! `--allow-partial` and names them; an empty directory names itself.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{temp_dir, text};

fn varprop(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_varprop"));
    cmd.args(args);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SGE_TASK_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().expect("run varprop")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const GRID: &str =
    "width = 16\ndepth = 3\nbatch = 4\nnetworks = 2\n[grid]\nseed = [0, 1, 2, 3, 4, 5]\n";

fn sweep_shard(file: &Path, dir: &Path, shard: &str) {
    let out = varprop(&[
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
        "--shard",
        shard,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn merge_refuses_missing_shards_unless_allowed() {
    let root = temp_dir("merge-partial");
    let file = root.join("grid.toml");
    std::fs::write(&file, GRID).unwrap();
    let dir = root.join("results");
    sweep_shard(&file, &dir, "0/3");
    sweep_shard(&file, &dir, "2/3");
    let summary = dir.join("summary.csv");
    let d = dir.display();

    let out = varprop(&["merge", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: merge: shard 1 of 0..3 missing under {d} (no summary-shard-I-of-N.csv: sweep with --shard 1/3, or merge with --allow-partial)\n"
        )
    );
    assert!(!summary.exists(), "nothing written");

    let out = varprop(&["merge", dir.to_str().unwrap(), "--allow-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!(
            "warning: merge: shard 1 of 0..3 missing under {d} (--allow-partial)"
        )),
        "{said}"
    );
    assert!(said.contains("merge: 4 configurations"), "{said}");
    let rows = std::fs::read_to_string(&summary).unwrap().lines().count();
    assert_eq!(rows, 1 + 4, "shards 0 and 2: configurations 0, 2, 3, 5");

    // the missing shard filled in: merged without complaint, all six
    sweep_shard(&file, &dir, "1/3");
    let out = varprop(&["merge", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let rows = std::fs::read_to_string(&summary).unwrap().lines().count();
    assert_eq!(rows, 1 + 6);

    // one directory per shard, the middle one never ran
    let shard0 = root.join("shard-0");
    let shard2 = root.join("shard-2");
    sweep_shard(&file, &shard0, "0/3");
    sweep_shard(&file, &shard2, "2/3");
    let out = varprop(&["merge", shard0.to_str().unwrap(), shard2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!(
            "shard 1 of 0..3 missing under {}, {}",
            shard0.display(),
            shard2.display()
        )),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn merge_names_an_empty_or_missing_directory() {
    let root = temp_dir("merge-empty");
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = varprop(&["merge", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: merge: no sweep results (ID.json files) in {}\n",
            empty.display()
        )
    );
    let missing = root.join("missing");
    let out = varprop(&["merge", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: merge: {} is not a directory (give the --out-dir of sweeps)\n",
            missing.display()
        )
    );
    assert!(!empty.join("summary.csv").exists());
    let _ = std::fs::remove_dir_all(&root);
}
