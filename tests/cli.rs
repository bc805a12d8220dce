//! The binary: bad input gets one line naming the flag and exit code 2, and
//! leaves no output file; good input writes CSV and JSON a script can load.

mod common;

use common::{text, varprop, varprop_line};
use std::process::Command;

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one `error:` line of stderr (Mesa may print its own noise too).
fn error_line(out: &std::process::Output) -> String {
    stderr_of(out)
        .lines()
        .filter(|l| l.starts_with("error: ") && !l.contains("XDG_RUNTIME_DIR"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bad_input_names_the_flag_and_exits_2() {
    let dir = common::temp_dir("cli");
    let out_file = dir.join("result.csv");
    let out_path = out_file.to_str().unwrap();
    // the arguments after `run --out FILE`, and the flag the error names
    let cases: &[(&str, &str)] = &[
        ("--width 0", "--width"),
        ("--depth 0", "--depth"),
        ("--batch 0", "--batch"),
        ("--batch 3", "--batch"),
        ("--networks 0", "--networks"),
        ("--act swish2", "--act"),
        ("--init kaiming-magic", "--init"),
        ("--sigma-w2 -1", "--sigma-w2"),
        ("--sigma-b2 -0.5", "--sigma-b2"),
        ("--init he-normal --sigma-w2 2", "--sigma-w2"),
        ("--c0 1.5", "--c0"),
        ("--c0 -2", "--c0"),
        ("--q0 0", "--q0"),
        ("--widths 10", "--widths"),
        ("--widths 10,0", "--widths"),
        ("--widths 10,abc", "--widths"),
        ("--init custom", "--sigma-w2"),
        ("--alpha 0.1", "--alpha"),
        ("--dist uniform", "--dist"),
        ("--fan-mode fan_out --init xavier-normal", "--fan-mode"),
        ("--gain 0", "--gain"),
        // the dense engine's weight matrix over the adapter's limit (auto
        // would run these on the gram engine, which has none)
        ("--width 40000 --depth 1 --engine dense", "--width"),
        ("--widths 100,6000,6000 --engine dense", "--widths"),
        // an explicit engine that would not run (issue 13's review found
        // dense silently ignored with an architecture)
        ("--arch architectures/dense.toml --engine dense", "--engine"),
        (
            "--width 16 --depth 2 --bias mean-preserving --engine dense",
            "--engine",
        ),
    ];
    for (args, flag) in cases {
        let mut all = vec!["run", "--out", out_path];
        all.extend(args.split_whitespace());
        let out = varprop(&all);
        let line = error_line(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            line.contains(flag),
            "{args:?}: the message should name {flag}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "{args:?}: one line: {line}");
        assert!(!out_file.exists(), "{args:?} left an output file");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clap_rejects_malformed_numbers_with_exit_2() {
    let out = varprop(&["run", "--width", "-3"]);
    assert_eq!(out.status.code(), Some(2));
    let out = varprop(&["run", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn no_adapter_says_what_to_install() {
    // An ICD list that names no driver: the Vulkan loader finds no device.
    let without_driver = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_varprop"))
            .args([
                "run", "--width", "8", "--depth", "1", "--device", device, "-q",
            ])
            .env("VK_ICD_FILENAMES", "/nonexistent.json")
            .env("VK_DRIVER_FILES", "/nonexistent.json")
            .env("WGPU_BACKEND", "vulkan")
            .output()
            .unwrap()
    };
    // --device gpu: an error saying what to install
    let out = without_driver("gpu");
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.contains("mesa-vulkan-drivers") && line.contains("--device cpu"),
        "{line}"
    );
    // --device auto (the default): the CPU reference runs, with a notice
    let out = without_driver("auto");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    let notice = said
        .lines()
        .find(|l| l.starts_with("notice:"))
        .unwrap_or("");
    assert!(
        notice.contains("CPU reference") && notice.contains("mesa-vulkan-drivers"),
        "{said}"
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("layer,width,q_pre_mean"), "{csv}");
    assert_eq!(csv.lines().count(), 3);
}

#[test]
fn csv_and_json_outputs_are_complete() {
    let dir = common::temp_dir("out");
    let csv_path = dir.join("r.csv");
    let json_path = dir.join("r.json");
    for path in [&csv_path, &json_path] {
        let out = varprop_line(
            "run --width 16 --depth 3 --batch 4 --networks 2 --out",
            &[path.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let header = csv.lines().next().unwrap();
    let contract = "layer,width,q_pre_mean,q_pre_se,log_q_pre_mean,log_q_pre_std,q_post_mean,q_post_se,log_q_post_mean,log_q_post_std,mean_pre_mean";
    assert!(header.starts_with(contract), "{header}");
    for col in [
        "mean_post_mean",
        "kurt_pre_mean",
        "zero_frac_mean",
        "c_pre_mean",
        "c_pre_se",
    ] {
        assert!(header.split(',').any(|c| c == col), "missing {col}");
    }
    assert_eq!(csv.lines().count(), 1 + 4, "header and rows 0..=3");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["config"]["depth"], 3);
    assert_eq!(json["config"]["seed"], 0);
    assert!(json["config"]["adapter"].is_string());
    assert_eq!(json["layers"].as_array().unwrap().len(), 4);
    assert_eq!(json["layers"][0]["layer"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overflow_is_reported_with_its_layer_and_rows_turn_nan() {
    // q grows about 500-fold per layer: f32 overflows near layer 14
    let out = varprop_line(
        "run --act relu --sigma-w2 1000 --sigma-b2 0.1 --width 16 --depth 30 --batch 2 --networks 2 --format csv",
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let warning = stderr_of(&out)
        .lines()
        .find(|l| l.starts_with("warning: network 0"))
        .map(String::from)
        .unwrap_or_default();
    assert!(
        warning.contains("non-finite") && warning.contains("at layer"),
        "{}",
        stderr_of(&out)
    );
    // the first layer where any column overflowed (kurt_pre's sum of h^4
    // goes first), then the one from which q and every column are NaN
    let number_after = |text: &str| -> usize {
        let after = warning.split(text).nth(1).expect(text);
        after.split([' ', ',']).next().unwrap().parse().unwrap()
    };
    let first = number_after("at layer ");
    let layer = number_after("every column from layer ");
    assert!(first <= layer, "{warning}");
    assert!((5..30).contains(&layer), "{warning}");
    let csv = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(
        rows[layer - 1]
            .split(',')
            .nth(2)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            .is_finite()
    );
    assert!(
        rows[layer].split(',').nth(2).unwrap() == "NaN",
        "{}",
        rows[layer]
    );
    assert!(rows[29].split(',').nth(2).unwrap() == "NaN");
}

/// `varprop spp` writes the SPP columns (CSV) and its three-panel plot, and
/// refuses a run without an architecture file.
#[test]
fn spp_writes_its_columns_and_plot() {
    let dir = common::temp_dir("spp");
    let arch = dir.join("bn.toml");
    std::fs::write(
        &arch,
        "input = { channels = 2, size = 4 }\nblock = [\n  { type = \"conv\", channels = 3, kernel = 3, act = \"identity\" },\n  { type = \"residual\", repeat = 2, layer = [{ type = \"batch-norm\", act = \"relu\" }, { type = \"conv\", channels = 3, kernel = 3, act = \"identity\" }] },\n]\n",
    )
    .unwrap();
    let (csv, plot) = (dir.join("spp.csv"), dir.join("spp.svg"));
    let out = varprop(&[
        "spp",
        "--arch",
        arch.to_str().unwrap(),
        "--batch",
        "4",
        "--networks",
        "2",
        "--out",
        csv.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let header = text.lines().next().unwrap();
    for column in ["spp_mean2_mean", "spp_var_theory", "spp_branch_var_z"] {
        assert!(
            header.split(',').any(|c| c == column),
            "{column} in {header}"
        );
    }
    assert_eq!(text.lines().count(), 1 + 4, "rows 0..=3");
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    let out = varprop(&["spp", "--width", "8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("--arch"), "{}", error_line(&out));
}

/// `varprop tokens` prints each sequence file's table under its name and
/// draws the token figure of them all.
#[test]
fn tokens_prints_each_file_and_draws_their_figure() {
    let dir = common::temp_dir("tokens");
    let (a, b) = (dir.join("pure.toml"), dir.join("pre.toml"));
    std::fs::write(
        &a,
        "input = { tokens = 4, width = 8 }\n[[block]]\ntype = \"attention\"\nheads = 2\nrepeat = 3\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "input = { tokens = 4, width = 8 }\n[[block]]\ntype = \"transformer\"\nheads = 2\n",
    )
    .unwrap();
    let plot = dir.join("tokens.svg");
    let list = format!("{},{}", a.display(), b.display());
    let out = varprop(&[
        "tokens",
        "--arch",
        &list,
        "--batch",
        "2",
        "--networks",
        "2",
        "--backward",
        "--format",
        "csv",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("# {}", a.display()))
            && text.contains(&format!("# {}", b.display()))
    );
    assert!(
        text.contains("grad_wq_mean") && text.contains("token_cos_theory"),
        "{text}"
    );
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("<svg") && svg.contains("grad W_Q / grad W_V"));
}
