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
//! Shards: configuration k (in grid order) belongs to shard k mod N
//! ([`Shard`]); [`results`] has the result files and the summary.

pub mod driver;
pub mod lock;
pub mod merge;
mod results;
mod shard;

pub use results::{ResultSummary, read_result, result_document, summary_csv};
pub use shard::Shard;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::config::settings::RunSettings;
use crate::error::{Error, Result};
use crate::io::toml::{line_of, toml_error, unknown_key};
use crate::spec::RunSpec;
use serde::Deserialize;

/// A parsed sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepFile {
    pub fixed: RunSettings,
    /// One axis per grid key: the key's canonical name and one single-key
    /// setting per value.
    pub axes: Vec<(String, Vec<RunSettings>)>,
}

/// The settings' JSON object (only the settings that are set).
fn settings_object(settings: &RunSettings) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(settings).expect("settings serialise") {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("a struct serialises to an object"),
    }
}

/// An error naming the first of `keys` that `settings` did not take (the
/// records flatten groups of keys, through which serde cannot deny unknown
/// ones; see `io::toml`).
fn refuse_unknown<'a>(
    path: &str,
    text: &str,
    settings: &RunSettings,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let taken = settings_object(settings);
    match keys
        .into_iter()
        .find(|k| !taken.contains_key(*k) && !taken.contains_key(&k.replace('_', "-")))
    {
        Some(key) => Err(unknown_key(path, text, key)),
        None => Ok(()),
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
    let given_keys: Vec<String> = fixed_table
        .keys()
        .map(|k| k.get_ref().to_string())
        .collect();
    let fixed = RunSettings::deserialize(toml::de::Deserializer::from(Spanned::new(
        span,
        fixed_table,
    )))
    .map_err(|e| toml_error(path, text, e))?;
    refuse_unknown(path, text, &fixed, given_keys.iter().map(String::as_str))?;
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
    let grid_empty = match grid.as_ref().map(|g| g.get_ref()) {
        None => true,
        Some(DeValue::Table(t)) => t.is_empty(),
        Some(_) => false,
    };
    if given_keys.is_empty() && grid_empty {
        return Err(at(
            grid.as_ref().map_or(0, |g| g.span().start),
            "no settings: give fixed ones at the top (e.g. width = 256), lists under [grid] (e.g. seed = [0, 1]), or both".into(),
        ));
    }
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
                DeValue::Table(_) => {
                    return Err(at(
                        key_start,
                        format!(
                            "grid.{}: a table where a list of values belongs, e.g. seed = [0, 1]",
                            key.get_ref()
                        ),
                    ));
                }
                _ => {
                    let k = key.get_ref();
                    let v = text.get(value_span.clone()).unwrap_or("...").trim();
                    return Err(at(
                        key_start,
                        format!(
                            "grid.{k}: one value where a list belongs: write {k} = [{v}], or set it above [grid] as a fixed setting"
                        ),
                    ));
                }
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
                .map_err(|e| toml_error(path, text, e))
                .and_then(|s| {
                    refuse_unknown(path, text, &s, [key.get_ref().as_ref()])?;
                    Ok(s)
                })
                .map_err(|e| match e {
                    Error::Invalid { flag, message } => {
                        Error::invalid(flag, format!("{message} (grid.{})", key.get_ref()))
                    }
                    other => other,
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
            "width = 8\ndepth = 2\nbatch = 16\nseed = 0\n[grid]\ninit = [\"xavier-normal\"]\nsigma_b2 = [0]\n",
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
        let e = err("width = 8\n\n[grid]\nseed = 3\n");
        assert!(
            e.starts_with(
                "s.toml: line 4: grid.seed: one value where a list belongs: write seed = [3]"
            ),
            "{e}"
        );
        let e = err("[grid]\nseed = { a = 1 }\n");
        assert!(e.contains("line 2") && e.contains("grid.seed"), "{e}");
        for empty in ["", "# nothing yet\n", "\n[grid]\n"] {
            let e = err(empty);
            assert!(
                e.starts_with("s.toml: line ") && e.contains("no settings"),
                "{e}"
            );
        }
    }
}
