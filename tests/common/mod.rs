//! Shared helpers for the integration tests.
#![allow(dead_code)]

use varprop::config::settings::{NetworkSettings, RunSettings};
use varprop::gpu::GpuContext;
use varprop::model::init::InitFlags;
use varprop::sim::RunOutput;
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

/// Network flags for `--widths`, `--act` and `--init` with unit inputs
/// (q0 = 1, c0 = 0.5), unresolved so that a test can change a field first.
pub fn flags(widths: &str, act: &str, init: &str) -> NetworkSettings {
    NetworkSettings {
        width: None,
        depth: None,
        widths: Some(widths.into()),
        ..stack(0, 0, act, init)
    }
}

/// Network flags for `--width W --depth L --act A --init I` with unit
/// inputs (q0 = 1, c0 = 0.5).
pub fn stack(width: usize, depth: usize, act: &str, init: &str) -> NetworkSettings {
    NetworkSettings {
        width: Some(width),
        depth: Some(depth),
        act: Some(act.into()),
        init: InitFlags {
            init: Some(init.into()),
            ..Default::default()
        },
        q0: Some(1.0),
        c0: Some(0.5),
        ..Default::default()
    }
}

/// Run settings for `networks` networks of `net` on batches of `batch`,
/// drawn from `seed` (everything else at its default).
pub fn run_settings(net: NetworkSettings, batch: usize, networks: usize, seed: u64) -> RunSettings {
    RunSettings {
        batch: Some(batch),
        networks: Some(networks),
        seed: Some(seed),
        net,
        ..Default::default()
    }
}

pub fn net(widths: &str, act: &str, init: &str) -> NetworkSpec {
    flags(widths, act, init).resolve().unwrap()
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

/// Runs the binary with the words of `line` as its arguments, then `extra`
/// (paths, which may hold spaces).
pub fn varprop_line(line: &str, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.extend_from_slice(extra);
    varprop(&args)
}

/// A run's stdout then its stderr, as text.
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An empty directory `varprop-<name>-<pid>` under the system's temp dir.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("varprop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The architecture file `text` as `<name>.toml` in `varprop-<group>-<pid>`
/// under the system's temp dir (kept: a test binary's tests share it), its path.
pub fn write_arch(group: &str, name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("varprop-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The Jacobian probes of an isometry, up to f32 rounding (1e-4): every
/// network's m1 = E||J u||^2 is 1 and its spread m2 / m1^2 - 1 is 0, and
/// ||J_l u||^2 = 1 at every layer.
pub fn assert_jacobian_isometry(label: &str, out: &RunOutput) {
    for top in &out.tops {
        let spread = (top.log_jac_m2 - 2.0 * top.log_jac_m1).exp() - 1.0;
        let m1 = top.log_jac_m1.exp();
        assert!(top.log_jac_m1.abs() < 1e-4, "{label}: m1 = {m1}");
        assert!(spread.abs() < 1e-4, "{label}: spread {spread}");
    }
    for s in &out.summary {
        assert!(
            (s.jac_m1.0 - 1.0).abs() < 1e-4,
            "{label}: ||J_l u||^2 = {}",
            s.jac_m1.0
        );
    }
}

/// The binary with `args`, outside any array job: a test run inside one
/// must not pick up its shard from the scheduler's variables.
pub fn varprop_outside_array_job(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_varprop"));
    cmd.args(args);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "SGE_TASK_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Init custom: weight variance sigma_w2 / fan_in with normal weights, and
/// normal biases of variance sigma_b2.
pub fn custom_init(sigma_w2: f64, sigma_b2: f64) -> InitFlags {
    InitFlags {
        init: Some("custom".into()),
        sigma_w2: Some(sigma_w2),
        sigma_b2: Some(sigma_b2),
        dist: Some("normal".into()),
        ..Default::default()
    }
}

/// An architecture file of dense layers with a layer-norm, an rms-norm and
/// a batch-norm between them (the CPU reference and the gram engine test
/// it against theory: tests/arch.rs, tests/gram_norm.rs).
pub const DENSE_AND_NORMS: &str = r#"
input = 256
block = [
  { type = "dense", width = 256, act = "identity", init = "he-normal" },
  { type = "layer-norm", act = "relu" },
  { type = "dense", width = 256, act = "tanh", init = "xavier-normal", sigma-b2 = 0.1 },
  { type = "dense", width = 256, act = "identity", init = "xavier-normal" },
  { type = "rms-norm", act = "erf" },
  { type = "dense", width = 256, act = "identity", init = "he-normal" },
  { type = "batch-norm", act = "relu" },
  { type = "dense", width = 256, act = "identity", init = "he-normal" },
]
"#;
