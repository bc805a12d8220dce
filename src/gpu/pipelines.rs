//! WGSL sources and compiled pipelines. Shared WGSL (the RNG, the special
//! functions, the activations, the bindings) lives in one file each and is
//! prepended to the kernels that need it, after the prelude generated from
//! src/gpu/abi.rs (the constants, and the parameter struct of the module's
//! engine); specialisation is by WGSL `override` constants. Pipelines are
//! cached in the context by `PipelineKey` (module, entry point,
//! specialisation, pipeline layout), never built per layer.
//!
//! `VARPROP_DUMP_WGSL=DIR` writes every assembled module to DIR.

use crate::error::{Error, Result};
use crate::gpu::abi;
use crate::model::activation::Activation;
use std::collections::HashMap;
use std::sync::Mutex;

const PARAMS: &str = include_str!("../../shaders/common/params.wgsl");
const INDEX: &str = include_str!("../../shaders/common/index.wgsl");
const SCALE_OF: &str = include_str!("../../shaders/common/scale_of.wgsl");
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
const PAIR_RECORD: &str = include_str!("../../shaders/common/pair_record.wgsl");
const MOMENTS: &str = include_str!("../../shaders/common/moments.wgsl");
const GRAM_NORM: &str = include_str!("../../shaders/gram/norm.wgsl");
/// The block engine's own files, in order: its bindings, then one file per
/// kind of pass.
const BLOCKS: [&str; 7] = [
    include_str!("../../shaders/blocks/bindings.wgsl"),
    include_str!("../../shaders/blocks/draw.wgsl"),
    include_str!("../../shaders/blocks/linear.wgsl"),
    include_str!("../../shaders/blocks/elementwise.wgsl"),
    include_str!("../../shaders/blocks/norm.wgsl"),
    include_str!("../../shaders/blocks/moments.wgsl"),
    include_str!("../../shaders/blocks/ntk.wgsl"),
];

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
    /// gram_norm_rows, gram_norm_units and their adjoints (the gram
    /// engine's normalisation layers; specialised by the activation of the
    /// layer below); `subgroup_sum` as for Stats
    GramNorm { subgroup_sum: bool },
    /// fma_peak (the benchmark's arithmetic ceiling)
    FmaPeak,
    /// naive_product (the benchmark's baseline)
    NaiveProduct,
    /// the block engine's kernels (architecture files; shaders/blocks/),
    /// with its own bindings (src/gpu/blocks/); specialised by the activation
    Blocks,
}

