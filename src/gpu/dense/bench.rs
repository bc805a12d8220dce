//! Hooks of the benchmark and the tests: one kernel timed alone, and a
//! layer's generated weights read back.

use super::*;

impl<'a> DenseGpu<'a> {
    /// Runs `kernel` of layer 1 of network 0 `times` times in one job (on
    /// whatever the rows hold) and waits: the wall seconds of the job and,
    /// on a timed engine with timestamps, its GPU seconds. For the
    /// benchmark.
    pub fn time_kernel(&self, kernel: KernelProbe, times: usize) -> Result<(f64, Option<f64>)> {
        let lay = &self.layout;
        let base = self.base(0, 1);
        let mut steps = Vec::new();
        for _ in 0..times {
            match kernel {
                KernelProbe::Product => {
                    let p = Params {
                        in_off: lay.x[0] as u32,
                        out_off: lay.h as u32,
                        scale_a: lay.forward_scale(0),
                        ..base
                    };
                    steps.push(self.product_step(p, false));
                }
                KernelProbe::ProductTransposed => {
                    if !self.spec.probes.needs_backward() {
                        return Err(Error::Gpu("the transposed product needs --backward".into()));
                    }
                    let p = Params {
                        in_off: lay.d[1] as u32,
                        out_off: lay.y as u32,
                        rows: lay.back_rows as u32,
                        ..base
                    };
                    steps.push(self.product_step(p, true));
                }
                KernelProbe::Weights => self.generate_steps(&mut steps, base, true),
            }
        }
        let mut scratch = Vec::new();
        let start = std::time::Instant::now();
        let job =
            self.submitter
                .submit(self.ctx, &self.bind_group, &steps, &[], 0, &mut scratch)?;
        let gpu = self.submitter.read(self.ctx, job, |_, seconds| seconds)?;
        Ok((start.elapsed().as_secs_f64(), gpu))
    }

    /// Generates W_l of network `network` alone and reads it back (tests).
    pub fn generate_weights(&self, network: usize, layer: usize) -> Result<Vec<f32>> {
        let p = self.base(network, layer);
        let mut steps = Vec::new();
        self.generate_steps(&mut steps, p, false);
        self.submit(&steps, &[])?;
        let row = stride(p.n_in as usize);
        let bytes = (row * p.n_out as usize * 4) as u64;
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("weights readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.weights, 0, &staging, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let padded = read_staging(self.ctx, &staging, bytes)?;
        Ok(padded
            .chunks(row)
            .flat_map(|r| &r[..p.n_in as usize])
            .copied()
            .collect())
    }
}
