//! The Signal Propagation Plot's statistics (Brock, De and Smith 2021, as
//! timm's `avg_sq_ch_mean`, `avg_ch_var` and `avg_ch_var_residual` compute
//! them): per row, over the B inputs and the positions of each channel (each
//! unit of a vector), the mean over channels of the squared channel mean and
//! of the unbiased channel variance; for residual blocks also the channel
//! variance of the branch's output F(x), before alpha.

use super::{NetworkSums, carried_log_scales};

/// One row's per-channel sums, on the stored scale.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelSums {
    /// samples per channel: the batch times the positions
    pub count: usize,
    /// per channel: sum x, sum (x - channel mean)^2 of the row's output
    pub output: Vec<[f64; 2]>,
    /// the same of a residual branch's output
    pub branch: Option<Vec<[f64; 2]>>,
}

impl ChannelSums {
    /// The sums of `values(b, c, p)` over b < batch, p < positions, per
    /// channel c: two passes, the mean first.
    pub fn of(
        batch: usize,
        channels: usize,
        positions: usize,
        value: impl Fn(usize, usize, usize) -> f64,
    ) -> Vec<[f64; 2]> {
        let count = (batch * positions) as f64;
        (0..channels)
            .map(|c| {
                let all = || (0..batch).flat_map(move |b| (0..positions).map(move |p| (b, p)));
                let sum: f64 = all().map(|(b, p)| value(b, c, p)).sum();
                let mean = sum / count;
                let dev2 = all().map(|(b, p)| (value(b, c, p) - mean).powi(2)).sum();
                [sum, dev2]
            })
            .collect()
    }
}

/// One network's SPP statistics of one row, on the true scale.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SppRow {
    /// mean over channels of (channel mean)^2
    pub mean2: f64,
    /// mean over channels of the unbiased channel variance
    pub var: f64,
    /// the same of the residual branch's output (NaN for other rows)
    pub branch_var: f64,
}

/// mean over channels of (sum / N)^2 and of dev2 / (N - 1), times T^2.
fn averages(sums: &[[f64; 2]], count: usize, scale2: f64) -> (f64, f64) {
    let (n, c) = (count as f64, sums.len() as f64);
    let mean2 = sums.iter().map(|s| (s[0] / n).powi(2)).sum::<f64>() / c;
    let var = sums.iter().map(|s| s[1] / (n - 1.0)).sum::<f64>() / c;
    (mean2 * scale2, var * scale2)
}

/// A network's SPP rows (rows 0..=L), when it recorded them.
pub fn network_spp(sums: &NetworkSums) -> Option<Vec<SppRow>> {
    let channels = sums.channels.as_ref()?;
    let log_t = carried_log_scales(sums.forward.iter().map(|s| s.renorm));
    Some(
        channels
            .iter()
            .zip(log_t)
            .map(|(row, log_t)| {
                let scale2 = (2.0 * log_t).exp();
                let (mean2, var) = averages(&row.output, row.count, scale2);
                let branch_var = row
                    .branch
                    .as_ref()
                    .map_or(f64::NAN, |b| averages(b, row.count, scale2).1);
                SppRow {
                    mean2,
                    var,
                    branch_var,
                }
            })
            .collect(),
    )
}
