//! WGSL sources and compiled pipelines. Shared WGSL (the RNG, the special
//! functions, the activations, the bindings) lives in one file each and is
//! prepended to the kernels that need it; specialisation is by WGSL
//! `override` constants. Pipelines are cached in the context by
//! (module, entry point, specialisation), never built per layer.
//!
//! `VARPROP_DUMP_WGSL=DIR` writes every assembled module to DIR.

use crate::model::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;

const PARAMS: &str = include_str!("../../shaders/common/params.wgsl");
const BINDINGS: &str = include_str!("../../shaders/common/bindings.wgsl");
const PHILOX: &str = include_str!("../../shaders/common/philox.wgsl");
const SPECIAL: &str = include_str!("../../shaders/common/special.wgsl");
const ACTIVATION: &str = include_str!("../../shaders/common/activation.wgsl");
const GENERATE: &str = include_str!("../../shaders/common/generate.wgsl");
const PRODUCT: &str = include_str!("../../shaders/dense/product.wgsl");
const STATS: &str = include_str!("../../shaders/common/stats.wgsl");
const PROBE: &str = include_str!("../../shaders/common/probe.wgsl");
const ORTHOGONAL: &str = include_str!("../../shaders/common/orthogonal.wgsl");
const GRAM: &str = include_str!("../../shaders/gram/gram.wgsl");
const SHARE_SUBGROUP: &str = include_str!("../../shaders/common/share_subgroup.wgsl");
const SHARE_NONE: &str = include_str!("../../shaders/common/share_none.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../../shaders/common/reduce_subgroup.wgsl");
const REDUCE_TREE: &str = include_str!("../../shaders/common/reduce_tree.wgsl");
const FMA_PEAK: &str = include_str!("../../shaders/bench/fma_peak.wgsl");
const NAIVE_PRODUCT: &str = include_str!("../../shaders/bench/naive_product.wgsl");
const BLOCKS: &str = include_str!("../../shaders/blocks/blocks.wgsl");
const PAIR_RECORD: &str = include_str!("../../shaders/common/pair_record.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// gen_weights, gen_bias, gen_input
    Generate,
    /// product (forward and transposed, specialised by override constants)
    Product,
    /// stats, finalize (specialised by the activation); `subgroup_sum`:
    /// workgroups are one subgroup, summed by subgroupAdd (REDUCE_WG its
    /// size), else by a tree in workgroup memory
    Stats { subgroup_sum: bool },
    /// probe_philox, probe_activation, probe_draws (tests)
    Probe,
    /// ortho_init, ortho_vector, ortho_apply, ortho_accumulate, ortho_write
    Orthogonal,
    /// gram_normals, gram_bias, gram_combine, gram_cross (the gram engine);
    /// `subgroup_sum` as for Stats
    Gram { subgroup_sum: bool },
    /// fma_peak (the benchmark's arithmetic ceiling)
    FmaPeak,
    /// naive_product (the benchmark's baseline)
    NaiveProduct,
    /// the block engine's kernels (architecture files), with its own
    /// bindings (src/gpu/blocks.rs); specialised by the activation
    Blocks,
}

