//! A table with leading text columns (a scheme's name, a configuration's
//! settings) before the numeric cells of a [`Table`].

use super::{Cell, Table, column_widths, format_cell};

#[derive(Clone, Debug, Default)]
pub struct LabelledTable {
    /// Names of the text columns, written first.
    pub label_columns: Vec<String>,
    /// One entry per row, one string per text column ("" for none).
    pub labels: Vec<Vec<String>>,
    /// The numeric columns, the same number of rows.
    pub table: Table,
}

impl LabelledTable {
    /// Rows of several tables under one header: the union of their columns
    /// in the order first seen, empty where a table lacks a column. Every row
    /// of `tables[i]` gets the labels `labels[i]`.
    pub fn stack(label_columns: Vec<String>, parts: Vec<(Vec<String>, Table)>) -> LabelledTable {
        let mut columns: Vec<String> = Vec::new();
        for (_, t) in &parts {
            for c in &t.columns {
                if !columns.contains(c) {
                    columns.push(c.clone());
                }
            }
        }
        let mut labels = Vec::new();
        let mut rows = Vec::new();
        for (label, t) in parts {
            let index: Vec<Option<usize>> = columns.iter().map(|c| t.column(c)).collect();
            for row in t.rows {
                labels.push(label.clone());
                rows.push(
                    index
                        .iter()
                        .map(|i| i.map_or(Cell::Empty, |i| row[i]))
                        .collect(),
                );
            }
        }
        LabelledTable {
            label_columns,
            labels,
            table: Table { columns, rows },
        }
    }

    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(self.label_columns.iter().chain(&self.table.columns))
            .expect("in-memory csv");
        for (label, row) in self.labels.iter().zip(&self.table.rows) {
            w.write_record(label.iter().cloned().chain(row.iter().map(Cell::csv)))
                .expect("in-memory csv");
        }
        String::from_utf8(w.into_inner().expect("in-memory csv")).expect("csv is utf-8")
    }

    pub fn rows_json(&self) -> serde_json::Value {
        self.labels
            .iter()
            .zip(&self.table.rows)
            .map(|(label, row)| {
                let mut map = serde_json::Map::new();
                for (c, l) in self.label_columns.iter().zip(label) {
                    map.insert(c.clone(), l.clone().into());
                }
                for (c, v) in self.table.columns.iter().zip(row) {
                    map.insert(c.clone(), v.json());
                }
                serde_json::Value::Object(map)
            })
            .collect()
    }

    /// Aligned text: the text columns left-aligned, then the numeric
    /// (header, column, optional ± column) cells as `Table::to_text` shows
    /// them; every row.
    pub fn to_text(&self, shown: &[(&str, &str, Option<&str>)]) -> String {
        let numeric = self.table.to_text(shown, 1);
        let mut label_rows: Vec<Vec<String>> = vec![self.label_columns.clone()];
        label_rows.extend(self.labels.iter().cloned());
        let widths = column_widths(&label_rows, self.label_columns.len());
        let mut out = String::new();
        for (label, line) in label_rows.iter().zip(numeric.lines()) {
            let left: Vec<String> = label
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s:<w$}"))
                .collect();
            out.push_str(&left.join("  "));
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// One cell as a table shows it (for messages).
    pub fn cell_text(&self, row: usize, column: &str) -> String {
        self.table
            .column(column)
            .map_or("-".into(), |i| format_cell(self.table.rows[row][i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_tables_share_one_header() {
        let a = Table {
            columns: vec!["layer".into(), "q".into()],
            rows: vec![vec![Cell::Int(0), Cell::Num(1.0)]],
        };
        let b = Table {
            columns: vec!["layer".into(), "g".into()],
            rows: vec![vec![Cell::Int(0), Cell::Num(2.5)]],
        };
        let t = LabelledTable::stack(
            vec!["scheme".into()],
            vec![(vec!["a".into()], a), (vec!["b, c".into()], b)],
        );
        assert_eq!(t.to_csv(), "scheme,layer,q,g\na,0,1.0,\n\"b, c\",0,,2.5\n");
        let j = t.rows_json();
        assert_eq!(j[1]["scheme"], "b, c");
        assert!(j[1]["q"].is_null());
        let text = t.to_text(&[("layer", "layer", None), ("g", "g", None)]);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().nth(2).unwrap().starts_with("b, c"), "{text}");
    }
}
