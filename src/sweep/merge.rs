//! `varprop merge DIR...`: the result files of sweep directories and which
//! shards of an array are missing from them.
//!
//! A shard that finished wrote `summary-shard-I-of-N.csv` into its
//! directory; one that never ran or was interrupted did not. So the shards
//! missing from a set of directories are the I in 0..N with no such file
//! in any of them (N from the summaries found). A grid sharded two ways is
//! complete when the shards of one N are all there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::Shard;
use super::driver::io_error;
use crate::error::{Error, Result};

/// The files of `dir` (sorted by name); a missing directory is bad input.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::invalid(
            "merge",
            format!(
                "{} is not a directory (give the --out-dir of sweeps)",
                dir.display()
            ),
        ));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Ok(files)
}

/// The result files of a directory: `*.json`, not hidden (temporary files
/// of atomic writes are), sorted by name.
pub fn result_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect())
}

/// The shard a summary file's name gives (`summary-shard-I-of-N.csv`).
fn shard_of_summary(name: &str) -> Option<Shard> {
    let (i, n) = name
        .strip_prefix("summary-shard-")?
        .strip_suffix(".csv")?
        .split_once("-of-")?;
    let (index, count) = (i.parse().ok()?, n.parse().ok()?);
    (index < count).then_some(Shard { index, count })
}

/// The shards whose summaries are in `dir`.
pub fn finished_shards(dir: &Path) -> Result<Vec<Shard>> {
    Ok(entries(dir)?
        .iter()
        .filter_map(|p| shard_of_summary(p.file_name()?.to_str()?))
        .collect())
}

/// The shards missing among `finished`: for each count N found (sorted),
/// the indices in 0..N without a summary. Empty when nothing is missing:
/// when no shard summary was found (the results of unsharded sweeps) or
/// when every shard of one N finished.
pub fn missing_shards(finished: &[Shard]) -> Vec<(usize, Vec<usize>)> {
    let mut by_count: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for s in finished {
        by_count.entry(s.count).or_default().insert(s.index);
    }
    let missing: Vec<(usize, Vec<usize>)> = by_count
        .iter()
        .map(|(&n, have)| (n, (0..n).filter(|i| !have.contains(i)).collect()))
        .collect();
    if missing.iter().any(|(_, m)| m.is_empty()) {
        return Vec::new();
    }
    missing
}

/// "1, 4-6" for [1, 4, 5, 6].
fn runs(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut k = 0;
    while k < indices.len() {
        let mut end = k;
        while end + 1 < indices.len() && indices[end + 1] == indices[end] + 1 {
            end += 1;
        }
        parts.push(match end - k {
            0 => indices[k].to_string(),
            1 => format!("{}, {}", indices[k], indices[end]),
            _ => format!("{}-{}", indices[k], indices[end]),
        });
        k = end + 1;
    }
    parts.join(", ")
}

/// The directories for a message: all of them up to three, else the first
/// and how many others.
pub fn dirs_text(dirs: &[PathBuf]) -> String {
    match dirs {
        [] => String::new(),
        _ if dirs.len() <= 3 => dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        [first, rest @ ..] => format!("{} and {} other directories", first.display(), rest.len()),
    }
}

/// "shard 1 of 0..3 missing under DIR" (or "shards 1, 4-6 of 0..8
/// ..."; one part per count N).
pub fn missing_text(missing: &[(usize, Vec<usize>)], dirs: &[PathBuf]) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|(n, m)| {
            format!(
                "{} {} of 0..{n}",
                if m.len() == 1 { "shard" } else { "shards" },
                runs(m)
            )
        })
        .collect();
    format!("{} missing under {}", parts.join("; "), dirs_text(dirs))
}

/// What fills the gap, for the error: the first missing shard's flag.
pub fn missing_hint(missing: &[(usize, Vec<usize>)]) -> String {
    let (n, m) = &missing[0];
    format!(
        "no summary-shard-I-of-N.csv: sweep with --shard {}/{n}{}, or merge with --allow-partial",
        m[0],
        if missing.len() > 1 || m.len() > 1 {
            " and the others"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_are_those_without_a_summary() {
        let s = |index, count| Shard { index, count };
        assert_eq!(shard_of_summary("summary-shard-2-of-3.csv"), Some(s(2, 3)));
        assert_eq!(shard_of_summary("summary-shard-3-of-3.csv"), None);
        assert_eq!(shard_of_summary("summary.csv"), None);
        assert_eq!(missing_shards(&[]), vec![]);
        assert_eq!(missing_shards(&[s(0, 3), s(2, 3)]), vec![(3, vec![1])]);
        assert_eq!(missing_shards(&[s(0, 3), s(0, 2), s(1, 2)]), vec![]);
        let m = missing_shards(&[s(0, 8), s(2, 8), s(3, 8)]);
        assert_eq!(m, vec![(8, vec![1, 4, 5, 6, 7])]);
        let dirs = [PathBuf::from("r")];
        assert_eq!(
            missing_text(&m, &dirs),
            "shards 1, 4-7 of 0..8 missing under r"
        );
        assert_eq!(
            missing_hint(&m),
            "no summary-shard-I-of-N.csv: sweep with --shard 1/8 and the others, or merge with --allow-partial"
        );
        assert_eq!(
            missing_text(&[(3, vec![1])], &dirs),
            "shard 1 of 0..3 missing under r"
        );
        assert_eq!(
            missing_hint(&[(3, vec![1])]),
            "no summary-shard-I-of-N.csv: sweep with --shard 1/3, or merge with --allow-partial"
        );
        let many: Vec<PathBuf> = (0..5).map(|i| PathBuf::from(format!("s{i}"))).collect();
        assert_eq!(dirs_text(&many), "s0 and 4 other directories");
    }
}
