//! What a run gives back: the per-network samples and their summary over
//! networks, the engine that ran and why (`EngineInfo`), and warnings; made
//! from an engine's per-network sums by `finish`.

use crate::error::Result;
use crate::sim::stats::ntk::{NetworkNtk, network_ntk};
use crate::sim::stats::spp::{SppRow, network_spp};
use crate::sim::stats::{
    LayerSample, LayerSummary, NetworkSums, NetworkTop, network_results, summarise,
};
use crate::spec::RunSpec;

/// What `varprop devices` prints about an adapter.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
}

/// Which engine ran, on what, with how much device memory.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EngineInfo {
    pub engine: &'static str,
    /// Why this engine ran (`--engine auto` says what it weighed).
    pub engine_reason: String,
    /// Gram engine: the least rank of X^T X over layers and networks (B
    /// when no layer lost rank).
    pub gram_rank_min: Option<usize>,
    pub adapter: Option<AdapterSummary>,
    /// Bytes of device buffers the engine allocated (0 on the CPU).
    pub device_bytes_peak: u64,
    /// Layers per submission (GPU).
    pub chunk: Option<usize>,
    /// Checkpoint interval of the backward pass (GPU, with the backward pass).
    pub checkpoint_every: Option<usize>,
}

pub struct RunOutput {
    /// The spec that ran.
    pub spec: RunSpec,
    /// per_network[s][l], rows l = 0..=L
    pub per_network: Vec<Vec<LayerSample>>,
    /// Jacobian moments per network (NaN without --jacobian)
    pub tops: Vec<NetworkTop>,
    pub summary: Vec<LayerSummary>,
    /// per network, the position row's per-position second moments (pre,
    /// post) with --position-map
    pub positions: Vec<(Vec<f64>, Vec<f64>)>,
    pub info: EngineInfo,
    /// Messages for stderr (non-finite layers).
    pub warnings: Vec<String>,
    /// The empirical NTK per network (--ntk; empty without).
    pub ntk: Vec<NetworkNtk>,
    /// The Signal Propagation Plot's statistics per network and row (--spp;
    /// empty without).
    pub spp: Vec<Vec<SppRow>>,
    /// The token statistics per network and row (runs on sequences; empty
    /// otherwise).
    pub tokens: Vec<Vec<crate::sim::stats::tokens::TokenRow>>,
}

/// Progress: called with (rows done, rows in all) after each chunk; never
/// adds a device sync of its own.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

pub(crate) fn finish(
    spec: &RunSpec,
    per_network_sums: impl Iterator<Item = Result<NetworkSums>>,
    info: EngineInfo,
) -> Result<RunOutput> {
    let mut per_network = Vec::new();
    let mut tops = Vec::new();
    let mut warnings = Vec::new();
    let mut positions = Vec::new();
    let mut ntk = Vec::new();
    let mut spp = Vec::new();
    let mut tokens = Vec::new();
    for (s, sums) in per_network_sums.enumerate() {
        let sums = sums?;
        spp.extend(network_spp(&sums));
        tokens.extend(crate::sim::stats::tokens::network_tokens(&sums));
        positions.extend(crate::sim::stats::network_positions(&sums));
        ntk.extend(network_ntk(spec, &sums));
        let (samples, top, lost) = network_results(&sums);
        // the first row and column of this network that was not finite,
        // and every column marked NaN for it
        warnings.extend(lost.warning(s));
        per_network.push(samples);
        tops.push(top);
    }
    let summary = summarise(&per_network);
    Ok(RunOutput {
        spec: spec.clone(),
        per_network,
        tops,
        summary,
        positions,
        info,
        warnings,
        ntk,
        spp,
        tokens,
    })
}
