//! `compare`, `phase` and `--plot` as users run them: compare's numbers are
//! the runs' numbers, the phase diagram measures c = 1 on the ordered side
//! and c* on the chaotic side, and the plots are valid SVG/PNG with one
//! series per scheme (no pixel comparison).

mod common;

use common::{text, varprop_line};
use std::path::Path;
use std::process::Output;

fn temp_dir(name: &str) -> std::path::PathBuf {
    common::temp_dir(&format!("compare-{name}"))
}

/// The records of a CSV file as maps from column to field.
fn csv_records(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// The network and sample of every run here.
const SHAPE: &str = "--width 32 --depth 6 --batch 4 --networks 3 --seed 5";

/// Runs the words of `line`, then `extra` (flags with paths), and asserts
/// that it succeeds.
fn ok_line(line: &str, extra: &[&str]) -> Output {
    let out = varprop_line(line, extra);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{line} {extra:?}: {}",
        text(&out)
    );
    out
}

/// Runs `command` on SHAPE with the words of `flags`, then `extra` (flags
/// with paths), and asserts that it succeeds.
fn ok_with(command: &str, flags: &str, extra: &[&str]) -> Output {
    ok_line(&format!("{command} {SHAPE} {flags}"), extra)
}

/// Each command line fails with exit code 2 and one error line naming the flag.
fn each_names_its_flag(cases: &[(&str, &str)]) {
    for (args, flag) in cases {
        let out = varprop_line(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("error: "))
            .map(str::to_string)
            .collect();
        assert_eq!(errors.len(), 1, "{args:?}: {}", text(&out));
        assert!(
            errors[0].contains(flag),
            "{args:?} should name {flag}: {}",
            errors[0]
        );
    }
}

/// The polylines of an SVG with exactly `points` points: the measured
/// curves (axes have 2, dashes a few, legend samples 2).
fn curves_with(svg: &roxmltree::Document, points: usize) -> Vec<String> {
    svg.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| {
            n.attribute("points")
                .is_some_and(|p| p.split_whitespace().count() == points)
        })
        .map(|n| n.attribute("stroke").unwrap_or("").to_string())
        .collect()
}

