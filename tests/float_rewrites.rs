//! What the adapter's shader compiler does to float arithmetic that error-free
//! transformations rely on (issue 12): TwoSum on known inputs, written
//! plainly, with the gram kernel's opaque() (a multiplication by a 1 the
//! compiler cannot see) and with an integer barrier (a bitcast round trip
//! through an XOR with a 0 the compiler cannot see); reassociation of
//! (a + b) - a; contraction of a * b - p into an FMA; and denormals.
//! An experiment: it prints what it finds and asserts only what the gram
//! engine relies on: integer arithmetic and bitcasts are exact, and TwoSum
//! through the barrier (gram_cross's opaque()) is exact on normal-range
//! inputs. Found on lavapipe (Mesa 22.3.6, LLVM 15): the plain TwoSum loses
//! its error on every pair where it has one ((a + b) - a comes out as b),
//! no FMA contraction, denormals kept.

mod common;

const SHADER: &str = r#"
@group(0) @binding(0) var<storage, read> input: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> knobs: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn w() -> f32 { return bitcast<f32>(knobs[0]); }
fn opaque(v: f32) -> f32 { return v * w(); }
fn barrier(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) ^ knobs[1]); }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&input)) { return; }
    let a = input[i].x;
    let b = input[i].y;
    let o = 16u * i;
    // plain TwoSum
    let s0 = a + b;
    let bb0 = s0 - a;
    out[o + 0u] = s0;
    out[o + 1u] = (a - (s0 - bb0)) + (b - bb0);
    // the gram kernel's opaque TwoSum
    let b1 = opaque(b);
    let s1 = opaque(a + b1);
    let bb1 = opaque(s1 - a);
    out[o + 2u] = s1;
    out[o + 3u] = (a - opaque(s1 - bb1)) + (b1 - bb1);
    // TwoSum with integer barriers
    let b2 = barrier(b);
    let s2 = barrier(a + b2);
    let bb2 = barrier(s2 - a);
    out[o + 4u] = s2;
    out[o + 5u] = (a - barrier(s2 - bb2)) + (b2 - bb2);
    // reassociation: (a + b) - a is the rounding of b in IEEE
    out[o + 6u] = (a + b) - a;
    // contraction: a b - p with p = a b is 0 in IEEE, the product's
    // rounding error if fused into fma(a, b, -p)
    let p = a * b;
    out[o + 7u] = a * b - p;
    let pb = barrier(a * b);
    out[o + 8u] = a * b - pb;
    // denormals: a times the unseen 1, and a * 2^-100 * 2^-40
    out[o + 9u] = opaque(a);
    out[o + 10u] = (a * bitcast<f32>(knobs[2])) * bitcast<f32>(knobs[3]);
    // Fast2Sum with the barrier only on s (|a| >= |b|)
    let s3 = a + b;
    out[o + 11u] = b - (barrier(s3) - a);
    // integer arithmetic: (x + y) - x in u32 wraps exactly
    let xa = bitcast<u32>(a);
    let xb = bitcast<u32>(b);
    out[o + 12u] = bitcast<f32>(((xa + xb) - xa) ^ xb);
    out[o + 13u] = 0.0;
    out[o + 14u] = 0.0;
    out[o + 15u] = 0.0;
}
"#;

fn two_sum_exact(a: f32, b: f32, s: f32, e: f32) -> bool {
    s as f64 + e as f64 == a as f64 + b as f64 && s == a + b
}

#[test]
fn float_rewrites_of_the_adapter() {
    let ctx = common::gpu();
    let dev = &ctx.device;
    let pairs: Vec<[f32; 2]> = vec![
        [1.0, 1e-8],
        [1.0, 3e-8],
        [1.0, -1e-8],
        [1.0, 1.0 + f32::EPSILON],
        [3.0, 1e-7],
        [1e8, 1.0],
        [1.0, 2f32.powi(-24) * 1.5],
        [1.0 + f32::EPSILON, 1.0 + 2.0 * f32::EPSILON],
        [1.2e-38, 1e-39],
        [1e-40, 1.0],
    ];
    let n = 64usize;
    let mut input = vec![[0f32; 2]; n];
    input[..pairs.len()].copy_from_slice(&pairs);
    let knobs: [u32; 4] = [
        1f32.to_bits(),
        0,
        2f32.powi(-100).to_bits(),
        2f32.powi(-40).to_bits(),
    ];
    use wgpu::util::DeviceExt;
    let buf_in = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&input),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let buf_k = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: bytemuck::cast_slice(&knobs),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let bytes = (16 * n * 4) as u64;
    let buf_out = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("float rewrites"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: buf_in.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: buf_k.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: buf_out.as_entire_binding(),
            },
        ],
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    enc.copy_buffer_to_buffer(&buf_out, 0, &staging, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    let out = varprop::gpu::dense::read_staging(&ctx, &staging, bytes).unwrap();
    eprintln!("adapter: {:?}", ctx.adapter);
    for (i, &[a, b]) in pairs.iter().enumerate() {
        let r = &out[16 * i..16 * i + 16];
        let p = a * b;
        eprintln!(
            "a={a:e} b={b:e}: TwoSum plain {} opaque {} barrier {} | (a+b)-a={:e} (IEEE {:e}) | ab-p={:e} (fused would be {:e}) barrier {:e} | opaque(a)={:e} a*2^-140={:e} (IEEE {:e}) | Fast2Sum err={:e} (IEEE {:e}) | int {}",
            two_sum_exact(a, b, r[0], r[1]),
            two_sum_exact(a, b, r[2], r[3]),
            two_sum_exact(a, b, r[4], r[5]),
            r[6],
            (a + b) - a,
            r[7],
            (a as f64 * b as f64 - p as f64) as f32,
            r[8],
            r[9],
            r[10],
            a * 2f32.powi(-100) * 2f32.powi(-40),
            r[11],
            b - ((a + b) - a),
            r[12].to_bits() == 0,
        );
        // integer arithmetic wraps exactly
        assert_eq!(r[12].to_bits(), 0);
        // the engine's TwoSum (the barrier) is exact in the normal range
        if a.abs() >= f32::MIN_POSITIVE && b.abs() >= f32::MIN_POSITIVE {
            assert!(
                two_sum_exact(a, b, r[4], r[5]),
                "TwoSum through the barrier on {a:e} + {b:e}: {:e} + {:e}",
                r[4],
                r[5]
            );
        }
    }
}
