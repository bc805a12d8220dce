//! A deep tanh network through the library, as a Rust program would run it:
//! one simulator (its GPU context reused across runs), a spec with the
//! command line's defaults, and the table `varprop run` prints.
//!
//!     cargo run --release --example run_relu

use varprop::{Activation, Device, Init, RunSpec, Simulator};

fn main() -> varprop::Result<()> {
    let sim = Simulator::new(Device::Auto)?;
    let spec = RunSpec::dense(256, 1000)
        .act(Activation::Tanh)
        .init(Init::XavierNormal)
        .networks(8)
        .build()?;
    let out = sim.run(&spec, |_done, _total| ())?;
    let table = out.table_with_theory();
    println!("# {} ({})", out.info.engine, out.info.engine_reason);
    // every 100th layer of the CSV `varprop run` writes
    for (i, line) in table.to_csv().lines().enumerate() {
        if i == 0 || (i - 1) % 100 == 0 {
            println!("{line}");
        }
    }
    // and a relu net on the same simulator: no second context
    let relu = RunSpec::dense(256, 100)
        .act(Activation::Relu)
        .init(Init::HeNormal)
        .build()?;
    let out = sim.run(&relu, |_, _| ())?;
    let last = out.summary.last().expect("rows");
    println!(
        "# relu/he at layer 100: q_post {:.4} +- {:.4} (theory 1), c_pre {:.5} +- {:.5}",
        last.q_post.0, last.q_post.1, last.c_pre.0, last.c_pre.1
    );
    Ok(())
}
