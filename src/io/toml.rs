//! TOML text into typed records, with errors that name the file, the line
//! and the key (settings, suites, sweeps and architecture files use it).
//!
//! The settings records flatten shared groups of keys (the init keys into
//! the network's, the network's into a run's), and serde cannot deny
//! unknown fields through a flatten. So a record is read leniently and
//! written back: a key of the file that the record does not give back is
//! one no field took, and that is an error. (Every field of the records is
//! an Option skipped when None, or always written, so a key that was taken
//! always comes back; `-` and `_` spell the same key.)

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parses TOML text into `T`, with errors that name the file, the line and
/// the key; a key `T` does not take is an error.
pub fn parse_toml<T: for<'de> Deserialize<'de> + Serialize>(path: &str, text: &str) -> Result<T> {
    let value: T = toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
    let given: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
    let taken = toml::Table::try_from(&value)
        .map_err(|e| Error::invalid(path, format!("cannot write back: {e}")))?;
    match first_unknown(&given, &taken) {
        Some(key) => Err(unknown_key(path, text, &key)),
        None => Ok(value),
    }
}

/// The first key of `given` (depth first, through tables and arrays of
/// tables) that `taken` lacks, as a dotted path.
pub fn first_unknown(given: &toml::Table, taken: &toml::Table) -> Option<String> {
    for (key, value) in given {
        let Some(back) = taken.get(key).or_else(|| taken.get(&key.replace('_', "-"))) else {
            return Some(key.clone());
        };
        let inner = match (value, back) {
            (toml::Value::Table(g), toml::Value::Table(t)) => first_unknown(g, t),
            (toml::Value::Array(g), toml::Value::Array(t)) => {
                g.iter().zip(t).find_map(|pair| match pair {
                    (toml::Value::Table(g), toml::Value::Table(t)) => first_unknown(g, t),
                    _ => None,
                })
            }
            _ => None,
        };
        if let Some(path) = inner {
            return Some(format!("{key}.{path}"));
        }
    }
    None
}

/// The error of a TOML parse or type error, at its line.
pub fn toml_error(path: &str, text: &str, e: toml::de::Error) -> Error {
    let line = e.span().map(|s| line_of(text, s.start));
    let message = e.message().trim().to_string();
    Error::invalid(
        path.to_string(),
        match line {
            Some(line) => format!("line {line}: {message}"),
            None => message,
        },
    )
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// "line N: unknown key `k`" for a dotted `key` (`case.widht`): the line is
/// the first that sets the key's last part.
pub fn unknown_key(path: &str, text: &str, key: &str) -> Error {
    let name = key.rsplit('.').next().unwrap_or(key);
    let line = text.lines().position(|l| {
        let l = l.trim_start();
        l.strip_prefix(name)
            .or_else(|| l.strip_prefix(&format!("\"{name}\"")))
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    });
    let message = format!("unknown key `{name}`");
    Error::invalid(
        path.to_string(),
        match line {
            Some(i) => format!("line {}: {message}", i + 1),
            None => message,
        },
    )
}
