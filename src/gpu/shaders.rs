//! WGSL sources and compiled pipelines. Shared WGSL (the RNG, the special
//! functions, the activations, the bindings) lives in one file each and is
//! prepended to the kernels that need it; specialisation is by WGSL
//! `override` constants. Pipelines are cached in the context by
//! (module, entry point, specialisation), never built per layer.
//!
//! `VARPROP_DUMP_WGSL=DIR` writes every assembled module to DIR.

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;

const PARAMS: &str = include_str!("../../shaders/params.wgsl");
const BINDINGS: &str = include_str!("../../shaders/bindings.wgsl");
const PHILOX: &str = include_str!("../../shaders/philox.wgsl");
const SPECIAL: &str = include_str!("../../shaders/special.wgsl");
const ACTIVATION: &str = include_str!("../../shaders/activation.wgsl");
const GENERATE: &str = include_str!("../../shaders/generate.wgsl");
const PRODUCT: &str = include_str!("../../shaders/product.wgsl");
const STATS: &str = include_str!("../../shaders/stats.wgsl");
const PROBE: &str = include_str!("../../shaders/probe.wgsl");
const ORTHOGONAL: &str = include_str!("../../shaders/orthogonal.wgsl");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// gen_weights, gen_bias, gen_input
    Generate,
    /// product
    Product,
    /// stats, finalize (specialised by the activation)
    Stats,
    /// probe_philox, probe_activation, probe_draws (tests)
    Probe,
    /// ortho_init, ortho_vector, ortho_apply, ortho_accumulate, ortho_write
    Orthogonal,
}

impl Module {
    fn parts(&self) -> &'static [&'static str] {
        match self {
            Module::Generate => &[PARAMS, BINDINGS, PHILOX, SPECIAL, GENERATE],
            Module::Product => &[PARAMS, PRODUCT],
            Module::Stats => &[PARAMS, BINDINGS, SPECIAL, ACTIVATION, STATS],
            Module::Probe => &[PHILOX, SPECIAL, ACTIVATION, PROBE],
            Module::Orthogonal => &[PARAMS, PHILOX, SPECIAL, ORTHOGONAL],
        }
    }

    fn uses_activation(&self) -> bool {
        matches!(self, Module::Stats | Module::Probe)
    }

    pub fn source(&self) -> String {
        self.parts().join("\n")
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
        let key = if module.uses_activation() {
            format!(
                "{module:?}/{entry}/{}/{:x}",
                act.id(),
                (act.param() as f32).to_bits()
            )
        } else {
            format!("{module:?}/{entry}")
        };
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let source = module.source();
        if let Ok(dir) = std::env::var("VARPROP_DUMP_WGSL") {
            let path = std::path::Path::new(&dir).join(format!("{module:?}.wgsl"));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(path, &source);
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let shader = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let constants: Vec<(&str, f64)> = if module.uses_activation() {
            vec![("ACT", act.id() as f64), ("ACT_PARAM", act.param())]
        } else {
            vec![]
        };
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
