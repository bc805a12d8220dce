//! `NativeSimulator`, the class `varprop.Simulator` wraps: its Python
//! methods (run, check, compare, sweep, phase, check suites) on one
//! library `Simulator`.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use varprop::Device;
use varprop::Error;
use varprop::analysis::{checking, report};
use varprop::config::settings::DEFAULT_NETWORKS;
use varprop::gpu::GpuOptions;
use varprop::sim::RunOutput;
use varprop::spec::RunSpec;

use crate::convert::*;

/// The library's `Simulator` (one GPU context, made once and kept), with
/// one run at a time on it.
pub(crate) struct Engine {
    pub(crate) simulator: varprop::Simulator,
    pub(crate) busy: Mutex<()>,
}

/// The payload of the unwind that stops a cancelled run.
pub(crate) struct Cancelled;

pub(crate) enum Outcome {
    Done(varprop::Result<RunOutput>),
    Cancelled,
    Panicked(String),
}

/// The native simulator: `varprop.Simulator` wraps it.
#[pyclass(module = "varprop._native", frozen)]
pub(crate) struct NativeSimulator {
    pub(crate) engine: Arc<Engine>,
}

#[pymethods]
impl NativeSimulator {
    /// device: "gpu", "cpu" or "auto" (a GPU when wgpu finds one, else the
    /// CPU reference); adapter: an index from `devices()` or part of a name.
    #[new]
    #[pyo3(signature = (device = "gpu", adapter = None))]
    fn new(py: Python<'_>, device: &str, adapter: Option<String>) -> PyResult<Self> {
        let adapter = match device {
            "cpu" => {
                if adapter.is_some() {
                    return Err(PyValueError::new_err(
                        "adapter: is a GPU adapter; device=\"cpu\" runs the CPU reference",
                    ));
                }
                None
            }
            "gpu" | "auto" => Some(adapter),
            other => {
                return Err(PyValueError::new_err(format!(
                    "device: unknown '{other}'; accepted: gpu, cpu, auto"
                )));
            }
        };
        let auto = device == "auto";
        let simulator = py
            .detach(move || -> varprop::Result<varprop::Simulator> {
                let device = match adapter {
                    None => Device::Cpu,
                    Some(None) if auto => Device::Auto,
                    Some(None) => Device::Gpu,
                    Some(Some(name)) => Device::Adapter(name),
                };
                let simulator = varprop::Simulator::new(device)?;
                // auto with a named adapter: look now, as Device::Auto does,
                // and fall back to the CPU reference when there is none
                if auto && !simulator.is_cpu() {
                    match simulator.context() {
                        Err(Error::NoAdapter) => return varprop::Simulator::new(Device::Cpu),
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                }
                Ok(simulator)
            })
            .map_err(py_err)?;
        let engine = Engine {
            simulator,
            busy: Mutex::new(()),
        };
        Ok(NativeSimulator {
            engine: Arc::new(engine),
        })
    }

    /// Whether runs go to the CPU reference engine.
    #[getter]
    fn is_cpu(&self) -> bool {
        self.engine.simulator.is_cpu()
    }

    /// Whether the GPU context exists yet (it is created on the first run).
    #[getter]
    fn has_context(&self) -> bool {
        self.engine.simulator.has_context()
    }

    /// One run. Returns a dict: csv (the CLI's CSV), config (JSON text),
    /// summary (JSON text or None), per_network (CSV text or None), tops
    /// (per network: log m1, log m2 of the whole-network Jacobian), warnings
    /// (list of str).
    #[pyo3(signature = (settings_json, chunk, checkpoint_every = None, max_memory = None, per_network = false, progress = None, spp = false))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        settings_json: &str,
        chunk: usize,
        checkpoint_every: Option<usize>,
        max_memory: Option<u64>,
        per_network: bool,
        progress: Option<Bound<'py, PyAny>>,
        spp: bool,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let mut spec = resolve(settings_json, DEFAULT_NETWORKS, chunk)?;
        if spp {
            let Some(a) = spec.arch.as_mut() else {
                return Err(PyValueError::new_err(
                    "spp: needs arch (its statistics are per channel of each block's output)",
                ));
            };
            a.spp = true;
            // an explicit gram cannot take it: refused before any work
            varprop::gpu::choose_engine(&spec).map_err(py_err)?;
        }
        let options = GpuOptions {
            chunk,
            checkpoint_every,
            max_memory,
        };
        let run = self.execute(py, spec, options, &mut callback(progress.as_ref()))?;
        let spec = &run.spec;
        let table = run.table_with_theory();
        let out = pyo3::types::PyDict::new(py);
        out.set_item("csv", table.to_csv())?;
        out.set_item("config", to_json(&report::config_json(spec, &run)))?;
        out.set_item(
            "summary",
            spec.probes
                .jacobian
                .then(|| to_json(&report::jacobian_summary(&run))),
        )?;
        out.set_item(
            "ntk",
            varprop::analysis::ntk::ntk_report(spec, &run).map(|r| to_json(&r)),
        )?;
        out.set_item("per_network", per_network.then(|| per_network_csv(&run)))?;
        // every network's whole-network Jacobian moments (NaN without jacobian)
        let tops: Vec<(f64, f64)> = run
            .tops
            .iter()
            .map(|t| (t.log_jac_m1, t.log_jac_m2))
            .collect();
        out.set_item("tops", tops)?;
        out.set_item("warnings", run.warnings.clone())?;
        Ok(out)
    }

