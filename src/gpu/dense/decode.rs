//! Submission and readback of the dense engine's jobs, and the decode of a
//! network's records into its sums (assemble).

use super::*;

impl<'a> DenseGpu<'a> {
    pub(super) fn readbacks(&self, ranges: &[Range]) -> Vec<Readback<'_>> {
        ranges
            .iter()
            .map(|range| match *range {
                Range::Records(offset, len) => Readback {
                    buffer: &self.records,
                    offset,
                    len,
                },
                Range::Scale(index) => Readback {
                    buffer: &self.scales,
                    offset: index as usize,
                    len: 1,
                },
            })
            .collect()
    }

    /// Submits `steps` and waits for the values of `ranges` (one job alone).
    pub(super) fn submit(&self, steps: &[Step], ranges: &[Range]) -> Result<Vec<f32>> {
        let mut scratch = Vec::new();
        let reads = self.readbacks(ranges);
        let job =
            self.submitter
                .submit(self.ctx, &self.bind_group, steps, &reads, 0, &mut scratch)?;
        self.submitter.read(self.ctx, job, |data, _| data.to_vec())
    }

    /// Sums the raw records of a network in f64.
    pub(super) fn assemble(
        &self,
        forward_raw: Vec<Raw>,
        tangent_raw: Vec<Raw>,
        backward_raw: Vec<Raw>,
        grams: Vec<(Vec<f32>, Vec<f32>)>,
        top_gram: Vec<f32>,
    ) -> NetworkSums {
        let lay = &self.layout;
        let net = &self.spec.net;
        let batch = self.spec.batch;
        let pairs = batch / 2;
        let bs = lay.slice_stride;
        let row_norms = |raw: &[f32], rows: usize, n: usize| -> Vec<f64> {
            (0..rows)
                .map(|r| (0..slices(n)).map(|k| raw[r * bs + k] as f64).sum())
                .collect()
        };
        let forward = forward_raw
            .iter()
            .enumerate()
            .map(|(l, raw)| {
                let n = net.widths[l];
                let mut sums = LayerSums {
                    width: n,
                    batch,
                    pairs: Vec::with_capacity(pairs),
                    renorm: raw.scales[0] as f64,
                    ..Default::default()
                };
                crate::gpu::readback::add_pair_records(&mut sums, &raw.records, pairs, n, bs);
                sums
            })
            .collect();
        let tangent = self.spec.probes.jacobian.then(|| {
            tangent_raw
                .iter()
                .enumerate()
                .map(|(l, raw)| RowSums {
                    norms: row_norms(&raw.records, batch, net.widths[l]),
                    renorm: [raw.scales[0] as f64, 1.0],
                })
                .collect()
        });
        let ntk = self.spec.probes.ntk.is_some();
        let backward = self.spec.probes.runs_backward().then(|| {
            backward_raw
                .iter()
                .enumerate()
                .map(|(l, raw)| RowSums {
                    norms: row_norms(&raw.records, lay.back_rows, net.widths[l]),
                    renorm: raw.scales.map(|r| r as f64),
                })
                .collect()
        });
        let grams = (self.spec.probes.weight_grads || ntk).then(|| {
            grams
                .iter()
                .enumerate()
                .map(|(i, (gx, gd))| {
                    let l = i + 1;
                    (
                        mirrored(row_norms(gx, batch * batch, net.widths[l - 1]), batch),
                        mirrored(row_norms(gd, batch * batch, net.widths[l]), batch),
                    )
                })
                .collect()
        });
        let mut sums = NetworkSums::new(forward, tangent, backward, grams);
        if ntk {
            // an NTK run's backward rows are the readout's gradient, not
            // --backward's: they go into the NTK's sums alone
            let back = sums.backward.take().expect("the NTK's backward pass");
            let grams = sums.grams.take().expect("the NTK's Gram matrices");
            let depth = net.depth();
            let top_x = mirrored(
                row_norms(&top_gram, batch * batch, net.widths[depth]),
                batch,
            );
            sums.ntk = Some(NtkSums::from_backward(
                grams,
                top_x,
                &back,
                net.widths[depth],
            ));
        }
        sums
    }
}

/// The b x b matrix with its lower triangle copied from the upper one, all
/// the `gram` kernel writes.
fn mirrored(mut m: Vec<f64>, b: usize) -> Vec<f64> {
    for i in 0..b {
        for j in 0..i {
            m[i * b + j] = m[j * b + i];
        }
    }
    m
}
