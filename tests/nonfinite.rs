//! f32 overflow in a run whose q grows (relu, sigma_w^2 = 4): the warning
//! names the first layer where any column stops being finite, with that
//! column, and no row prints a finite number (0 or otherwise) for a
//! statistic it could not compute. Issue 15.

mod common;

/// relu with sigma_w^2 = 4 doubles q per layer: the f32 sums of h^4
/// overflow near layer 58, those of h^2 near layers 120-130.
const GROWING: &str = "run --act relu --init custom --sigma-w2 4 --sigma-b2 0.1 --depth 140 \
     --width 64 --networks 2 --format csv -q";

struct Csv {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Csv {
    fn parse(text: &str) -> Csv {
        let mut lines = text.lines();
        let columns = lines.next().unwrap().split(',').map(String::from).collect();
        let rows = lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        Csv { columns, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    /// The value of a column at a row (None where empty).
    fn get(&self, row: usize, name: &str) -> Option<f64> {
        let s = &self.rows[row][self.col(name)];
        (!s.is_empty()).then(|| s.parse().unwrap())
    }

    /// The measured columns (not theory, z, layer or width).
    fn measured(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| {
                !c.ends_with("_theory") && !c.ends_with("_z") && *c != "layer" && *c != "width"
            })
            .cloned()
            .collect()
    }
}

/// "network S: ... at layer L, first in COLUMN ..." -> (S, L, COLUMN)
fn warnings(stderr: &str) -> Vec<(usize, usize, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("warning: network "))
        .map(|l| {
            let s = l.split(':').next().unwrap().parse().unwrap();
            let after = l.split("at layer ").nth(1).expect("names the layer");
            let layer = after
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let column = l
                .split("first in ")
                .nth(1)
                .expect("names the column")
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
                .unwrap()
                .to_string();
            (s, layer, column)
        })
        .collect()
}

#[test]
fn overflow_is_reported_at_the_first_non_finite_column() {
    let out = common::varprop_line(GROWING, &[]);
    assert!(out.status.success(), "{}", common::text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let csv = Csv::parse(&String::from_utf8_lossy(&out.stdout));
    let measured = csv.measured();

    // the first row where some measured column is not finite
    let first_bad = (0..csv.rows.len())
        .find(|&r| {
            measured
                .iter()
                .any(|c| csv.get(r, c).is_some_and(|v| !v.is_finite()))
        })
        .expect("this run overflows");
    // never an infinity: a column that overflowed is NaN, not inf
    for r in 0..csv.rows.len() {
        for c in &measured {
            if let Some(v) = csv.get(r, c) {
                assert!(
                    v.is_finite() || v.is_nan() || c.starts_with("log1m_c"),
                    "row {r}: {c} = {v}"
                );
            }
        }
    }
    // kurtosis (f32 sums of h^4) goes first, long before q
    assert!(
        csv.get(first_bad, "q_pre_mean").unwrap().is_finite(),
        "q is still finite at row {first_bad}"
    );
    assert!(csv.get(first_bad, "kurt_pre_mean").unwrap().is_nan());

    let warned = warnings(&stderr);
    let networks: Vec<usize> = warned.iter().map(|w| w.0).collect();
    assert_eq!(networks, [0, 1], "one warning per network:\n{stderr}");
    let earliest = warned.iter().map(|w| w.1).min().unwrap();
    assert_eq!(
        earliest, first_bad,
        "the warning names the first non-finite row:\n{stderr}"
    );
    for (s, _, column) in &warned {
        assert_eq!(column, "kurt_pre", "network {s}:\n{stderr}");
    }
}

#[test]
fn rows_past_overflow_print_no_finite_statistic() {
    let out = common::varprop_line(GROWING, &[]);
    assert!(out.status.success(), "{}", common::text(&out));
    let csv = Csv::parse(&String::from_utf8_lossy(&out.stdout));
    let nan_rows: Vec<usize> = (0..csv.rows.len())
        .filter(|&r| csv.get(r, "q_pre_mean").unwrap().is_nan())
        .collect();
    assert!(!nan_rows.is_empty(), "this run overflows in q");
    for &r in &nan_rows {
        for c in csv.measured() {
            let v = csv.get(r, &c);
            assert!(
                v.is_none_or(|v| v.is_nan()),
                "row {r} (q is NaN): {c} = {v:?}"
            );
        }
    }
}

#[test]
fn gradients_through_an_overflowed_layer_are_nan_on_every_row() {
    // the backward pass starts at the top, through the rows that overflowed,
    // so no row's g or gw is known
    let line = GROWING.replace("--depth 140", "--depth 135") + " --backward --weight-grads";
    let out = common::varprop_line(&line, &[]);
    assert!(out.status.success(), "{}", common::text(&out));
    let csv = Csv::parse(&String::from_utf8_lossy(&out.stdout));
    assert!(csv.get(csv.rows.len() - 1, "q_pre_mean").unwrap().is_nan());
    for r in 0..csv.rows.len() {
        for c in [
            "g_mean",
            "g_se",
            "log_g_mean",
            "log_g_std",
            "gw_mean",
            "gw_se",
        ] {
            let v = csv.get(r, c);
            assert!(v.is_none_or(|v| v.is_nan()), "row {r}: {c} = {v:?}");
        }
    }
}

#[test]
fn a_theory_value_that_is_zero_by_symmetry_is_exactly_zero() {
    // relu at c = -1: relu(z) relu(-z) = 0, so E[phi(u1) phi(u2)] = 0 and
    // c_pre at layer 2 is exactly 0 (acos(-1) = pi, but sin(pi) is 1.2e-16
    // in f64: printed as 3.898e-17 before)
    let out = common::varprop_line("theory --depth 3 --width 64 --c0 -1", &[]);
    assert!(out.status.success(), "{}", common::text(&out));
    let csv = Csv::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(csv.get(1, "c_pre_theory"), Some(-1.0));
    assert_eq!(csv.get(2, "c_pre_theory"), Some(0.0));
    let out = common::varprop_line(
        "run --depth 3 --width 64 --c0 -1 --networks 2 --format csv -q",
        &[],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let csv = Csv::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(csv.get(2, "c_pre_theory"), Some(0.0));
}
