//! `varprop sweep` and `varprop merge` as a cluster user runs them: shards
//! merged equal the sweep run in one go byte for byte, an interrupted sweep
//! resumes with only the missing configuration, bad files name the line
//! and the key.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

fn varprop(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::varprop_outside_array_job(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run varprop")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("varprop-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 2 x 2 x 2 = 8 small configurations.
const SWEEP: &str = "# a small grid
width = 16
depth = 4
batch = 4
networks = 3
act = \"tanh\"

[grid]
init = [\"xavier-normal\", \"he-normal\"]
sigma-b2 = [0.0, 0.1]
seed = [1, 2]
";

/// The result files of a directory by name, with their bytes.
fn results(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// When each of `names` in `dir` was last written.
fn modified_times<'a>(
    dir: &Path,
    names: impl Iterator<Item = &'a String>,
) -> Vec<std::time::SystemTime> {
    names
        .map(|k| std::fs::metadata(dir.join(k)).unwrap().modified().unwrap())
        .collect()
}

fn sweep(file: &Path, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = vec![
        "sweep",
        file.to_str().unwrap(),
        "--out-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = varprop(&args, env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    text(&out)
}

#[test]
fn shards_merged_equal_the_whole_sweep_and_a_sweep_resumes() {
    let root = temp_dir("shards");
    let file = root.join("grid.toml");
    std::fs::write(&file, SWEEP).unwrap();

    // the whole grid in one go
    let whole = root.join("whole");
    let said = sweep(&file, &whole, &[], &[]);
    assert!(
        said.contains("8 configurations") && said.contains("8 computed"),
        "{said}"
    );
    let all = results(&whole);
    assert_eq!(all.len(), 8);
    let summary = std::fs::read(whole.join("summary.csv")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&summary).lines().count(),
        1 + 8,
        "a header and one row per configuration"
    );

    // three shards in three directories; shard 1 from Slurm's variables
    let mut shard_dirs = Vec::new();
    for i in 0..3 {
        let dir = root.join(format!("shard{i}"));
        let said = if i == 1 {
            sweep(
                &file,
                &dir,
                &[],
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                ],
            )
        } else {
            let shard = format!("{i}/3");
            sweep(&file, &dir, &["--shard", &shard], &[])
        };
        assert!(said.contains(&format!("shard {i}/3")), "{said}");
        shard_dirs.push(dir);
    }
    let sizes: Vec<usize> = shard_dirs.iter().map(|d| results(d).len()).collect();
    assert_eq!(sizes, [3, 3, 2], "configuration k goes to shard k mod 3");
    let mut union = BTreeMap::new();
    for d in &shard_dirs {
        union.extend(results(d));
    }
    assert_eq!(
        union, all,
        "the shards' results are the whole sweep's, byte for byte"
    );
    let merged = root.join("merged.csv");
    let mut args = vec!["merge"];
    args.extend(shard_dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let out = varprop(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        summary,
        "merged shards equal the unsharded summary byte for byte"
    );

    // an interrupted sweep: one result missing; only it is computed again
    let victim = all.keys().nth(5).unwrap().clone();
    std::fs::remove_file(whole.join(&victim)).unwrap();
    let before = modified_times(&whole, all.keys().filter(|k| **k != victim));
    let said = sweep(&file, &whole, &[], &[]);
    assert!(said.contains("1 computed, 7 already"), "{said}");
    assert_eq!(
        results(&whole),
        all,
        "the missing result is back, the same bytes"
    );
    let after = modified_times(&whole, all.keys().filter(|k| **k != victim));
    assert_eq!(before, after, "the other results were not rewritten");
    assert_eq!(std::fs::read(whole.join("summary.csv")).unwrap(), summary);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_summary_names_configurations_by_the_hash_of_their_settings() {
    let root = temp_dir("hash");
    let file = root.join("one.toml");
    std::fs::write(&file, "width = 8\ndepth = 2\nbatch = 2\nnetworks = 2\n").unwrap();
    let dir = root.join("out");
    sweep(&file, &dir, &["--device", "cpu"], &[]);
    let files = results(&dir);
    assert_eq!(files.len(), 1);
    let (name, bytes) = files.iter().next().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    // the documented recipe: SHA-256 of the compact, key-sorted JSON of the
    // settings with their defaults, first 16 hex digits
    let canonical = "{\"backward\":false,\"batch\":2,\"c0\":0.5,\"depth\":2,\"jacobian\":false,\"networks\":2,\"q0\":1.0,\"seed\":0,\"weight-grads\":false,\"width\":8}";
    assert_eq!(serde_json::to_string(&doc["settings"]).unwrap(), canonical);
    let id = varprop::sweep::config_id(canonical);
    assert_eq!(name, &format!("{id}.json"));
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["layers"].as_array().unwrap().len(), 3);
    assert!(doc["headline"]["log_q_last"].is_number());
    // --force recomputes
    let said = sweep(&file, &dir, &["--device", "cpu", "--force"], &[]);
    assert!(said.contains("1 computed"), "{said}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_sweep_files_name_the_line_and_the_key() {
    let root = temp_dir("bad");
    let dir = root.join("out");
    let cases: &[(&str, &[&str])] = &[
        ("width = 8\ndepth = 2\nwidht = 3\n", &["line 3", "widht"]),
        (
            "width = 8\n[grid]\ninit = [\"he-normal\"]\nsigma-w3 = [1.0]\n",
            &["line 4", "sigma-w3"],
        ),
        (
            "width = 8\n[grid]\ndepth = [2, \"x\"]\n",
            &["line 3", "grid.depth"],
        ),
        (
            "width = 8\n[grid]\nwidth = [4, 8]\n",
            &["line 3", "grid.width"],
        ),
        ("width = 8\ndepth = [3\n", &["line 2"]),
        (
            "width = 8\ndepth = 2\n[grid]\ninit = [\"he-normal\", \"kaiming-magic\"]\n",
            &["--init", "kaiming-magic"],
        ),
    ];
    for (i, (content, expected)) in cases.iter().enumerate() {
        let file = root.join(format!("bad{i}.toml"));
        std::fs::write(&file, content).unwrap();
        let out = varprop(
            &[
                "sweep",
                file.to_str().unwrap(),
                "--out-dir",
                dir.to_str().unwrap(),
            ],
            &[],
        );
        let errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("error: "))
            .map(str::to_string)
            .collect();
        assert_eq!(out.status.code(), Some(2), "{content}: {}", text(&out));
        assert_eq!(errors.len(), 1, "one error line: {}", text(&out));
        assert!(errors[0].contains(&format!("bad{i}.toml")), "{}", errors[0]);
        for e in *expected {
            assert!(
                errors[0].contains(e),
                "{content}: should name {e}: {}",
                errors[0]
            );
        }
        assert!(!dir.exists() || results(&dir).is_empty(), "nothing written");
    }
    // shards that do not exist
    let file = root.join("ok.toml");
    std::fs::write(&file, "width = 8\ndepth = 2\n").unwrap();
    let out = varprop(
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
            "--shard",
            "3/3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--shard"), "{}", text(&out));
    let out = varprop(
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out-dir",
            dir.to_str().unwrap(),
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("SLURM_ARRAY_TASK_ID"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&root);
}

/// With an architecture file the sweep's headline theory is the block
/// theory `run` prints (here the mean-preserving bias through a conv stack,
/// where the plain recurrence would be wrong), and the summary invents no
/// width or depth for it.
#[test]
fn architecture_sweeps_carry_the_block_theory() {
    let root = temp_dir("arch");
    let arch = Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures/conv.toml");
    let arch = arch.to_str().unwrap();
    let file = root.join("grid.toml");
    std::fs::write(
        &file,
        format!("batch = 4\nnetworks = 2\nbias = \"mean-preserving\"\narch = {arch:?}\n\n[grid]\nseed = [0]\n"),
    )
    .unwrap();
    let dir = root.join("out");
    sweep(&file, &dir, &["--device", "cpu", "--quiet"], &[]);
    let mut summary = csv::Reader::from_path(dir.join("summary.csv")).unwrap();
    let header: Vec<String> = summary
        .headers()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    assert!(
        !header.iter().any(|h| h == "width" || h == "depth"),
        "{header:?}"
    );
    let row: BTreeMap<String, String> = summary.deserialize().next().unwrap().unwrap();
    let headline_theory: f64 = row["log_q_last_theory"].parse().unwrap();

    let out = varprop(
        &[
            "run",
            "--arch",
            arch,
            "--bias",
            "mean-preserving",
            "--batch",
            "4",
            "--networks",
            "2",
            "--device",
            "cpu",
            "--format",
            "json",
            "--quiet",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = json["layers"].as_array().unwrap();
    let run_theory = layers.last().unwrap()["q_post_theory"].as_f64().unwrap();
    assert!(
        (headline_theory - run_theory.ln()).abs() < 1e-9,
        "sweep {headline_theory} against ln of run's {run_theory}"
    );
    // the mean-preserving shift makes q shrink by Var/E^2 per layer: far from 0
    assert!(headline_theory < -1.0, "{headline_theory}");
}

/// With --shards the shard is the array task's id of the sweep's count:
/// a task resubmitted alone (sbatch --array=1: SLURM_ARRAY_TASK_COUNT 1)
/// runs shard 1 of 3, the same configurations as `--shard 1/3`; without
/// --shards the array's own count would make it the whole grid, and the
/// sweep warns so.
#[test]
fn a_resubmitted_task_runs_its_own_shard_with_shards() {
    let root = temp_dir("shards-count");
    let file = root.join("grid.toml");
    std::fs::write(&file, SWEEP).unwrap();
    // what Slurm sets for `sbatch --array=1`
    let alone = [
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "1"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
    ];
    let by_id = root.join("by-id");
    let said = sweep(&file, &by_id, &["--shards", "3"], &alone);
    assert!(said.contains("shard 1/3"), "{said}");
    let by_flag = root.join("by-flag");
    sweep(&file, &by_flag, &["--shard", "1/3"], &[]);
    assert_eq!(results(&by_id), results(&by_flag));
    assert!(by_id.join("summary-shard-1-of-3.csv").exists());
    // the array's count: shard 0/1, with a warning naming --shards
    let counted = root.join("counted");
    let said = sweep(&file, &counted, &[], &alone);
    assert!(said.contains("give --shards"), "{said}");
    assert_eq!(results(&counted).len(), 8);
    // a task id outside the sweep's shards is refused before any work
    let out = varprop(
        &[
            "sweep",
            file.to_str().unwrap(),
            "--out-dir",
            root.join("x").to_str().unwrap(),
            "--shards",
            "3",
        ],
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("SLURM_ARRAY_TASK_ID"), "{}", text(&out));
    assert!(!root.join("x").exists());
}
