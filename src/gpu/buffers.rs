//! Device buffers that count their bytes: each engine reports the device
//! memory it allocated (`device_bytes_peak`), added up where it allocates.

/// Makes buffers on one device and keeps the sum of their sizes.
pub struct DeviceBuffers<'d> {
    device: &'d wgpu::Device,
    /// Bytes of the buffers made so far.
    pub bytes: u64,
}

impl<'d> DeviceBuffers<'d> {
    pub fn new(device: &'d wgpu::Device) -> Self {
        DeviceBuffers { device, bytes: 0 }
    }

    /// A buffer of `bytes` bytes, at least 16 (a binding may not be empty).
    pub fn make(&mut self, label: &str, bytes: usize, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let size = (bytes as u64).max(16);
        self.bytes += size;
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }
}
