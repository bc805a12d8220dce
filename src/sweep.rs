//! `varprop sweep`: a grid of run settings from a TOML file, one result
//! file per configuration named by a hash of its settings, shardable across
//! machines, and a summary with one row per configuration.
//!
//! The file: fixed settings at the top (any key of a `run`, as in a `check`
//! suite), the grid under `[grid]`, each key with a list of values:
//!
//! ```toml
//! width = 64
//! depth = 20
//! [grid]
//! init = ["xavier-normal", "he-normal"]
//! sigma-b2 = [0.0, 0.05]
//! ```
//!
//! Configurations are the product of the grid's lists, keys in sorted
//! order, the first key outermost. A configuration's id is the first 16 hex
//! digits of the SHA-256 of its canonical JSON: the settings with their
//! defaults written out (`RunSettings::with_defaults`), as a compact JSON
//! object with sorted keys, the names of `run`'s flags without dashes in
//! front. Any setting `RunSettings` has flows through unchanged: the keys
//! come from its serialisation, not from a list here.
//!
//! Shards: configuration k (in grid order) belongs to shard k mod N.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Result};
use crate::headline::Headline;
use crate::settings::RunSettings;
use crate::spec::RunSpec;

/// A parsed sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepFile {
    pub fixed: RunSettings,
    /// One axis per grid key: the key's canonical name and one single-key
    /// setting per value.
    pub axes: Vec<(String, Vec<RunSettings>)>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn toml_error(path: &str, text: &str, e: toml::de::Error) -> Error {
    let message = e.message().trim().to_string();
    Error::invalid(
        path,
        match e.span() {
            Some(span) => format!("line {}: {message}", line_of(text, span.start)),
            None => message,
        },
    )
}

/// The settings' JSON object (only the settings that are set).
fn settings_object(settings: &RunSettings) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(settings).expect("settings serialise") {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a struct serialises to an object"),
    }
}

/// Parses a sweep file; errors name the file, the line and the key.
pub fn parse_sweep(path: &str, text: &str) -> Result<SweepFile> {
    let root = DeTable::parse(text).map_err(|e| toml_error(path, text, e))?;
    let span = root.span();
    let mut fixed_table = DeTable::new();
    let mut grid: Option<Spanned<DeValue>> = None;
    for (key, value) in root.into_inner() {
        if key.get_ref() == "grid" {
            grid = Some(value);
        } else {
            fixed_table.insert(key, value);
        }
    }
    let fixed = RunSettings::deserialize(toml::de::Deserializer::from(Spanned::new(
        span,
        fixed_table,
    )))
    .map_err(|e| toml_error(path, text, e))?;
    let at = |offset: usize, message: String| {
        Error::invalid(path, format!("line {}: {message}", line_of(text, offset)))
    };
    if fixed.name.is_some() {
        return Err(Error::invalid(
            path,
            "name: a sweep names each configuration by the hash of its settings; drop the key",
        ));
    }
    let fixed_keys = settings_object(&fixed);
    let mut axes: Vec<(String, Vec<RunSettings>)> = Vec::new();
    if let Some(grid) = grid {
        let grid_start = grid.span().start;
        let DeValue::Table(table) = grid.into_inner() else {
            return Err(at(grid_start, "grid: must be a table ([grid])".into()));
        };
        for (key, value) in table {
            let key_start = key.span().start;
            let value_span = value.span();
            let elements = match value.into_inner() {
                DeValue::Array(items) => items.into_iter().collect::<Vec<_>>(),
                scalar => vec![Spanned::new(value_span.clone(), scalar)],
            };
            if elements.is_empty() {
                return Err(at(
                    key_start,
                    format!("grid.{}: an empty list", key.get_ref()),
                ));
            }
            let mut settings = Vec::new();
            let mut canonical: Option<String> = None;
            for element in elements {
                let mut one = DeTable::new();
                one.insert(key.clone(), element);
                let s = RunSettings::deserialize(toml::de::Deserializer::from(Spanned::new(
                    value_span.clone(),
                    one,
                )))
                .map_err(|e| {
                    let e = toml_error(path, text, e);
                    match e {
                        Error::Invalid { flag, message } => {
                            Error::invalid(flag, format!("{message} (grid.{})", key.get_ref()))
                        }
                        other => other,
                    }
                })?;
                let name = settings_object(&s).keys().next().cloned();
                canonical = canonical.or(name);
                settings.push(s);
            }
            let canonical = canonical.unwrap_or_else(|| key.get_ref().to_string());
            if canonical == "name" {
                return Err(at(
                    key_start,
                    "grid.name: a sweep names each configuration by the hash of its settings"
                        .into(),
                ));
            }
            if fixed_keys.contains_key(&canonical) {
                return Err(at(
                    key_start,
                    format!(
                        "grid.{}: also a fixed setting; give it in one place",
                        key.get_ref()
                    ),
                ));
            }
            if axes.iter().any(|(k, _)| *k == canonical) {
                return Err(at(
                    key_start,
                    format!("grid.{}: the same setting twice in the grid", key.get_ref()),
                ));
            }
            axes.push((canonical, settings));
        }
    }
    Ok(SweepFile { fixed, axes })
}