impl Module {
    /// The WGSL files of the module; `subgroups`: the device has the
    /// SUBGROUP feature (only the product kernel's prelude depends on it).
    fn parts(&self, subgroups: bool) -> Vec<&'static str> {
        // the workgroup sums: subgroupAdd, or a tree in workgroup memory
        let reduce = |subgroup_sum| {
            if subgroup_sum {
                REDUCE_SUBGROUP
            } else {
                REDUCE_TREE
            }
        };
        match self {
            Module::Generate => vec![PARAMS, INDEX, BINDINGS, SCALE_OF, PHILOX, SPECIAL, GENERATE],
            Module::Product if subgroups => {
                vec![PARAMS, INDEX, PHILOX, SPECIAL, SHARE_SUBGROUP, PRODUCT]
            }
            Module::Product => vec![PARAMS, INDEX, PHILOX, SPECIAL, SHARE_NONE, PRODUCT],
            Module::Stats { subgroup_sum } => vec![
                PARAMS,
                INDEX,
                BINDINGS,
                SCALE_OF,
                SPECIAL,
                ACTIVATION,
                reduce(*subgroup_sum),
                PAIR_RECORD,
                MOMENTS,
                STATS,
            ],
            Module::Probe => vec![PHILOX, SPECIAL, ACTIVATION, PROBE],
            Module::Orthogonal => vec![PARAMS, INDEX, PHILOX, SPECIAL, ORTHOGONAL],
            Module::Gram { subgroup_sum } => {
                vec![PARAMS, INDEX, PHILOX, SPECIAL, reduce(*subgroup_sum), GRAM]
            }
            Module::GramNorm { subgroup_sum } => vec![
                PARAMS,
                INDEX,
                BINDINGS,
                SCALE_OF,
                SPECIAL,
                ACTIVATION,
                reduce(*subgroup_sum),
                GRAM_NORM,
            ],
            Module::FmaPeak => vec![FMA_PEAK],
            Module::NaiveProduct => vec![NAIVE_PRODUCT],
            Module::Blocks => vec![
                INDEX,
                SCALE_OF,
                PHILOX,
                SPECIAL,
                ACTIVATION,
                REDUCE_TREE,
                PAIR_RECORD,
                MOMENTS,
            ]
            .into_iter()
            .chain(BLOCKS)
            .collect(),
        }
    }

    fn uses_activation(&self) -> bool {
        matches!(
            self,
            Module::Stats { .. } | Module::GramNorm { .. } | Module::Probe | Module::Blocks
        )
    }

    /// The assembled WGSL, for a device without subgroups.
    pub fn source(&self) -> String {
        self.source_for(false)
    }

    pub fn source_for(&self, subgroups: bool) -> String {
        let mut source = self.prelude();
        source += &self.parts(subgroups).join("\n");
        source
    }

    /// The WGSL generated from src/gpu/abi.rs that the module's files
    /// assume: the constants (all modules but the benchmark's), and the
    /// parameter struct of the module's engine.
    pub fn prelude(&self) -> String {
        match self {
            Module::FmaPeak | Module::NaiveProduct => String::new(),
            Module::Probe => abi::wgsl_constants() + "\n",
            Module::Blocks => abi::wgsl_constants() + "\n" + &abi::wgsl_block_params() + "\n",
            _ => abi::wgsl_constants() + "\n" + &abi::wgsl_params() + "\n",
        }
    }

    /// Every module, each with and without subgroups where that differs.
    pub fn all() -> Vec<Module> {
        let mut all = vec![
            Module::Generate,
            Module::Product,
            Module::Probe,
            Module::Orthogonal,
        ];
        for subgroup_sum in [false, true] {
            all.push(Module::Stats { subgroup_sum });
            all.push(Module::Gram { subgroup_sum });
            all.push(Module::GramNorm { subgroup_sum });
        }
        all.extend([Module::FmaPeak, Module::NaiveProduct, Module::Blocks]);
        all
    }
}

/// What a compiled pipeline is cached by: everything that goes into
/// building it. `activation`: the activation's id and f32 parameter bits,
/// for modules that use it; `constants`: the override constants (value
/// bits); `layout`: the explicit pipeline layout (wgpu compares layouts by
/// identity), None for the layout derived from the shader.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    module: Module,
    entry: String,
    activation: Option<(u32, u32)>,
    constants: Vec<(String, u64)>,
    layout: Option<wgpu::PipelineLayout>,
}

/// Binding types of the engine's bind group (shaders/common/bindings.wgsl).
pub fn engine_bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    bind_group_layout(device, "engine", std::mem::size_of::<abi::Params>(), 7)
}