impl Module {
    /// The WGSL files of the module; `subgroups`: the device has the
    /// SUBGROUP feature (only the product kernel's prelude depends on it).
    fn parts(&self, subgroups: bool) -> &'static [&'static str] {
        match self {
            Module::Generate => &[PARAMS, BINDINGS, PHILOX, SPECIAL, GENERATE],
            Module::Product if subgroups => &[PARAMS, PHILOX, SPECIAL, SHARE_SUBGROUP, PRODUCT],
            Module::Product => &[PARAMS, PHILOX, SPECIAL, SHARE_NONE, PRODUCT],
            Module::Stats { subgroup_sum: true } => &[
                PARAMS,
                BINDINGS,
                SPECIAL,
                ACTIVATION,
                REDUCE_SUBGROUP,
                PAIR_RECORD,
                STATS,
            ],
            Module::Stats {
                subgroup_sum: false,
            } => &[
                PARAMS,
                BINDINGS,
                SPECIAL,
                ACTIVATION,
                REDUCE_TREE,
                PAIR_RECORD,
                STATS,
            ],
            Module::Probe => &[PHILOX, SPECIAL, ACTIVATION, PROBE],
            Module::Orthogonal => &[PARAMS, PHILOX, SPECIAL, ORTHOGONAL],
            Module::Gram { subgroup_sum: true } => {
                &[PARAMS, PHILOX, SPECIAL, REDUCE_SUBGROUP, GRAM]
            }
            Module::Gram {
                subgroup_sum: false,
            } => &[PARAMS, PHILOX, SPECIAL, REDUCE_TREE, GRAM],
            Module::FmaPeak => &[FMA_PEAK],
            Module::NaiveProduct => &[NAIVE_PRODUCT],
            Module::Blocks => &[
                PHILOX,
                SPECIAL,
                ACTIVATION,
                REDUCE_TREE,
                PAIR_RECORD,
                BLOCKS,
            ],
        }
    }

    fn uses_activation(&self) -> bool {
        matches!(self, Module::Stats { .. } | Module::Probe | Module::Blocks)
    }

    /// The assembled WGSL, for a device without subgroups.
    pub fn source(&self) -> String {
        self.source_for(false)
    }

    pub fn source_for(&self, subgroups: bool) -> String {
        self.parts(subgroups).join("\n")
    }
}

/// Binding types of the engine's bind group (shaders/bindings.wgsl).
pub fn engine_bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let storage = |binding| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only: false },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(
                std::mem::size_of::<crate::gpu::dense::Params>() as u64,
            ),
        },
        count: None,
    }];
    entries.extend((1..=7).map(storage));
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("engine"),
        entries: &entries,
    })
}

impl GpuContext {
    /// The compiled pipeline for `entry` of `module`, specialised for `act`
    /// where the module uses the activation. `layout` None means the layout
    /// derived from the shader (probes).
    pub fn pipeline(
        &self,
        module: Module,
        entry: &str,
        act: &Activation,
        layout: Option<&wgpu::PipelineLayout>,
    ) -> Result<wgpu::ComputePipeline> {
        self.specialised_pipeline(module, entry, act, layout, &[])
    }

    /// `pipeline` with override `constants` of the module's own besides
    /// the activation's (the product kernel's shape).
    pub fn specialised_pipeline(
        &self,
        module: Module,
        entry: &str,
        act: &Activation,
        layout: Option<&wgpu::PipelineLayout>,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        let mut key = if module.uses_activation() {
            format!(
                "{module:?}/{entry}/{}/{:x}",
                act.id(),
                (act.param() as f32).to_bits()
            )
        } else {
            format!("{module:?}/{entry}")
        };
        for (name, value) in constants {
            key += &format!("/{name}={value}");
        }
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let source = module.source_for(self.features.contains(wgpu::Features::SUBGROUP));
        if let Ok(dir) = std::env::var("VARPROP_DUMP_WGSL") {
            let name = format!("{module:?}").replace([' ', '{', '}', ':'], "");
            let path = std::path::Path::new(&dir).join(format!("{name}.wgsl"));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(path, &source);
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(entry),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let shader = if matches!(module, Module::Product | Module::Gram { .. }) {
            // SAFETY: the product kernel clamps every load into the rows the
            // host allocated and guards every store (shaders/product.wgsl),
            // and its loops are bounded by the dispatch parameters. The gram
            // kernels read whole rows of stride(n) floats inside the regions
            // the host allocated (row indices clamped to `rows`/`cols`,
            // which the host sizes) and guard every store (gram.wgsl).
            unsafe {
                self.device.create_shader_module_trusted(
                    descriptor,
                    wgpu::ShaderRuntimeChecks::unchecked(),
                )
            }
        } else {
            self.device.create_shader_module(descriptor)
        };
        let mut all_constants: Vec<(&str, f64)> = if module.uses_activation() {
            vec![("ACT", act.id() as f64), ("ACT_PARAM", act.param())]
        } else {
            vec![]
        };
        all_constants.extend_from_slice(constants);
        let constants = all_constants;
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout,
                module: &shader,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!("compiling {module:?}/{entry}: {err}")));
        }
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