/// One configuration of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Configuration {
    /// The settings with their defaults written out.
    pub settings: RunSettings,
    /// Its canonical JSON and the id hashed from it.
    pub canonical: String,
    pub id: String,
    /// The grid point, e.g. `init="he-normal" sigma-b2=0.05`, for messages.
    pub point: String,
}

/// The canonical JSON of settings: compact, keys sorted.
pub fn canonical_json(settings: &RunSettings) -> String {
    let sorted: BTreeMap<String, serde_json::Value> =
        settings_object(settings).into_iter().collect();
    serde_json::to_string(&sorted).expect("json")
}

/// The first 16 hex digits of the SHA-256 of the canonical JSON.
pub fn config_id(canonical: &str) -> String {
    Sha256::digest(canonical.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every configuration of the grid, in grid order, each resolved (so that
/// bad input fails before anything runs) and with duplicates (the same
/// settings twice) dropped.
pub fn configurations(
    path: &str,
    file: &SweepFile,
    default_networks: usize,
) -> Result<Vec<(Configuration, RunSpec)>> {
    let mut points: Vec<Vec<(String, RunSettings)>> = vec![Vec::new()];
    for (key, values) in &file.axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((key.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    let mut out: Vec<(Configuration, RunSpec)> = Vec::new();
    for point in points {
        let mut settings = file.fixed.clone();
        let mut described = Vec::new();
        for (key, value) in &point {
            settings = settings.overlay(value);
            let v = settings_object(value)
                .into_values()
                .next()
                .unwrap_or_default();
            described.push(format!("{key}={v}"));
        }
        let point_text = described.join(" ");
        let spec = settings.resolve(default_networks).map_err(|e| match e {
            Error::Invalid { flag, message } if !point.is_empty() => Error::invalid(
                path,
                format!("configuration {point_text}: {flag}: {message}"),
            ),
            Error::Invalid { flag, message } => Error::invalid(path, format!("{flag}: {message}")),
            other => other,
        })?;
        let settings = settings.with_defaults(default_networks);
        let canonical = canonical_json(&settings);
        let id = config_id(&canonical);
        if out.iter().any(|(c, _)| c.id == id) {
            continue;
        }
        out.push((
            Configuration {
                settings,
                canonical,
                id,
                point: point_text,
            },
            spec,
        ));
    }
    Ok(out)
}

/// The I-th of N disjoint slices of a grid: configuration k belongs to
/// shard k mod N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 0 <= I < N.
    pub fn parse(flag: &str, text: &str) -> Result<Shard> {
        let bad = || {
            Error::invalid(
                flag,
                format!("'{text}': expected I/N with 0 <= I < N, e.g. 0/4"),
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// The shard an array job's scheduler assigns, from its environment
    /// (`var` reads a variable), with the scheduler's name; None outside an
    /// array job.
    ///
    /// - Slurm: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, and
    ///   `SLURM_ARRAY_TASK_MIN` / `SLURM_ARRAY_TASK_STEP` when set: shard
    ///   (ID - MIN) / STEP of COUNT (`--array=0-63` or `1-64`).
    /// - Grid Engine (SGE, UGE, OGE): `SGE_TASK_ID`, `SGE_TASK_FIRST`,
    ///   `SGE_TASK_LAST`, `SGE_TASK_STEPSIZE` (`qsub -t 1-64`).
    ///
    /// PBS and LSF do not export the array's size: give
    /// `--shard $PBS_ARRAY_INDEX/64` (or `$((LSB_JOBINDEX - 1))/64`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<(Shard, &'static str)>> {
        let number = |name: &str| -> Result<Option<i64>> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                    Error::invalid(name, format!("'{v}' is not an integer; give --shard I/N"))
                }),
            }
        };
        // Grid Engine sets SGE_TASK_ID to "undefined" outside array jobs
        let sge_id = var("SGE_TASK_ID").filter(|v| v.trim() != "undefined");
        let (scheduler, id_var, id, first, count, step) = if var("SLURM_ARRAY_TASK_ID").is_some() {
            let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                Error::invalid(
                    "SLURM_ARRAY_TASK_COUNT",
                    "not set while SLURM_ARRAY_TASK_ID is; give --shard I/N",
                )
            })?;
            (
                "Slurm",
                "SLURM_ARRAY_TASK_ID",
                number("SLURM_ARRAY_TASK_ID")?.unwrap_or(0),
                number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0),
                count,
                number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1),
            )
        } else if sge_id.is_some() {
            let first = number("SGE_TASK_FIRST")?.unwrap_or(1);
            let step = number("SGE_TASK_STEPSIZE")?.unwrap_or(1);
            let last = number("SGE_TASK_LAST")?.ok_or_else(|| {
                Error::invalid(
                    "SGE_TASK_LAST",
                    "not set while SGE_TASK_ID is; give --shard I/N",
                )
            })?;
            if step < 1 {
                return Err(Error::invalid("SGE_TASK_STEPSIZE", "must be >= 1"));
            }
            (
                "Grid Engine",
                "SGE_TASK_ID",
                number("SGE_TASK_ID")?.unwrap_or(0),
                first,
                (last - first) / step + 1,
                step,
            )
        } else {
            return Ok(None);
        };
        let offset = id - first;
        if step < 1 || count < 1 || offset < 0 || offset % step != 0 || offset / step >= count {
            return Err(Error::invalid(
                id_var,
                format!(
                    "task {id} is not one of {count} tasks from {first} in steps of {step} (a contiguous array such as 0-63 is needed); give --shard I/N"
                ),
            ));
        }
        Ok(Some((
            Shard {
                index: (offset / step) as usize,
                count: count as usize,
            },
            scheduler,
        )))
    }
}

