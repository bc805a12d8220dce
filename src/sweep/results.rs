//! A sweep's result files (one per configuration, named by its id) and
//! the summary of a set of them.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Configuration, config_id};
use crate::analysis::headline::Headline;
use crate::error::{Error, Result};

/// The result file of one configuration: `{id, settings, headline,
/// config, layers}` as pretty JSON.
pub fn result_document(
    configuration: &Configuration,
    headline: &Headline,
    config: serde_json::Value,
    layers: serde_json::Value,
    ntk: Option<serde_json::Value>,
) -> String {
    let settings: serde_json::Value =
        serde_json::from_str(&configuration.canonical).expect("canonical json");
    let mut doc = serde_json::json!({
        "id": configuration.id,
        "settings": settings,
        "headline": headline,
        "config": config,
        "layers": layers,
    });
    // with --ntk, the kernel's summary as `run --format json` writes it
    if let Some(ntk) = ntk {
        doc["ntk"] = ntk;
    }
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
    // column names with underscores, as every other table has them
    // (`sigma_b2`; the settings' keys in the result files keep the flags'
    // spelling, from which the ids are hashed)
    let setting_names: Vec<String> = setting_keys.iter().map(|k| k.replace('-', "_")).collect();
    // a headline number named like a setting keeps the settings' column
    // unique
    let headline_names: Vec<String> = headline_keys
        .iter()
        .map(|k| {
            if setting_names.contains(k) {
                format!("headline.{k}")
            } else {
                k.to_string()
            }
        })
        .collect();
    let header = std::iter::once("id")
        .chain(setting_names.iter().map(String::as_str))
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
