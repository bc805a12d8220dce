//! varprop._native: the Rust half of the Python package. It takes the run's
//! settings as JSON (the keys of `varprop::config::settings::RunSettings`,
//! which the Python half builds from keyword arguments), runs through the
//! library exactly as the command line does, and hands back text (the CSV
//! `varprop run --format csv` writes, the JSON config block), so that the
//! DataFrame built from it equals `pd.read_csv` of the CLI's output.

mod convert;
mod execute;
mod functions;
mod simulator;

use pyo3::prelude::*;

use functions::*;
use simulator::NativeSimulator;
use varprop::analysis::checking;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeSimulator>()?;
    m.add_function(wrap_pyfunction!(theory_csv, m)?)?;
    m.add_function(wrap_pyfunction!(ntk_theory_csv, m)?)?;
    m.add_function(wrap_pyfunction!(fixed_point, m)?)?;
    m.add_function(wrap_pyfunction!(edge_of_chaos, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(arch_toml_from_json, m)?)?;
    m.add_function(wrap_pyfunction!(parse_arch, m)?)?;
    m.add("DEFAULT_CHUNK", varprop::gpu::dense::DEFAULT_CHUNK)?;
    m.add("CHECK_NETWORKS", checking::CHECK_NETWORKS)?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