/// The result file of one configuration: `{id, settings, headline,
/// config, layers}` as pretty JSON.
pub fn result_document(
    configuration: &Configuration,
    headline: &Headline,
    config: serde_json::Value,
    layers: serde_json::Value,
) -> String {
    let settings: serde_json::Value =
        serde_json::from_str(&configuration.canonical).expect("canonical json");
    let doc = serde_json::json!({
        "id": configuration.id,
        "settings": settings,
        "headline": headline,
        "config": config,
        "layers": layers,
    });
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

/// What the summary needs of a result file.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultSummary {
    pub id: String,
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub headline: serde_json::Map<String, serde_json::Value>,
}

/// Reads a result file and checks that its id is the hash of its settings.
pub fn read_result(path: &Path) -> Result<ResultSummary> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: name.clone(),
        source: e,
    })?;
    let not_a_result =
        |why: &str| Error::invalid(name.clone(), format!("not a sweep result: {why}"));
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not_a_result(&e.to_string()))?;
    let id = doc["id"]
        .as_str()
        .ok_or_else(|| not_a_result("no \"id\""))?;
    let settings = doc["settings"]
        .as_object()
        .ok_or_else(|| not_a_result("no \"settings\""))?;
    let headline = doc["headline"]
        .as_object()
        .ok_or_else(|| not_a_result("no \"headline\""))?;
    let sorted: BTreeMap<&String, &serde_json::Value> = settings.iter().collect();
    let canonical = serde_json::to_string(&sorted).expect("json");
    if config_id(&canonical) != id {
        return Err(Error::invalid(
            name,
            format!("its id {id} is not the hash of its settings (edited by hand?)"),
        ));
    }
    Ok(ResultSummary {
        id: id.to_string(),
        settings: settings.clone(),
        headline: headline.clone(),
    })
}

