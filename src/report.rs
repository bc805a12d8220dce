//! From a run to its table and its config block: the column names here are
//! the stable contract of `varprop run` (extend, never rename).

use crate::engine::RunOutput;
use crate::output::{Cell, Table};
use crate::spec::RunSpec;

/// The measured columns, in order, after `layer,width`.
pub const MEASURED_COLUMNS: &[&str] = &[
    "q_pre_mean",
    "q_pre_se",
    "log_q_pre_mean",
    "log_q_pre_std",
    "q_post_mean",
    "q_post_se",
    "log_q_post_mean",
    "log_q_post_std",
    "mean_pre_mean",
    "mean_pre_se",
    "mean_post_mean",
    "mean_post_se",
    "kurt_pre_mean",
    "kurt_pre_se",
    "zero_frac_mean",
    "zero_frac_se",
    "c_pre_mean",
    "c_pre_se",
    "log_q_post_sample_mean",
    "log_q_post_sample_se",
    "log_q_post_sample_std",
];

pub fn run_table(spec: &RunSpec, run: &RunOutput) -> Table {
    let mut columns: Vec<String> = vec!["layer".into(), "width".into()];
    columns.extend(MEASURED_COLUMNS.iter().map(|c| c.to_string()));
    let rows = run
        .summary
        .iter()
        .enumerate()
        .map(|(l, s)| {
            let mut row = vec![Cell::Int(l as u64), Cell::Int(spec.net.widths[l] as u64)];
            for (a, b) in [
                s.q_pre,
                s.log_q_pre,
                s.q_post,
                s.log_q_post,
                s.mean_pre,
                s.mean_post,
                s.kurt_pre,
                s.zero_frac,
                s.c_pre,
            ] {
                row.push(Cell::Num(a));
                row.push(Cell::Num(b));
            }
            row.push(Cell::Num(s.sample_log_q_post_mean));
            row.push(Cell::Num(s.sample_log_q_post_se));
            row.push(Cell::Num(s.sample_log_q_post_std));
            row
        })
        .collect();
    Table { columns, rows }
}

/// A compact width list: runs of equal widths as NxK.
pub fn widths_text(widths: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < widths.len() {
        let mut j = i;
        while j + 1 < widths.len() && widths[j + 1] == widths[i] {
            j += 1;
        }
        let k = j - i + 1;
        parts.push(if k == 1 {
            widths[i].to_string()
        } else {
            format!("{}x{k}", widths[i])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The fully resolved configuration, as the JSON `config` block.
pub fn config_json(spec: &RunSpec, run: &RunOutput) -> serde_json::Value {
    let net = &spec.net;
    let init = &net.init;
    let layer1 = net.weight_law(1);
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "engine": run.info.engine,
        "adapter": run.info.adapter.as_ref().map(|a| a.name.clone()),
        "backend": run.info.adapter.as_ref().map(|a| a.backend.clone()),
        "device_type": run.info.adapter.as_ref().map(|a| a.device_type.clone()),
        "seed": spec.seed,
        "widths": widths_text(&net.widths),
        "depth": net.depth(),
        "act": net.act.name(),
        "act_param": net.act.param(),
        "init": init.scheme.name(),
        "gain": init.gain,
        "fan_mode": init.fan_mode.name(),
        "layer1_weight_dist": layer1.dist,
        "layer1_weight_variance": layer1.variance,
        "sigma_w2": init.sigma_w2,
        "sigma_b2": net.bias_law(1).variance,
        "bias_dist": net.bias_law(1).dist,
        "q0": net.q0,
        "c0": net.c0,
        "batch": spec.batch,
        "networks": spec.networks,
        "renormalised": net.is_homogeneous(),
        "chunk": run.info.chunk,
        "device_bytes_peak": run.info.device_bytes_peak,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn widths_are_compacted() {
        assert_eq!(
            super::widths_text(&[784, 1024, 1024, 1024, 10]),
            "784,1024x3,10"
        );
    }
}