    /// `check` for one configuration: the run compared with theory (with
    /// `theory_sigma_w2`, the test-only wrong theory). Returns a dict:
    /// passed, bound, comparisons (JSON text), csv, config.
    #[pyo3(signature = (settings_json, chunk, checkpoint_every = None, max_memory = None, max_z = None, theory_sigma_w2 = None, progress = None))]
    #[allow(clippy::too_many_arguments)]
    fn check<'py>(
        &self,
        py: Python<'py>,
        settings_json: &str,
        chunk: usize,
        checkpoint_every: Option<usize>,
        max_memory: Option<u64>,
        max_z: Option<f64>,
        theory_sigma_w2: Option<f64>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let spec = resolve(settings_json, checking::CHECK_NETWORKS, chunk)?;
        varprop::spec::check_networks_for_standard_errors("check", spec.networks)
            .and_then(|()| varprop::analysis::suite::check_max_z("--max-z", max_z))
            .map_err(|e| py_err(e.with_field_names()))?;
        let mut theory_net = spec.net.clone();
        if let Some(w) = theory_sigma_w2 {
            theory_net.init.sigma_w2 = w;
        }
        let options = GpuOptions {
            chunk,
            checkpoint_every,
            max_memory,
        };
        let run = self.execute(py, spec, options, &mut callback(progress.as_ref()))?;
        let outcome = checking::check_run(&run, &theory_net, max_z);
        let out = pyo3::types::PyDict::new(py);
        out.set_item("passed", outcome.passed())?;
        out.set_item("bound", outcome.bound)?;
        out.set_item("comparisons", to_json(&outcome.comparisons))?;
        out.set_item("csv", outcome.table.to_csv())?;
        out.set_item("config", to_json(&report::config_json(&run.spec, &run)))?;
        out.set_item("warnings", run.warnings.clone())?;
        Ok(out)
    }

    /// `varprop compare`: one run per scheme (the product of the lists,
    /// given as the CLI's comma-separated text). Returns a dict: csv (the
    /// CLI's CSV: every layer of every scheme with a `scheme` column),
    /// schemes (JSON text: the `schemes` of `--format json`), warnings.
    #[pyo3(signature = (settings_json, inits, acts, sigma_w2s, chunk, checkpoint_every = None, max_memory = None, progress = None))]
    #[allow(clippy::too_many_arguments)]
    fn compare<'py>(
        &self,
        py: Python<'py>,
        settings_json: &str,
        inits: Option<&str>,
        acts: Option<&str>,
        sigma_w2s: Option<&str>,
        chunk: usize,
        checkpoint_every: Option<usize>,
        max_memory: Option<u64>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        use varprop::analysis::compare::{
            ACTS_FLAG, INITS_FLAG, SIGMA_W2S_FLAG, SchemeLists, parse_names, parse_numbers, schemes,
        };
        use varprop::analysis::headline::{Headline, table_with_theory};
        use varprop::io::output::LabelledTable;
        check_chunk(chunk)?;
        let names = |flag: &str, t: Option<&str>| -> PyResult<Vec<String>> {
            Ok(t.map(|t| parse_names(flag, t))
                .transpose()
                .map_err(py_err)?
                .unwrap_or_default())
        };
        let lists = SchemeLists {
            acts: names(ACTS_FLAG, acts)?,
            inits: names(INITS_FLAG, inits)?,
            sigma_w2s: sigma_w2s
                .map(|t| parse_numbers(SIGMA_W2S_FLAG, t))
                .transpose()
                .map_err(py_err)?
                .unwrap_or_default(),
        };
        let schemes =
            schemes(&settings(settings_json)?, &lists, DEFAULT_NETWORKS).map_err(py_err)?;
        let options = GpuOptions {
            chunk,
            checkpoint_every,
            max_memory,
        };
        let specs: Vec<&RunSpec> = schemes.iter().map(|(_, s)| s).collect();
        let runs = self.execute_all(py, &specs, options, progress.as_ref())?;
        let mut parts = Vec::new();
        let mut docs = Vec::new();
        let mut warnings = Vec::new();
        for ((scheme, spec), run) in schemes.iter().zip(&runs) {
            let (table, predictions) = table_with_theory(spec, run);
            let headline = Headline::of(spec, run, &table, &predictions);
            docs.push(serde_json::json!({
                "scheme": scheme.label,
                "config": report::config_json(spec, run),
                "headline": headline,
            }));
            parts.push((vec![scheme.label.clone()], table));
            warnings.extend(
                run.warnings
                    .iter()
                    .map(|w| format!("{}: {w}", scheme.label)),
            );
        }
        let out = pyo3::types::PyDict::new(py);
        out.set_item(
            "csv",
            LabelledTable::stack(vec!["scheme".into()], parts).to_csv(),
        )?;
        out.set_item("schemes", to_json(&docs))?;
        out.set_item("warnings", warnings)?;
        Ok(out)
    }

    /// `varprop phase`: one run per grid point (ranges as the CLI's A:B:N
    /// text). Returns a dict: csv (the CLI's CSV), act, depth, warnings.
    #[pyo3(signature = (settings_json, sigma_w2_range, sigma_b2_range, chunk, checkpoint_every = None, max_memory = None, progress = None))]
    #[allow(clippy::too_many_arguments)]
    fn phase<'py>(
        &self,
        py: Python<'py>,
        settings_json: &str,
        sigma_w2_range: &str,
        sigma_b2_range: &str,
        chunk: usize,
        checkpoint_every: Option<usize>,
        max_memory: Option<u64>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        use varprop::analysis::phase;
        check_chunk(chunk)?;
        let sigma_w2s = phase::parse_range("--sigma-w2-range", sigma_w2_range).map_err(py_err)?;
        let sigma_b2s = phase::parse_range("--sigma-b2-range", sigma_b2_range).map_err(py_err)?;
        let grid = phase::grid(
            &settings(settings_json)?,
            &sigma_w2s,
            &sigma_b2s,
            DEFAULT_NETWORKS,
        )
        .map_err(py_err)?;
        varprop::spec::check_networks_for_standard_errors("phase", grid[0].2.networks)
            .map_err(|e| py_err(e.with_field_names()))?;
        let options = GpuOptions {
            chunk,
            checkpoint_every,
            max_memory,
        };
        let specs: Vec<&RunSpec> = grid.iter().map(|(_, _, s)| s).collect();
        let runs = self.execute_all(py, &specs, options, progress.as_ref())?;
        let mut warnings = Vec::new();
        for ((w, b, _), run) in grid.iter().zip(&runs) {
            warnings.extend(
                run.warnings
                    .iter()
                    .map(|x| format!("sigma_w2 {w}, sigma_b2 {b}: {x}")),
            );
        }
        let points = phase::phase_points(&grid, &runs);
        let spec = &grid[0].2;
        let out = pyo3::types::PyDict::new(py);
        out.set_item("csv", phase::phase_table(&points).to_csv())?;
        out.set_item("act", spec.net.act.to_string())?;
        out.set_item("depth", spec.net.depth())?;
        out.set_item("warnings", warnings)?;
        Ok(out)
    }

    /// `varprop sweep FILE --out-dir DIR [--shard I/N] [--force]`: the
    /// result files and the summary exactly as the command writes them.
    /// Returns a dict: summary (its path), configurations, computed,
    /// skipped, message (the command's last line), warnings.
    #[pyo3(signature = (path, out_dir, shard, force, chunk, checkpoint_every = None, max_memory = None, progress = None))]
    #[allow(clippy::too_many_arguments)]
    fn sweep<'py>(
        &self,
        py: Python<'py>,
        path: std::path::PathBuf,
        out_dir: std::path::PathBuf,
        shard: Option<&str>,
        force: bool,
        chunk: usize,
        checkpoint_every: Option<usize>,
        max_memory: Option<u64>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        use varprop::sweep::driver;
        check_chunk(chunk)?;
        let configs = driver::load(&path).map_err(py_err)?;
        let shard = driver::shard(shard, "--shard").map_err(py_err)?;
        // the CLI's lock: a second sweep of this shard into out_dir (from
        // Python or the command line) is refused; held until the summary
        let mut warnings = Vec::new();
        let _lock =
            match varprop::sweep::lock::acquire(&out_dir, shard.map(|(s, _)| s), false, |_| {})
                .map_err(|e| py_err(e.with_field_names()))?
            {
                varprop::sweep::lock::Acquired::Held(held) => Some(held),
                varprop::sweep::lock::Acquired::Unsupported(why) => {
                    warnings.push(format!("sweep: {why}"));
                    None
                }
            };
        let plan =
            driver::plan(&configs, shard.map(|(s, _)| s), &out_dir, force).map_err(py_err)?;
        let options = GpuOptions {
            chunk,
            checkpoint_every,
            max_memory,
        };
        let specs: Vec<&RunSpec> = plan.todo.iter().map(|&k| &configs[k].1).collect();
        // each result is written as its run finishes: an interrupted sweep
        // keeps what it computed
        self.execute_each(py, &specs, options, progress.as_ref(), |i, run| {
            let (config, spec) = &configs[plan.todo[i]];
            warnings.extend(
                run.warnings
                    .iter()
                    .map(|w| format!("{} ({}): {w}", config.id, config.point)),
            );
            driver::write_result(&out_dir, config, spec, &run).map_err(py_err)?;
            Ok(())
        })?;
        let summary = driver::write_summary(&out_dir, &configs, &plan, shard.map(|(s, _)| s))
            .map_err(py_err)?;
        let out = pyo3::types::PyDict::new(py);
        out.set_item("summary", summary.display().to_string())?;
        out.set_item("configurations", configs.len())?;
        out.set_item("computed", plan.todo.len())?;
        out.set_item("skipped", plan.mine.len() - plan.todo.len())?;
        out.set_item(
            "message",
            driver::summary_line(configs.len(), &plan, shard, &out_dir, &summary),
        )?;
        out.set_item("warnings", warnings)?;
        Ok(out)
    }

    /// `varprop check --config FILE [--golden DIR] [--bless]`: `suite` is
    /// the suite's TOML text, `label` its name in errors and reports,
    /// `settings_json` the defaults of every case. Returns a dict: passed,
    /// text (the report `check` prints), json (`--format json`'s), cases
    /// (one dict per case: name, passed, bound, comparisons, csv, config,
    /// warnings, golden).
    #[pyo3(signature = (suite, label, settings_json, golden, bless, chunk, checkpoint_every = None, max_memory = None, max_z = None, theory_sigma_w2 = None, progress = None))]
    #[allow(clippy::too_many_arguments)]
    fn check_suite<'py>(
        &self,
        py: Python<'py>,
        suite: &str,
        label: &str,
        settings_json: &str,
        golden: Option<std::path::PathBuf>,
        bless: bool,
        chunk: usize,
        checkpoint_every: Option<usize>,
        max_memory: Option<u64>,
        max_z: Option<f64>,
        theory_sigma_w2: Option<f64>,
        progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        use varprop::analysis::suite as s;
        check_chunk(chunk)?;
        s::check_max_z("--max-z", max_z).map_err(|e| py_err(e.with_field_names()))?;
        let base = settings(settings_json)?;
        let parsed = s::parse_suite(label, suite).map_err(py_err)?;
        let max_z = max_z.or(parsed.max_z);
        let mut cases = Vec::new();
        for (i, case) in parsed.cases.iter().enumerate() {
            let name = s::case_name(i, case);
            let prepared = s::prepare_case(&base.overlay(case), theory_sigma_w2)
                .map_err(|e| py_err(s::case_error(label, &name, e)))?;
            cases.push((name, prepared));
        }
        if let Some(dir) = &golden {
            let names: Vec<String> = cases.iter().map(|(n, _)| n.clone()).collect();
            s::check_golden_files(dir, &names, bless).map_err(|e| py_err(e.with_field_names()))?;
        }
        let options = GpuOptions {
            chunk,
            checkpoint_every,
            max_memory,
        };
        let specs: Vec<&RunSpec> = cases.iter().map(|(_, (spec, _))| spec).collect();
        let runs = self.execute_all(py, &specs, options, progress.as_ref())?;
        let mut verdicts = Vec::new();
        let case_dicts = pyo3::types::PyList::empty(py);
        for ((name, (_, theory_net)), run) in cases.iter().zip(&runs) {
            let (verdict, outcome) = s::judge_case(
                name,
                run,
                theory_net,
                max_z,
                golden.as_deref().map(|d| (d, bless)),
            )
            .map_err(|e| py_err(s::case_error(label, name, e)))?;
            let d = pyo3::types::PyDict::new(py);
            d.set_item("name", name)?;
            d.set_item("passed", verdict.passed())?;
            d.set_item("bound", outcome.bound)?;
            d.set_item("comparisons", to_json(&outcome.comparisons))?;
            d.set_item("csv", outcome.table.to_csv())?;
            d.set_item("config", to_json(&report::config_json(&run.spec, run)))?;
            d.set_item("warnings", run.warnings.clone())?;
            match &verdict.golden {
                None => d.set_item("golden", py.None())?,
                Some(g) => {
                    let gd = pyo3::types::PyDict::new(py);
                    gd.set_item("comparisons", g.comparisons)?;
                    gd.set_item("bound", g.bound)?;
                    gd.set_item("failures", g.failures.clone())?;
                    gd.set_item(
                        "written",
                        g.written.as_ref().map(|p| p.display().to_string()),
                    )?;
                    d.set_item("golden", gd)?;
                }
            }
            case_dicts.append(d)?;
            verdicts.push(verdict);
        }
        let out = pyo3::types::PyDict::new(py);
        out.set_item("passed", verdicts.iter().all(|v| v.passed()))?;
        out.set_item("text", s::report_text(&verdicts))?;
        out.set_item("json", s::report_json(&verdicts))?;
        out.set_item("cases", case_dicts)?;
        Ok(out)
    }
}