/// A JSON value as CSV text: strings as they are, numbers as JSON writes
/// them, booleans as true/false, null as empty.
fn csv_text(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        // shortest text that reads back to the same f64, as CSV cells are
        Some(serde_json::Value::Number(n)) => {
            n.as_f64().map_or(String::new(), |f| format!("{f:?}"))
        }
        Some(other) => other.to_string(),
    }
}

/// Orders JSON values for sorting rows: absent first, then booleans,
/// numbers (by value), strings, anything else (by its text).
fn compare_values(
    a: Option<&serde_json::Value>,
    b: Option<&serde_json::Value>,
) -> std::cmp::Ordering {
    use serde_json::Value::*;
    let rank = |v: Option<&serde_json::Value>| match v {
        None | Some(Null) => 0,
        Some(Bool(_)) => 1,
        Some(Number(_)) => 2,
        Some(String(_)) => 3,
        Some(_) => 4,
    };
    match (a, b) {
        (Some(Bool(x)), Some(Bool(y))) => x.cmp(y),
        (Some(Number(x)), Some(Number(y))) => x
            .as_f64()
            .unwrap_or(f64::NAN)
            .total_cmp(&y.as_f64().unwrap_or(f64::NAN)),
        (Some(String(x)), Some(String(y))) => x.cmp(y),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.map(|v| v.to_string()).cmp(&b.map(|v| v.to_string()))),
    }
}