fn texts(svg: &roxmltree::Document) -> Vec<String> {
    svg.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

/// Runs `command` on SHAPE with `flags`, its plot written to
/// `dir`/`name`.svg (and its table beside it), and returns the SVG.
fn plot_of(dir: &Path, name: &str, command: &str, flags: &str) -> String {
    let (svg, csv) = (
        dir.join(format!("{name}.svg")),
        dir.join(format!("{name}.csv")),
    );
    let (svg_arg, csv_arg) = (svg.to_str().unwrap(), csv.to_str().unwrap());
    ok_with(command, flags, &["--plot", svg_arg, "--out", csv_arg]);
    std::fs::read_to_string(&svg).unwrap()
}

/// The legend of each of the two panels has an entry `label`.
fn assert_in_each_panel(labels: &[String], label: &str) {
    assert_eq!(
        labels.iter().filter(|t| *t == label).count(),
        2,
        "legend entry {label} in each panel: {labels:?}"
    );
}

#[test]
fn run_and_check_plots_are_valid_svg_and_png() {
    let dir = temp_dir("plots");
    // run with the backward pass: two panels, one curve each
    let content = plot_of(&dir, "run", "run", "--backward");
    let svg = roxmltree::Document::parse(&content).expect("well-formed SVG");
    let root = svg.root_element();
    assert!(root.has_tag_name("svg"));
    assert_eq!(root.attribute("width"), Some("960"));
    assert_eq!(
        root.attribute("height"),
        Some("1040"),
        "title and two panels"
    );
    assert_eq!(curves_with(&svg, 7).len(), 2, "q and g, one curve each");
    let labels = texts(&svg);
    for label in ["relu / he-normal", "mean-field theory (dashed)"] {
        assert_in_each_panel(&labels, label);
    }
    assert!(labels.iter().any(|t| t == "layer l"), "axis label");
    assert!(
        labels.iter().any(|t| t.starts_with("q_post")),
        "y label names q_post"
    );

    // q_pre, without the backward pass: one panel
    let content = plot_of(&dir, "pre", "run", "--plot-quantity pre");
    let svg = roxmltree::Document::parse(&content).unwrap();
    assert_eq!(svg.root_element().attribute("height"), Some("540"));
    assert_eq!(curves_with(&svg, 7).len(), 1);
    assert!(
        texts(&svg).iter().any(|t| t.starts_with("q_pre")),
        "y label names q_pre"
    );

    // check writes one too; a PNG has the size of the SVG
    let png = dir.join("check.png");
    ok_with("check", "", &["--plot", png.to_str().unwrap()]);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (960, 540));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_plot_flags_name_the_flag() {
    each_names_its_flag(&[
        ("run --plot x.pdf", "--plot"),
        ("run --plot-quantity pre", "--plot-quantity"),
        ("check --plot x", "--plot"),
    ]);
}

#[test]
fn compare_gives_the_numbers_of_separate_runs() {
    let dir = temp_dir("same");
    let both = dir.join("both.csv");
    ok_with(
        "compare",
        "--inits xavier-normal,he-normal --backward",
        &["--out", both.to_str().unwrap()],
    );
    let rows = csv_records(&both);
    assert_eq!(rows.len(), 2 * 7, "every layer of both schemes");
    for init in ["xavier-normal", "he-normal"] {
        let alone = dir.join(format!("{init}.csv"));
        ok_with(
            "run",
            &format!("--init {init} --backward"),
            &["--out", alone.to_str().unwrap()],
        );
        let expected = csv_records(&alone);
        let got: Vec<_> = rows.iter().filter(|r| r["scheme"] == init).collect();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            for (column, value) in e {
                assert_eq!(
                    &g[column], value,
                    "{init}, layer {}, column {column}: compare and run differ",
                    e["layer"]
                );
            }
        }
    }
    // the table: one row per scheme, its headline numbers
    let out = ok_with(
        "compare",
        "--inits xavier-normal,he-normal --format table",
        &[],
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table.lines().any(|l| l.starts_with("xavier-normal")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("he-normal")), "{table}");
    // JSON: the headline of each scheme; xavier halves q every layer (relu)
    let json = dir.join("both.json");
    ok_with(
        "compare",
        "--inits xavier-normal,he-normal",
        &["--out", json.to_str().unwrap()],
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let slope = doc["schemes"][0]["headline"]["log_q_slope_theory"]
        .as_f64()
        .unwrap();
    assert!((slope + std::f64::consts::LN_2).abs() < 1e-9, "{slope}");
    assert_eq!(doc["layers"].as_array().unwrap().len(), 14);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_compare_plot_has_one_series_per_scheme_in_each_panel() {
    let dir = temp_dir("compare-plot");
    let flags = "--inits xavier-normal,he-normal --backward";
    let content = plot_of(&dir, "compare", "compare", flags);
    let svg = roxmltree::Document::parse(&content).expect("well-formed SVG");
    assert_eq!(svg.root_element().attribute("height"), Some("1040"));
    let curves = curves_with(&svg, 7);
    assert_eq!(
        curves.len(),
        4,
        "2 schemes x (q panel + g panel): {curves:?}"
    );
    assert_eq!(
        curves[0], curves[2],
        "a scheme keeps its colour in both panels"
    );
    assert_ne!(curves[0], curves[1], "schemes have their own colours");
    let labels = texts(&svg);
    for label in ["xavier-normal", "he-normal", "mean-field theory (dashed)"] {
        assert_in_each_panel(&labels, label);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_compare_flags_name_the_flag() {
    each_names_its_flag(&[
        ("compare", "--inits"),
        ("compare --inits he-normal,he-normal", "--inits"),
        ("compare --inits he-normal,kaiming-magic", "--inits"),
        ("compare --acts relu,swish2", "--acts"),
        ("compare --sigma-w2s 1,x", "--sigma-w2s"),
        ("compare --inits he-normal --sigma-w2s 2", "--sigma-w2s"),
        ("compare --inits he-normal --init xavier-normal", "--init"),
        ("compare --inits he-normal --plot c.jpg", "--plot"),
    ]);
}

#[test]
fn phase_measures_order_and_chaos_for_erf() {
    let dir = temp_dir("phase");
    let csv = dir.join("phase.csv");
    // sigma_w2 0.5 is ordered (chi_1 < 1) and 4 chaotic (chi_1 > 1) at both
    // biases; depth 20 is several times the depth scale xi_c (< 6) there
    ok_line(
        "phase --act erf --width 64 --depth 20 --batch 8 --networks 16 \
         --sigma-w2-range 0.5:4:2 --sigma-b2-range 0.05:0.2:2",
        &["--out", csv.to_str().unwrap()],
    );
    let rows = csv_records(&csv);
    assert_eq!(rows.len(), 4);
    let num = |r: &std::collections::BTreeMap<String, String>, c: &str| -> f64 {
        r[c].parse().unwrap_or_else(|_| panic!("{c}: {:?}", r[c]))
    };
    // Bonferroni over the 4 points, Student t with 15 degrees of freedom
    let bound = varprop::analysis::comparisons::z_bound(
        4,
        16,
        varprop::analysis::comparisons::FALSE_FAILURE_RATE,
    );
    for r in &rows {
        let (chi1, c, se) = (num(r, "chi1"), num(r, "c_last"), num(r, "c_last_se"));
        let c_layer = num(r, "c_last_theory");
        let at = format!("sigma_w2 {}, sigma_b2 {}", r["sigma_w2"], r["sigma_b2"]);
        if num(r, "sigma_w2") < 1.0 {
            assert!(chi1 < 1.0, "{at}: ordered");
            assert_eq!(num(r, "c_star"), 1.0);
            // c has converged to 1 (in theory to 1e-4 at this depth), and the
            // measurement agrees with the theory at layer L within its SE
            assert!(c_layer > 1.0 - 1e-4, "{at}: {c_layer}");
            assert!(
                (c - c_layer).abs() <= bound * se,
                "{at}: c {c} ± {se} vs {c_layer}"
            );
        } else {
            assert!(chi1 > 1.0, "{at}: chaotic");
            let c_star = num(r, "c_star");
            assert!(
                c_star < 0.5,
                "{at}: the chaotic fixed point is far from 1: {c_star}"
            );
            // depth 20 is deep enough: the theory at layer L is within an SE of c*
            assert!((c_layer - c_star).abs() < se, "{at}: {c_layer} vs {c_star}");
            assert!(
                (c - c_star).abs() <= bound * se,
                "{at}: c {c} ± {se} vs c* {c_star}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_phase_plot_draws_two_heatmaps_and_the_edge_of_chaos() {
    let dir = temp_dir("phase-plot");
    let phase = dir.join("phase.svg");
    let csv = dir.join("p.csv");
    ok_line(
        "phase --act erf --width 16 --depth 3 --batch 4 --networks 2 \
         --sigma-w2-range 0.5:3:3 --sigma-b2-range 0:0.2:2",
        &[
            "--plot",
            phase.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    let content = std::fs::read_to_string(&phase).unwrap();
    let svg = roxmltree::Document::parse(&content).expect("well-formed SVG");
    let labels = texts(&svg);
    for title in ["measured: mean over networks", "mean-field theory"] {
        assert!(labels.iter().any(|t| t == title), "{title}: {labels:?}");
    }
    assert_eq!(
        labels.iter().filter(|t| t.starts_with("χ₁ = 1")).count(),
        2,
        "the edge of chaos in the legend of both panels: {labels:?}"
    );
    // the edge crosses the chart: a line of many points in each panel
    let red_lines = svg
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some("#D62728"))
        .filter(|n| {
            n.attribute("points")
                .is_some_and(|p| p.split_whitespace().count() > 10)
        })
        .count();
    assert_eq!(red_lines, 2, "{content}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_phase_flags_name_the_flag() {
    each_names_its_flag(&[
        ("phase --sigma-w2-range 2:1:3", "--sigma-w2-range"),
        ("phase --sigma-b2-range 0:1", "--sigma-b2-range"),
        ("phase --sigma-w2 1.0", "--sigma-w2"),
        ("phase --init he-normal", "--init"),
        ("phase --plot-quantity pre --plot p.svg", "--plot-quantity"),
        ("phase --networks 1", "--networks"),
    ]);
}
