//! `varprop bench --quick --format json` runs and reports every figure the
//! issue names, each positive (a smoke test: no figure is held to a speed).

use std::process::Command;

#[test]
fn quick_bench_reports_every_figure() {
    let out = Command::new(env!("CARGO_BIN_EXE_varprop"))
        .args(["bench", "--quick", "--format", "json", "--quiet"])
        .output()
        .expect("run varprop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    for key in ["adapter", "backend", "device_type"] {
        assert!(json[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    assert!(
        ["timestamp", "wall"].contains(&json["timing"].as_str().unwrap()),
        "timing: {}",
        json["timing"]
    );
    for key in [
        "fma_peak_gflops",
        "naive_gflops",
        "product_gflops",
        "product_vs_naive",
        "product_vs_peak",
        "forward_layers_per_s",
        "forward_gflops",
        "forward_vs_product",
        "backward_gflops",
        "backward_layers_per_s",
        "rng_gnormals_per_s",
        "gram_layers_per_s",
        "dense_layers_per_s",
        "gram_vs_dense",
        "gram_vs_rng_limit",
    ] {
        let v = json[key].as_f64();
        assert!(
            v.is_some_and(|v| v > 0.0 && v.is_finite()),
            "{key}: {}",
            json[key]
        );
    }
    // a fraction where the adapter has timestamps, else null with the reason
    match json["host_idle_fraction"].as_f64() {
        Some(f) => assert!((0.0..=1.0).contains(&f), "host_idle_fraction {f}"),
        None => assert!(json["host_idle_note"].is_string()),
    }
    let orthogonal = json["orthogonal"].as_array().expect("orthogonal");
    assert!(!orthogonal.is_empty());
    for o in orthogonal {
        assert!(o["seconds_per_layer"].as_f64().is_some_and(|s| s > 0.0));
    }
    for key in [
        "plain_seconds_per_layer",
        "tiled_seconds_per_layer",
        "tiled_vs_plain",
        "tiled_gflops",
    ] {
        let v = json["conv"][key].as_f64();
        assert!(v.is_some_and(|v| v > 0.0 && v.is_finite()), "conv {key}");
    }
    assert!(
        json["product"][0]["gflops"]
            .as_f64()
            .is_some_and(|g| g > 0.0)
    );
}

#[test]
fn bench_rejects_csv() {
    let out = Command::new(env!("CARGO_BIN_EXE_varprop"))
        .args(["bench", "--quick", "--format", "csv"])
        .output()
        .expect("run varprop");
    assert_eq!(out.status.code(), Some(2));
}