/// The summary CSV: one row per result, columns `id`, the settings (every
/// key any result has, sorted), then the headline numbers. Rows are sorted
/// by the settings, column by column, then by id; the text depends only on
/// the set of results, so a merge of shards writes the same bytes as the
/// sweep run in one go.
pub fn summary_csv(results: &[ResultSummary]) -> String {
    let mut results: Vec<&ResultSummary> = results.iter().collect();
    let mut setting_keys: Vec<&String> = results.iter().flat_map(|r| r.settings.keys()).collect();
    setting_keys.sort();
    setting_keys.dedup();
    let mut headline_keys: Vec<&String> = Vec::new();
    for r in &results {
        for k in r.headline.keys() {
            if !headline_keys.contains(&k) {
                headline_keys.push(k);
            }
        }
    }
    results.sort_by(|a, b| {
        setting_keys
            .iter()
            .map(|k| compare_values(a.settings.get(*k), b.settings.get(*k)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut w = csv::Writer::from_writer(Vec::new());
    // a headline number named like a setting keeps the settings' column
    // unique
    let headline_names: Vec<String> = headline_keys
        .iter()
        .map(|k| {
            if setting_keys.contains(k) {
                format!("headline.{k}")
            } else {
                k.to_string()
            }
        })
        .collect();
    let header = std::iter::once("id")
        .chain(setting_keys.iter().map(|k| k.as_str()))
        .chain(headline_names.iter().map(String::as_str));
    w.write_record(header).expect("in-memory csv");
    for r in &results {
        let row = std::iter::once(r.id.clone())
            .chain(setting_keys.iter().map(|k| csv_text(r.settings.get(*k))))
            .chain(headline_keys.iter().map(|k| csv_text(r.headline.get(*k))));
        w.write_record(row).expect("in-memory csv");
    }
    String::from_utf8(w.into_inner().expect("in-memory csv")).expect("csv is utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "width = 8\ndepth = 2\n[grid]\ninit = [\"xavier-normal\", \"he-normal\"]\nsigma-b2 = [0.0, 0.05]\n";

    #[test]
    fn the_grid_is_a_product_in_a_stable_order() {
        let file = parse_sweep("s.toml", FILE).unwrap();
        let configs = configurations("s.toml", &file, 4).unwrap();
        let points: Vec<&str> = configs.iter().map(|(c, _)| c.point.as_str()).collect();
        assert_eq!(
            points,
            [
                "init=\"xavier-normal\" sigma-b2=0.0",
                "init=\"xavier-normal\" sigma-b2=0.05",
                "init=\"he-normal\" sigma-b2=0.0",
                "init=\"he-normal\" sigma-b2=0.05",
            ]
        );
    }

    #[test]
    fn the_id_is_the_hash_of_the_canonical_settings() {
        let file = parse_sweep("s.toml", FILE).unwrap();
        let (c, _) = &configurations("s.toml", &file, 4).unwrap()[0];
        assert_eq!(
            c.canonical,
            "{\"backward\":false,\"batch\":16,\"c0\":0.5,\"depth\":2,\"init\":\"xavier-normal\",\"jacobian\":false,\"networks\":4,\"q0\":1.0,\"seed\":0,\"sigma-b2\":0.0,\"weight-grads\":false,\"width\":8}"
        );
        // printf '%s' "$canonical" | sha256sum | cut -c1-16
        assert_eq!(c.id, config_id(&c.canonical));
        assert_eq!(c.id.len(), 16);
        // a default written out names the same configuration
        let explicit = parse_sweep(
            "s.toml",
            "width = 8\ndepth = 2\nbatch = 16\nseed = 0\n[grid]\ninit = [\"xavier-normal\"]\nsigma_b2 = 0\n",
        )
        .unwrap();
        let (e, _) = &configurations("s.toml", &explicit, 4).unwrap()[0];
        assert_eq!(e.id, c.id);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let err = |text: &str| parse_sweep("s.toml", text).unwrap_err().to_string();
        let e = err("width = 8\nwidht = 3\n");
        assert!(
            e.contains("s.toml") && e.contains("line 2") && e.contains("widht"),
            "{e}"
        );
        let e = err("width = 8\n[grid]\ninit = [\"he-normal\"]\nsigmaw2 = [1.0]\n");
        assert!(e.contains("line 4") && e.contains("sigmaw2"), "{e}");
        let e = err("width = 8\n[grid]\nwidth = [1, 2]\n");
        assert!(e.contains("line 3") && e.contains("grid.width"), "{e}");
        let e = err("[grid]\ndepth = []\n");
        assert!(e.contains("line 2") && e.contains("empty"), "{e}");
        let e = err("[grid]\ndepth = [\"x\"]\n");
        assert!(e.contains("line 2") && e.contains("grid.depth"), "{e}");
        let e = err("width = 8\ndepth = [3\n");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn shards_come_from_the_flag_or_the_scheduler() {
        assert_eq!(
            Shard::parse("--shard", "1/3").unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert!(Shard::parse("--shard", "3/3").is_err());
        assert!(Shard::parse("--shard", "x").is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "64"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(
            Shard::from_env(slurm).unwrap(),
            Some((
                Shard {
                    index: 4,
                    count: 64
                },
                "Slurm"
            ))
        );
        let sge = env(&[
            ("SGE_TASK_ID", "3"),
            ("SGE_TASK_FIRST", "1"),
            ("SGE_TASK_LAST", "8"),
            ("SGE_TASK_STEPSIZE", "1"),
        ]);
        assert_eq!(
            Shard::from_env(sge).unwrap(),
            Some((Shard { index: 2, count: 8 }, "Grid Engine"))
        );
        assert_eq!(
            Shard::from_env(env(&[("SGE_TASK_ID", "undefined")])).unwrap(),
            None
        );
        assert!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "2")])).is_err());
    }

    #[test]
    fn summary_rows_are_sorted_by_their_settings() {
        let r = |id: &str, depth: u64, init: &str| {
            ResultSummary {
            id: id.into(),
            settings: serde_json::json!({"depth": depth, "init": init}).as_object().unwrap().clone(),
            headline: serde_json::json!({"log_q_last": -0.5, "comparisons": 3, "max_z_column": null, "depth": 9})
                .as_object()
                .unwrap()
                .clone(),
        }
        };
        let csv = summary_csv(&[r("b", 10, "x"), r("a", 2, "y"), r("c", 2, "x")]);
        assert_eq!(
            csv,
            "id,depth,init,log_q_last,comparisons,max_z_column,headline.depth\nc,2,x,-0.5,3,,9\na,2,y,-0.5,3,,9\nb,10,x,-0.5,3,,9\n"
        );
    }
}
