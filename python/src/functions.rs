//! The module's plain functions: theory tables, the fixed point, the edge
//! of chaos, adapters, and architectures from Python dicts.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use varprop::analysis::theory_table;
use varprop::theory;

use crate::convert::*;

/// An architecture given as a Python dict (as JSON) written as TOML text,
/// the schema of architectures/*.toml.
#[pyfunction]
pub(crate) fn arch_toml_from_json(json: &str) -> PyResult<String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| PyTypeError::new_err(format!("arch: {e}")))?;
    toml::to_string(&value).map_err(|e| PyTypeError::new_err(format!("arch: {e}")))
}

/// Validates an architecture's TOML text (labelled `label` in errors)
/// without running it.
#[pyfunction]
pub(crate) fn parse_arch(label: &str, text: &str) -> PyResult<usize> {
    varprop::model::arch::Architecture::parse(label, text)
        .map(|a| a.depth())
        .map_err(py_err)
}

/// `varprop theory`'s CSV for these settings.
#[pyfunction]
pub(crate) fn theory_csv(settings_json: &str) -> PyResult<String> {
    let net = settings(settings_json)?.net.resolve().map_err(py_err)?;
    Ok(theory_table::theory_table(&theory::layer_table(&net)).to_csv())
}

/// `varprop theory --ntk --parametrisation P` as CSV text.
#[pyfunction]
pub(crate) fn ntk_theory_csv(settings_json: &str, parametrisation: &str) -> PyResult<String> {
    let net = settings(settings_json)?.net.resolve().map_err(py_err)?;
    let param = varprop::spec::Parametrisation::parse(parametrisation).map_err(py_err)?;
    Ok(theory_table::ntk_theory_table(&net, param)
        .map_err(py_err)?
        .to_csv())
}

/// `varprop theory --summary` as JSON text.
#[pyfunction]
pub(crate) fn fixed_point(settings_json: &str) -> PyResult<String> {
    let net = settings(settings_json)?.net.resolve().map_err(py_err)?;
    Ok(to_json(&theory::summary(&net).map_err(py_err)?))
}

/// `varprop theory --edge-of-chaos` as JSON text: with sigma_b2 the
/// critical sigma_w2, with sigma_w2 the sigma_b2 (exactly one is set).
#[pyfunction]
pub(crate) fn edge_of_chaos(settings_json: &str) -> PyResult<String> {
    let s = settings(settings_json)?;
    let net = s.net.resolve().map_err(py_err)?;
    let value = match (s.net.init.sigma_w2, s.net.init.sigma_b2) {
        (None, Some(b)) => {
            let e = theory::edge_of_chaos_sigma_w2(&net.act, b).map_err(py_err)?;
            serde_json::json!({"sigma_b2": b, "sigma_w2": e.sigma_w2, "q_star": e.q_star})
        }
        (Some(w), None) => match theory::edge_of_chaos_sigma_b2(&net.act, w).map_err(py_err)? {
            Some(e) => {
                serde_json::json!({"sigma_w2": w, "sigma_b2": e.sigma_b2, "q_star": e.q_star})
            }
            None => {
                return Err(PyValueError::new_err(format!(
                    "sigma_w2: no sigma_b2 >= 0 puts {} at chi_1 = 1 with sigma_w2 = {w}",
                    net.act
                )));
            }
        },
        _ => {
            return Err(PyValueError::new_err(
                "sigma_w2, sigma_b2: give exactly one (sigma_b2 to find the critical sigma_w2, \
                 sigma_w2 to find sigma_b2)",
            ));
        }
    };
    Ok(to_json(&value))
}

/// The adapters wgpu sees, as JSON text (`varprop devices --format json`).
#[pyfunction]
pub(crate) fn devices(py: Python<'_>) -> String {
    py.detach(|| to_json(&varprop::gpu::list_adapters()))
}
