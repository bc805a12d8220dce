//! What crosses between Python and the library: errors as exceptions,
//! the settings record from JSON, progress callables, and the long-format
//! CSV of every network's values.

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use varprop::Error;
use varprop::config::settings::RunSettings;
use varprop::sim::RunOutput;
use varprop::spec::RunSpec;

/// A flag as the Python keyword: `--sigma-w2` -> `sigma_w2`; text after the
/// flag's name (`--arch FILE, key 'input'`) is kept as written.
pub(crate) fn keyword(flag: &str) -> String {
    match flag.strip_prefix("--") {
        Some(rest) => {
            let (name, tail) = match rest.find([' ', ',']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            name.replace('-', "_") + tail
        }
        None => flag.to_string(),
    }
}

/// The library's errors as Python exceptions: bad input is a ValueError
/// naming the keyword (`width: must be >= 1`), a missing adapter a
/// RuntimeError saying what to install.
pub(crate) fn py_err(e: Error) -> PyErr {
    match e {
        Error::Invalid { flag, message } => {
            PyValueError::new_err(format!("{}: {}", keyword(&flag), message))
        }
        Error::NoAdapter => PyRuntimeError::new_err(
            "no GPU adapter found: install a GPU driver, or the software Vulkan adapter \
             (Debian/Ubuntu: apt-get install mesa-vulkan-drivers); device=\"cpu\" runs the \
             CPU reference engine",
        ),
        e @ Error::Io { .. } => PyOSError::new_err(e.to_string()),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// The settings record from the JSON the Python half writes. Unknown keys
/// are TypeErrors (as an unknown keyword is); the Python half checks types
/// first, so a type error here is a bug of ours, reported as TypeError.
pub(crate) fn settings(json: &str) -> PyResult<RunSettings> {
    serde_json::from_str(json).map_err(|e| {
        let text = e.to_string();
        if text.contains("unknown field") {
            PyTypeError::new_err(format!("unexpected keyword: {text}"))
        } else {
            PyTypeError::new_err(format!("bad settings: {text}"))
        }
    })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("json")
}

/// The validated spec, as `varprop run` resolves it (`chunk` checked as
/// the command line checks it).
pub(crate) fn resolve(
    settings_json: &str,
    default_networks: usize,
    chunk: usize,
) -> PyResult<RunSpec> {
    check_chunk(chunk)?;
    settings(settings_json)?
        .resolve(default_networks)
        .map_err(py_err)
}

pub(crate) fn check_chunk(chunk: usize) -> PyResult<()> {
    if chunk == 0 {
        return Err(PyValueError::new_err("chunk: must be >= 1"));
    }
    Ok(())
}

/// A Python progress callable `progress(done, total)` as the closure
/// `execute` reports to (nothing without one).
pub(crate) fn callback<'a, 'py>(
    progress: Option<&'a Bound<'py, PyAny>>,
) -> impl FnMut(u64, u64) -> PyResult<()> + use<'a, 'py> {
    move |done, total| match progress {
        Some(cb) => cb.call1((done, total)).map(|_| ()),
        None => Ok(()),
    }
}

/// The work of a run in the progress unit: rows (layers + 1) times networks.
pub(crate) fn work(spec: &RunSpec) -> u64 {
    (spec.net.depth() as u64 + 1) * spec.networks as u64
}

/// Every network's per-layer values, long format: one row per (network,
/// layer); the logs are natural logs on the true scale.
pub(crate) fn per_network_csv(run: &RunOutput) -> String {
    let mut text = String::from(
        "network,layer,width,log_q_pre,log_q_post,mean_pre,mean_post,kurt_pre,zero_frac,c_pre,\
         log1m_c_pre,sample_log_q_post,sample_log_q_post_sq,log_g,log_gw,log_jac_m1\n",
    );
    let widths = &run.spec.net.widths;
    for (s, layers) in run.per_network.iter().enumerate() {
        for (l, x) in layers.iter().enumerate() {
            let w = widths.get(l).map_or(String::new(), |w| w.to_string());
            text += &format!(
                "{s},{l},{w},{:?},{:?},{:?},{:?},{:?},{:?},{:?},{:?},{:?},{:?},{:?},{:?},{:?}\n",
                x.log_q_pre,
                x.log_q_post,
                x.mean_pre,
                x.mean_post,
                x.kurt_pre,
                x.zero_frac,
                x.c_pre,
                x.log1m_c_pre,
                x.sample_log_q_post,
                x.sample_log_q_post_sq,
                x.log_g,
                x.log_gw,
                x.log_jac_m1
            );
        }
    }
    text
}
