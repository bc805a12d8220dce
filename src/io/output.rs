//! Output: one table type, written as an aligned table for people, CSV for
//! pandas, or JSON (`{"config": {...}, "layers": [...]}`) for scripts.
//! Files are written to a temporary name and renamed, so a failed run never
//! leaves a half-written result behind.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::error::{Error, Result};

mod labelled;
pub use labelled::LabelledTable;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    Int(u64),
    Num(f64),
    /// No value (e.g. no theory for this column): an empty CSV field, JSON null.
    Empty,
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Cell::Empty, Cell::Num)
    }
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            // shortest representation that reads back to the same f64
            Cell::Num(v) => format!("{v:?}"),
            Cell::Empty => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Int(i) => (*i).into(),
            Cell::Num(v) if v.is_finite() => (*v).into(),
            // JSON has no NaN or infinity: null, as for a missing value
            Cell::Num(_) | Cell::Empty => serde_json::Value::Null,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Num(v) => Some(*v),
            Cell::Empty => None,
        }
    }
}

/// Named columns, one row per layer.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The values of one column (None where empty).
    pub fn values(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let i = self.column(name)?;
        Some(self.rows.iter().map(|r| r[i].as_f64()).collect())
    }

    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.columns).expect("in-memory csv");
        for row in &self.rows {
            w.write_record(row.iter().map(Cell::csv))
                .expect("in-memory csv");
        }
        String::from_utf8(w.into_inner().expect("in-memory csv")).expect("csv is utf-8")
    }

    pub fn rows_json(&self) -> serde_json::Value {
        self.rows
            .iter()
            .map(|row| {
                let map: serde_json::Map<String, serde_json::Value> = self
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().map(Cell::json))
                    .collect();
                serde_json::Value::Object(map)
            })
            .collect()
    }

    /// Aligned text with the given (header, column, optional ± column) cells.
    /// Shows every `every`-th row, and always the last.
    pub fn to_text(&self, shown: &[(&str, &str, Option<&str>)], every: usize) -> String {
        let every = every.max(1);
        let last = self.rows.len().saturating_sub(1);
        let picked: Vec<usize> = (0..self.rows.len())
            .filter(|i| i % every == 0 || *i == last)
            .collect();
        let mut cells: Vec<Vec<String>> =
            vec![shown.iter().map(|(h, _, _)| h.to_string()).collect()];
        for &r in &picked {
            let row = &self.rows[r];
            cells.push(
                shown
                    .iter()
                    .map(|(_, col, pm)| {
                        let v = self.column(col).map(|i| row[i]).unwrap_or(Cell::Empty);
                        let mut s = format_cell(v);
                        if let Some(pm) = pm {
                            if let Some(Cell::Num(e)) = self.column(pm).map(|i| row[i]) {
                                if e.is_finite() {
                                    s = format!("{s} ± {}", format_se(e));
                                }
                            }
                        }
                        s
                    })
                    .collect(),
            );
        }
        let widths = column_widths(&cells, shown.len());
        let mut out = String::new();
        for row in &cells {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s:>w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        if every > 1 {
            out.push_str(&format!(
                "(one row every {every} layers, and the last; --every 1 shows all)\n"
            ));
        }
        out
    }
}

/// A standard error in a table: two significant digits are all it has.
fn format_se(e: f64) -> String {
    let a = e.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (1 - a.log10().floor() as i32).max(0) as usize;
        format!("{e:.decimals$}")
    } else {
        format!("{e:.1e}")
    }
}

/// The widest cell of each of the first `columns` columns, in characters.
fn column_widths(cells: &[Vec<String>], columns: usize) -> Vec<usize> {
    (0..columns)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

fn format_cell(c: Cell) -> String {
    match c {
        Cell::Int(i) => i.to_string(),
        Cell::Num(v) => format_num(v),
        Cell::Empty => "-".into(),
    }
}

/// Four significant digits, scientific outside [1e-3, 1e5).
pub fn format_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e5).contains(&a) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// The format when `--format` is not given: from the file's extension, else
/// a table on a terminal and CSV into a pipe.
pub fn pick_format(explicit: Option<Format>, out: Option<&Path>) -> Format {
    if let Some(f) = explicit {
        return f;
    }
    match out.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some(_) => Format::Csv,
        None if out.is_some() => Format::Csv,
        None if std::io::stdout().is_terminal() => Format::Table,
        None => Format::Csv,
    }
}

/// Writes `text` to `out` atomically (temporary file, then rename), or to
/// stdout.
pub fn write_output(out: Option<&Path>, text: &str) -> Result<()> {
    match out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::Io {
                    path: "stdout".into(),
                    source: e,
                })
        }
        Some(path) => write_atomic(path, text.as_bytes()),
    }
}

/// Writes `bytes` to `path` atomically: see [`write_atomic_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Writes `path` atomically: `fill` writes the content into a temporary
/// file beside it (`.NAME.tmp-PID`), which is synced to disk and renamed
/// over `path`. When any step fails (creating the temporary file, `fill`,
/// the sync, the rename; a full disk, a missing or unwritable directory,
/// `path` a directory) or `fill` panics, the temporary file is removed and
/// `path` is left as it was: absent, or with its old content.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let io = |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("--out", "needs a file name"))?;
    let tmp = TempFile(path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    )));
    let mut file = std::fs::File::create(&tmp.0).map_err(io)?;
    fill(&mut file).and_then(|()| file.sync_all()).map_err(io)?;
    drop(file);
    std::fs::rename(&tmp.0, path).map_err(io)?;
    // renamed: nothing left to remove
    std::mem::forget(tmp);
    Ok(())
}

/// A temporary file that is removed when dropped (on every failure path of
/// [`write_atomic_with`], panics included).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_agree() {
        let t = Table {
            columns: vec!["layer".into(), "q".into(), "theory".into()],
            rows: vec![
                vec![Cell::Int(0), Cell::Num(0.1), Cell::Empty],
                vec![Cell::Int(1), Cell::Num(f64::NAN), Cell::Num(2.0)],
            ],
        };
        assert_eq!(t.to_csv(), "layer,q,theory\n0,0.1,\n1,NaN,2.0\n");
        let j = t.rows_json();
        assert_eq!(j[0]["q"], 0.1);
        assert!(j[0]["theory"].is_null() && j[1]["q"].is_null());
    }
}
