//! One GPU context, built once and reused: the adapter is picked (discrete >
//! integrated > virtual > cpu; WGPU_BACKEND, WGPU_ADAPTER_NAME and
//! `--adapter` honoured), the device asks for the adapter's own limits, and
//! compiled pipelines are cached by specialisation.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::gpu::pipelines::{Module, PipelineCache};
use crate::model::activation::Activation;
use crate::sim::AdapterSummary;

fn summary(index: usize, adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterSummary {
        index,
        name: info.name.clone(),
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: device_type_name(info.device_type).into(),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size as u64,
    }
}

pub fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// Lower is better: discrete > integrated > virtual > cpu > other, and Vulkan
/// first among equals (it is the backend the kernels are tested on).
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal | wgpu::Backend::Dx12 => 1,
        _ => 2,
    };
    (kind, backend)
}

/// The backends to look at: WGPU_BACKEND, else the primary ones (Vulkan,
/// Metal, DX12). OpenGL only on request: its compute support is partial, and
/// initialising it on a headless machine prints errors of its own.
fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends();
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu sees (WGPU_BACKEND respected), best first.
fn ranked_adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends()));
    adapters.sort_by_key(|a| rank(&a.get_info()));
    adapters
}

/// The adapters `varprop devices` lists, in the order `--adapter N` counts.
pub fn list_adapters() -> Vec<AdapterSummary> {
    ranked_adapters(&instance())
        .iter()
        .enumerate()
        .map(|(i, a)| summary(i, a))
        .collect()
}

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    /// The smallest subgroup the adapter may run (0 without the SUBGROUP
    /// feature): how many lanes the product kernel may share loads across.
    pub subgroup_min_size: u32,
    /// The largest (0 without the SUBGROUP feature).
    pub subgroup_max_size: u32,
    pub(crate) pipelines: PipelineCache,
    /// Bind group and pipeline layouts by name, made once: the pipeline
    /// cache is keyed by the layout, so an engine that made its own on
    /// every run would recompile every pipeline.
    layouts: Mutex<HashMap<&'static str, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
}

impl GpuContext {
    /// Picks the adapter: `selector` (from `--adapter`: an index from
    /// `varprop devices`, or part of a name), else WGPU_ADAPTER_NAME, else
    /// the best ranked.
    pub fn new(selector: Option<&str>) -> Result<Self> {
        crate::sim::work_hook::work_starts()?;
        let instance = instance();
        let adapters = ranked_adapters(&instance);
        if adapters.is_empty() {
            return Err(Error::NoAdapter);
        }
        let env_name = std::env::var("WGPU_ADAPTER_NAME").ok();
        let (flag, wanted) = match (selector, env_name.as_deref()) {
            (Some(s), _) => ("adapter", Some(s)),
            (None, Some(s)) => ("WGPU_ADAPTER_NAME", Some(s)),
            (None, None) => ("", None),
        };
        let index = match wanted {
            None => 0,
            Some(w) => {
                let by_index = w.parse::<usize>().ok().filter(|i| *i < adapters.len());
                let by_name = || {
                    adapters
                        .iter()
                        .position(|a| a.get_info().name.to_lowercase().contains(&w.to_lowercase()))
                };
                by_index.or_else(by_name).ok_or_else(|| {
                    let names: Vec<String> = adapters
                        .iter()
                        .enumerate()
                        .map(|(i, a)| format!("{i}: {}", a.get_info().name))
                        .collect();
                    Error::invalid(
                        flag,
                        format!("no adapter matches '{w}'; available: {}", names.join("; ")),
                    )
                })?
            }
        };
        let adapter = &adapters[index];
        let limits = adapter.limits();
        // Timestamps let the benchmark time the GPU itself; subgroups let the
        // product kernel share loads between lanes. Ask only for what exists.
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
        let (subgroup_min_size, subgroup_max_size) = if features.contains(wgpu::Features::SUBGROUP)
        {
            let info = adapter.get_info();
            (info.subgroup_min_size, info.subgroup_max_size)
        } else {
            (0, 0)
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("varprop"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Gpu(format!("could not open the device: {e}")))?;
        Ok(GpuContext {
            device,
            queue,
            adapter: summary(index, adapter),
            limits,
            features,
            subgroup_min_size,
            subgroup_max_size,
            pipelines: PipelineCache::default(),
            layouts: Mutex::new(HashMap::new()),
        })
    }

    /// The largest buffer the kernels may bind.
    pub fn max_binding_bytes(&self) -> u64 {
        (self.limits.max_storage_buffer_binding_size as u64).min(self.limits.max_buffer_size)
    }

    /// Blocks until the queue is idle.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))
    }
}

impl GpuContext {
    /// The bind group layout `name` (made by `bind` on first use) and its
    /// pipeline layout, the same objects for every run on this context.
    pub fn layouts(
        &self,
        name: &'static str,
        bind: impl FnOnce(&wgpu::Device) -> wgpu::BindGroupLayout,
    ) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let mut layouts = self.layouts.lock().unwrap();
        layouts
            .entry(name)
            .or_insert_with(|| {
                let bind_layout = bind(&self.device);
                let pipeline_layout =
                    self.device
                        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                            label: Some(name),
                            bind_group_layouts: &[Some(&bind_layout)],
                            immediate_size: 0,
                        });
                (bind_layout, pipeline_layout)
            })
            .clone()
    }

    /// How many pipelines this context has compiled (each specialisation
    /// once, whatever the number of runs).
    pub fn compiled_pipelines(&self) -> usize {
        self.pipelines.len()
    }

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
        self.pipelines.get_or_compile(
            &self.device,
            self.features,
            module,
            entry,
            act,
            layout,
            constants,
        )
    }
}
