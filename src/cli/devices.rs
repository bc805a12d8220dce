//! `varprop devices`: the adapters wgpu sees.

use varprop::gpu::list_adapters;
use varprop::io::output::{self, Format};
use varprop::{Error, Result};

pub fn cmd_devices(format: Option<Format>) -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        return Err(Error::NoAdapter);
    }
    let text = match output::pick_format(format, None) {
        Format::Json => serde_json::to_string_pretty(&adapters).expect("json") + "\n",
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for a in &adapters {
                w.serialize(a).expect("in-memory csv");
            }
            String::from_utf8(w.into_inner().expect("csv")).expect("utf-8")
        }
        Format::Table => adapters
            .iter()
            .map(|a| {
                format!(
                    "{}: {} ({}, {}, driver {} {}), max buffer {} MiB, max storage binding {} MiB\n",
                    a.index,
                    a.name,
                    a.backend,
                    a.device_type,
                    a.driver,
                    a.driver_info,
                    a.max_buffer_size >> 20,
                    a.max_storage_buffer_binding_size >> 20
                )
            })
            .collect(),
    };
    output::write_output(None, &text)
}
