//! Shared helpers for the integration tests.
#![allow(dead_code)]

use varprop::config::settings::NetworkSettings;
use varprop::gpu::GpuContext;
use varprop::model::init::InitFlags;
use varprop::spec::{NetworkSpec, RunSpec};

/// The GPU context for a test. A machine without an adapter fails the test
/// (never skips it) and says what to install.
pub fn gpu() -> GpuContext {
    GpuContext::new(None).unwrap_or_else(|e| {
        panic!("GPU tests need a wgpu adapter: {e}. On Debian/Ubuntu: apt-get install mesa-vulkan-drivers")
    })
}

/// Standard normal upper quantile: the z with P(Z > z) = p (Acklam-free:
/// bisection on erfc, accurate to 1e-12).
pub fn normal_quantile_upper(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * libm::erfc(mid / std::f64::consts::SQRT_2) > p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The |z| bound for `comparisons` two-sided z-tests such that a correct
/// implementation fails the whole test with probability at most 1e-4
/// (Bonferroni).
pub fn z_bound(comparisons: usize) -> f64 {
    normal_quantile_upper(1e-4 / (2.0 * comparisons as f64))
}

pub fn net(widths: &str, act: &str, init: &str) -> NetworkSpec {
    NetworkSettings {
        widths: Some(widths.into()),
        act: Some(act.into()),
        init: InitFlags {
            init: Some(init.into()),
            ..Default::default()
        },
        q0: Some(1.0),
        c0: Some(0.5),
        ..Default::default()
    }
    .resolve()
    .unwrap()
}

pub fn run_spec(net: NetworkSpec, batch: usize, networks: usize, seed: u64) -> RunSpec {
    RunSpec::new(net, batch, networks, seed)
}

/// Runs the binary with these arguments.
pub fn varprop(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_varprop"))
        .args(args)
        .output()
        .expect("run varprop")
}
