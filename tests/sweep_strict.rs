//! Issue 15 for `merge` and sweep files: merge refuses missing shards
//! unless `--allow-partial` and names them; an empty directory names
//! itself; an empty sweep file and a single value where a grid list belongs
//! are errors naming the file, the line and the key, before any work.

mod common;

use std::path::Path;
use std::process::Output;

use common::{temp_dir, text};

fn varprop(args: &[&str]) -> Output {
    common::varprop_outside_array_job(args)
        .output()
        .expect("run varprop")
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

#[test]
fn empty_files_and_single_grid_values_are_errors() {
    let root = temp_dir("sweep-strict");
    let dir = root.join("out");
    let cases: &[(&str, &str)] = &[
        (
            "",
            "line 1: no settings: give fixed ones at the top (e.g. width = 256), lists under [grid] (e.g. seed = [0, 1]), or both",
        ),
        (
            "# to do\n\n",
            "line 1: no settings: give fixed ones at the top (e.g. width = 256), lists under [grid] (e.g. seed = [0, 1]), or both",
        ),
        ("# to do\n[grid]\n", "line 2: no settings"),
        (
            "width = 16\ndepth = 3\n\n[grid]\nseed = 3\n",
            "line 5: grid.seed: one value where a list belongs: write seed = [3], or set it above [grid] as a fixed setting",
        ),
        (
            "width = 16\n[grid]\ninit = \"he-normal\"\n",
            "line 3: grid.init: one value where a list belongs: write init = [\"he-normal\"], or set it above [grid] as a fixed setting",
        ),
        (
            "width = 16\n[grid]\nseed = [1, 2]\n[grid.depth]\nx = 1\n",
            "line 4: grid.depth: a table where a list of values belongs",
        ),
    ];
    for (i, (content, expected)) in cases.iter().enumerate() {
        let file = root.join(format!("strict{i}.toml"));
        std::fs::write(&file, content).unwrap();
        let out = varprop(&[
            "sweep",
            file.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{content:?}: {}", text(&out));
        let said = stderr(&out);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.starts_with(&format!("error: {}: {expected}", file.display())),
            "{content:?}: {said}"
        );
        assert!(!dir.exists(), "before any work, even the directory");
    }
    let _ = std::fs::remove_dir_all(&root);
}