/// A bind group layout `label` as every engine's: binding 0 the uniform
/// parameters (`params_size` bytes, at a dynamic offset), bindings
/// 1..=`storage` read-write storage buffers.
pub fn bind_group_layout(
    device: &wgpu::Device,
    label: &str,
    params_size: usize,
    storage: u32,
) -> wgpu::BindGroupLayout {
    let buffer = |binding, ty, has_dynamic_offset, min_binding_size| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset,
            min_binding_size,
        },
        count: None,
    };
    let params = wgpu::BufferSize::new(params_size as u64);
    let mut entries = vec![buffer(0, wgpu::BufferBindingType::Uniform, true, params)];
    let read_write = wgpu::BufferBindingType::Storage { read_only: false };
    entries.extend((1..=storage).map(|b| buffer(b, read_write, false, None)));
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// Compiled pipelines by their `PipelineKey`, for one device: a pipeline
/// is compiled once per specialisation and shared by every engine.
#[derive(Default)]
pub struct PipelineCache {
    compiled: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

impl PipelineCache {
    /// How many pipelines have been compiled.
    pub fn len(&self) -> usize {
        self.compiled.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pipeline for `entry` of `module` on `device`, specialised for
    /// `act` where the module uses the activation and by the override
    /// `constants`; compiled on first use.
    pub fn get_or_compile(
        &self,
        device: &wgpu::Device,
        features: wgpu::Features,
        module: Module,
        entry: &str,
        act: &Activation,
        layout: Option<&wgpu::PipelineLayout>,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        let key = PipelineKey {
            module,
            entry: entry.to_string(),
            activation: module
                .uses_activation()
                .then(|| (act.id(), (act.param() as f32).to_bits())),
            constants: constants
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_bits()))
                .collect(),
            layout: layout.cloned(),
        };
        if let Some(p) = self.compiled.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let source = module.source_for(features.contains(wgpu::Features::SUBGROUP));
        if let Ok(dir) = std::env::var("VARPROP_DUMP_WGSL") {
            let name = format!("{module:?}").replace([' ', '{', '}', ':'], "");
            let path = std::path::Path::new(&dir).join(format!("{name}.wgsl"));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(path, &source);
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some(entry),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let shader = if matches!(module, Module::Product | Module::Gram { .. }) {
            // SAFETY: the product kernel clamps every load into the rows the
            // host allocated and guards every store (shaders/dense/product.wgsl),
            // and its loops are bounded by the dispatch parameters. The gram
            // kernels read whole rows of stride(n) floats inside the regions
            // the host allocated (row indices clamped to `rows`/`cols`,
            // which the host sizes) and guard every store (gram.wgsl).
            unsafe {
                device.create_shader_module_trusted(
                    descriptor,
                    wgpu::ShaderRuntimeChecks::unchecked(),
                )
            }
        } else {
            device.create_shader_module(descriptor)
        };
        let mut all_constants: Vec<(&str, f64)> = if module.uses_activation() {
            vec![("ACT", act.id() as f64), ("ACT_PARAM", act.param())]
        } else {
            vec![]
        };
        all_constants.extend_from_slice(constants);
        let constants = all_constants;
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
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
        self.compiled.lock().unwrap().insert(key, pipeline.clone());
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every .wgsl file the modules are assembled from.
    const FILES: &[&str] = &[
        PARAMS,
        INDEX,
        SCALE_OF,
        BINDINGS,
        PHILOX,
        SPECIAL,
        ACTIVATION,
        GENERATE,
        PRODUCT,
        STATS,
        PROBE,
        ORTHOGONAL,
        GRAM,
        SHARE_SUBGROUP,
        SHARE_NONE,
        REDUCE_SUBGROUP,
        REDUCE_TREE,
        FMA_PEAK,
        NAIVE_PRODUCT,
        PAIR_RECORD,
        MOMENTS,
    ];

    fn words(text: &str) -> impl Iterator<Item = &str> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
    }

    #[test]
    fn no_wgsl_file_defines_an_abi_constant_or_struct() {
        for file in FILES.iter().chain(&BLOCKS) {
            for line in file.lines() {
                let line = line.split("//").next().unwrap().trim_start();
                let mut w = words(line);
                if let (Some(kind @ ("const" | "override" | "struct")), Some(name)) =
                    (w.next(), w.next())
                {
                    assert!(
                        !abi::CONSTANTS.iter().any(|(c, _, _)| *c == name),
                        "{kind} {name} defined by hand: {line}"
                    );
                    assert!(
                        name != "Params" && name != "BlockParams",
                        "{kind} {name} defined by hand"
                    );
                }
            }
        }
    }

    #[test]
    fn every_flag_a_module_uses_is_in_its_prelude() {
        for module in Module::all() {
            for subgroups in [false, true] {
                let prelude = module.prelude();
                let defined: Vec<&str> = prelude
                    .lines()
                    .filter_map(|l| l.strip_prefix("const "))
                    .filter_map(|l| l.split(':').next())
                    .collect();
                let body: String = module
                    .parts(subgroups)
                    .iter()
                    .flat_map(|file| file.lines())
                    .map(|line| line.split("//").next().unwrap())
                    .collect::<Vec<_>>()
                    .join("\n");
                for word in words(&body) {
                    if word.starts_with("FLAG_")
                        || abi::CONSTANTS.iter().any(|(c, _, _)| *c == word)
                    {
                        assert!(defined.contains(&word), "{module:?} uses {word}");
                    }
                }
                for name in ["Params", "BlockParams"] {
                    if words(&body).any(|w| w == name) {
                        assert!(
                            prelude.contains(&format!("struct {name} {{")),
                            "{module:?} {name}"
                        );
                    }
                }
            }
        }
    }
}
