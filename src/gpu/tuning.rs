//! The shape of the product kernel (shaders/dense/product.wgsl) for an adapter,
//! chosen from measurements; the benchmark reports the choice.
//!
//! On lavapipe (a CPU adapter) a storage load is a loop over the SIMD lanes
//! with a bounds check per lane, while arithmetic is SIMD and a subgroup
//! shuffle nearly free. Measured there (2 cores, B = 256, n = 1024, median of
//! 5, another process sharing the machine): the old 4 x 4 tile 960 ms; one
//! unit x 32 rows with shared loads 330 ms; 4 units x 16 rows as mat4x4
//! blocks 108 ms; the same with W drawn from Philox in the kernel 78 ms
//! (each weight regenerated B/16 times, and still cheaper than loading it);
//! 64 rows per workgroup 58 ms; W loaded from the buffer at 64 rows 73 ms,
//! plus 4.6 ms to generate it.
//!
//! On a GPU loads are cheap, regenerating W B/16 times is not, and 256
//! accumulators per invocation would spill: there the kernel reads W from
//! the buffer, shares nothing (a uniform load is a hardware broadcast) and
//! keeps 16 rows. That choice is not measured yet (no GPU was at hand):
//! `varprop bench` prints the product throughput so that it can be.

use crate::gpu::GpuContext;

/// The shapes of the engine's kernels for one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Kernels {
    pub product: ProductKernel,
    pub reduction: Reduction,
}

impl Kernels {
    /// The measured choice for `ctx` and a batch of `rows` rows.
    pub fn auto(ctx: &GpuContext, rows: usize) -> Self {
        Kernels {
            product: ProductKernel::auto(ctx, rows),
            reduction: Reduction::for_adapter(ctx),
        }
    }

    /// Kernels any adapter runs: no subgroup operations at all.
    pub fn portable() -> Self {
        Kernels {
            product: ProductKernel::portable(),
            reduction: Reduction::tree(),
        }
    }
}

/// Override constants of shaders/dense/product.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProductKernel {
    /// Draw W and b from Philox inside the product (iid laws only;
    /// orthogonal layers always read the weights buffer).
    pub weights_from_rng: bool,
    /// Lanes of a subgroup that share input loads through shuffles (1: none).
    pub share: u32,
    /// 64 rows per workgroup instead of 16.
    pub wide: bool,
    /// Invocations per workgroup (4 outputs each).
    pub workgroup: u32,
}

/// Batches above this many rows use the wide kernel on CPU adapters (below
/// it most of the 64 rows would be clamped copies).
const WIDE_FROM_ROWS: usize = 32;

impl ProductKernel {
    /// The measured choice for `ctx` and a batch of `rows` rows.
    pub fn auto(ctx: &GpuContext, rows: usize) -> Self {
        if ctx.adapter.device_type == "cpu" {
            ProductKernel {
                weights_from_rng: true,
                share: ctx.subgroup_min_size.clamp(1, 8),
                wide: rows > WIDE_FROM_ROWS,
                // small workgroups: enough of them to keep every core busy
                workgroup: 16,
            }
        } else {
            ProductKernel {
                weights_from_rng: false,
                share: 1,
                wide: false,
                workgroup: 64,
            }
        }
    }

    /// The plainest kernel any adapter runs: W from the buffer, no sharing.
    pub fn portable() -> Self {
        ProductKernel {
            weights_from_rng: false,
            share: 1,
            wide: false,
            workgroup: 64,
        }
    }

    pub fn rows_per_workgroup(&self) -> usize {
        if self.wide { 64 } else { 16 }
    }

    /// Override constants for the forward or the transposed product, with W
    /// from the Philox stream or from the buffer.
    pub fn constants(&self, transposed: bool, from_rng: bool) -> Vec<(&'static str, f64)> {
        vec![
            ("TRANSPOSED", transposed as u32 as f64),
            ("FROM_RNG", from_rng as u32 as f64),
            ("WIDE", self.wide as u32 as f64),
            ("SHARE", self.share as f64),
            ("PRODUCT_WG", self.workgroup as f64),
        ]
    }

    /// Workgroups for `outputs` outputs per row and `rows` rows.
    pub fn groups(&self, outputs: usize, rows: usize) -> (u32, u32, u32) {
        let per_row = outputs.div_ceil(4).div_ceil(self.workgroup as usize);
        let row_blocks = rows.div_ceil(self.rows_per_workgroup());
        (per_row.max(1) as u32, row_blocks.max(1) as u32, 1)
    }

    /// Checks the choice against the adapter: sharing needs subgroups of at
    /// least `share` lanes and a workgroup of whole shares.
    pub fn validate(&self, ctx: &GpuContext) -> crate::Result<()> {
        let ok = self.share == 1
            || (self.share.is_power_of_two()
                && ctx.subgroup_min_size >= self.share
                && self.workgroup.is_multiple_of(self.share));
        if !ok || self.workgroup == 0 {
            return Err(crate::Error::Gpu(format!(
                "product kernel {self:?} does not fit this adapter (subgroups of at least {} lanes)",
                ctx.subgroup_min_size
            )));
        }
        Ok(())
    }
}

/// How the statistics kernels sum over a workgroup (shaders/reduce_*.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reduction {
    /// Invocations per reducing workgroup.
    pub workgroup: u32,
    /// The workgroup is one subgroup, summed by subgroupAdd; else a tree in
    /// workgroup memory.
    pub subgroup: bool,
}

impl Reduction {
    /// A subgroup reduction where the adapter's subgroup size is fixed
    /// (known at pipeline creation), else the tree over 256 invocations.
    /// On lavapipe the tree's eight barrier levels through workgroup memory
    /// cost more than the moments themselves: at B = 16, n = 256 the
    /// statistics kernel took 1.0 ms of a 1.8 ms layer (the product 0.6).
    pub fn for_adapter(ctx: &GpuContext) -> Self {
        let size = ctx.subgroup_min_size;
        if size >= 4 && size == ctx.subgroup_max_size && size <= 256 && size.is_power_of_two() {
            Reduction {
                workgroup: size,
                subgroup: true,
            }
        } else {
            Reduction::tree()
        }
    }

    pub fn tree() -> Self {
        Reduction {
            workgroup: 256,
            subgroup: false,
        }
    }

    pub fn validate(&self, ctx: &GpuContext) -> crate::Result<()> {
        let fits = if self.subgroup {
            ctx.subgroup_min_size == self.workgroup && ctx.subgroup_max_size == self.workgroup
        } else {
            self.workgroup.is_power_of_two() && (4..=256).contains(&self.workgroup)
        };
        if !fits {
            return Err(crate::Error::Gpu(format!(
                "reduction {self:?} does not fit this adapter (subgroups of {} to {} lanes)",
                ctx.subgroup_min_size, ctx.subgroup_max_size
            )));
        }
        Ok(())
    }
}
