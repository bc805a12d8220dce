//! The library's front door: a `Simulator` gives what `varprop run` prints,
//! reuses its context across runs, and the CPU reference through it equals
//! the CPU engine called directly.

mod common;

use varprop::spec::EngineChoice;
use varprop::{Activation, Device, Init, RunSpec, Simulator};

/// Runs `spec` twice on `sim`: the second run compiles no pipeline.
fn second_run_compiles_nothing(sim: &Simulator, spec: &RunSpec, what: &str) {
    let ctx = sim.context().unwrap().expect("a GPU simulator");
    sim.run(spec, |_, _| ()).unwrap();
    let after_first = ctx.compiled_pipelines();
    sim.run(spec, |_, _| ()).unwrap();
    assert_eq!(
        ctx.compiled_pipelines(),
        after_first,
        "{what}: recompiled on the second run"
    );
}

#[test]
fn the_simulator_gives_the_tables_the_command_line_writes() {
    let sim = Simulator::new(Device::Gpu).unwrap();
    let spec = RunSpec::dense(32, 6)
        .act(Activation::Tanh)
        .init(Init::XavierNormal)
        .batch(4)
        .networks(2)
        .seed(3)
        .build()
        .unwrap();
    let first = sim
        .run(&spec, |_, _| ())
        .unwrap()
        .table_with_theory()
        .to_csv();
    // the second run reuses the context and gives the same bytes
    let mut calls = 0;
    let second = sim
        .run(&spec, |done, total| {
            calls += 1;
            assert!(done <= total && total == 14);
        })
        .unwrap();
    assert!(calls > 0);
    assert_eq!(first, second.table_with_theory().to_csv());
    // and compiles nothing the first run compiled: every engine takes its
    // layouts from the context, so the pipeline cache (keyed by layout) hits
    let ctx = sim.context().unwrap().expect("a GPU simulator");
    let compiled = ctx.compiled_pipelines();
    assert!(compiled > 0);
    for engine in [EngineChoice::Dense, EngineChoice::Gram] {
        let spec = RunSpec::dense(64, 4)
            .batch(4)
            .networks(2)
            .engine(engine)
            .backward(true)
            .build()
            .unwrap();
        second_run_compiles_nothing(&sim, &spec, &format!("{engine:?}"));
    }
    let arch = RunSpec::architecture(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/architectures/residual.toml"
    ))
    .batch(4)
    .networks(1)
    .build()
    .unwrap();
    second_run_compiles_nothing(&sim, &arch, "blocks");
    let cli = common::varprop_line(
        "run --width 32 --depth 6 --act tanh --init xavier-normal --batch 4 --networks 2 --seed 3 --format csv -q",
        &[],
    );
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(first, String::from_utf8(cli.stdout).unwrap());
}

#[test]
fn the_cpu_device_is_the_reference_engine() {
    let sim = Simulator::new(Device::Cpu).unwrap();
    assert!(sim.is_cpu());
    let spec = RunSpec::dense(16, 3).batch(4).networks(2).build().unwrap();
    let via_sim = sim.run(&spec, |_, _| ()).unwrap();
    let direct = varprop::sim::run_cpu(&spec, &mut |_, _| ()).unwrap();
    assert_eq!(via_sim.info.engine, "cpu-reference");
    assert_eq!(
        via_sim.table_with_theory().to_csv(),
        direct.table_with_theory().to_csv()
    );
}
