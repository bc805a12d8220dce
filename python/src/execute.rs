//! How `NativeSimulator` runs specs: on a worker thread with the GIL
//! released, Ctrl-C and cancellation honoured, one progress count.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use varprop::gpu::GpuOptions;
use varprop::sim::RunOutput;
use varprop::spec::RunSpec;

use crate::convert::*;
use crate::simulator::*;

impl NativeSimulator {
    /// Runs `spec` on a worker thread and waits with the GIL released,
    /// checking for signals every 100 ms. On KeyboardInterrupt (or an
    /// exception from `progress`) it returns at once; the worker stops at
    /// the engine's next progress report (after the chunk of layers in
    /// flight: dense and gram engines report per chunk, the block and CPU
    /// engines per network) by unwinding out of the engine, which drops its
    /// device buffers; the context stays usable. Nothing is written to disk
    /// by a run, so nothing is left half-written.
    pub(crate) fn execute(
        &self,
        py: Python<'_>,
        spec: RunSpec,
        options: GpuOptions,
        progress: &mut dyn FnMut(u64, u64) -> PyResult<()>,
    ) -> PyResult<RunOutput> {
        let engine = Arc::clone(&self.engine);
        let cancel = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        {
            let (cancel, done, total) = (cancel.clone(), done.clone(), total.clone());
            std::thread::Builder::new()
                .name("varprop-run".into())
                .spawn(move || {
                    let result = catch_unwind(AssertUnwindSafe(|| {
                        let _busy = engine.busy.lock().unwrap_or_else(|e| e.into_inner());
                        if cancel.load(Ordering::Relaxed) {
                            resume_unwind(Box::new(Cancelled));
                        }
                        engine.simulator.run_with(&spec, options, |d, t| {
                            done.store(d, Ordering::Relaxed);
                            total.store(t, Ordering::Relaxed);
                            if cancel.load(Ordering::Relaxed) {
                                // resume_unwind does not run the panic hook: no message
                                resume_unwind(Box::new(Cancelled));
                            }
                        })
                    }));
                    let outcome = match result {
                        Ok(r) => Outcome::Done(r),
                        Err(p) if p.is::<Cancelled>() => Outcome::Cancelled,
                        Err(p) => Outcome::Panicked(
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "a panic".into()),
                        ),
                    };
                    // the receiver is gone when the caller was interrupted
                    let _ = tx.send(outcome);
                })
                .map_err(|e| {
                    PyRuntimeError::new_err(format!("cannot start the run's thread: {e}"))
                })?;
        }
        let mut shown = (u64::MAX, 0);
        let mut report = || -> PyResult<()> {
            let now = (done.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
            if now != shown && now.1 > 0 {
                shown = now;
                progress(now.0, now.1)?;
            }
            Ok(())
        };
        // a Receiver is not Sync: the closure that waits without the GIL borrows it
        let rx = Mutex::new(rx);
        loop {
            let wait = || {
                let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                rx.recv_timeout(Duration::from_millis(100))
            };
            match py.detach(wait) {
                Ok(Outcome::Done(r)) => {
                    report()?;
                    return r.map_err(py_err);
                }
                Ok(Outcome::Cancelled) => {
                    return Err(PyRuntimeError::new_err("the run was cancelled"));
                }
                Ok(Outcome::Panicked(msg)) => {
                    return Err(PyRuntimeError::new_err(format!("the run panicked: {msg}")));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals().and_then(|_| report()) {
                        cancel.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err(
                        "the run's thread ended without a result",
                    ));
                }
            }
        }
    }
}

impl NativeSimulator {
    /// Runs several specs one after another on this simulator, with one
    /// progress count over all of them, handing each output to `each` as
    /// it finishes (Ctrl-C between or during runs stops at once).
    pub(crate) fn execute_each(
        &self,
        py: Python<'_>,
        specs: &[&RunSpec],
        options: GpuOptions,
        progress: Option<&Bound<'_, PyAny>>,
        mut each: impl FnMut(usize, RunOutput) -> PyResult<()>,
    ) -> PyResult<()> {
        let total: u64 = specs.iter().map(|s| work(s)).sum();
        let mut cb = callback(progress);
        let mut offset = 0;
        for (i, spec) in specs.iter().enumerate() {
            py.check_signals()?;
            let run = self.execute(py, (*spec).clone(), options, &mut |d, _| {
                cb(offset + d, total)
            })?;
            offset += work(spec);
            cb(offset, total)?;
            each(i, run)?;
        }
        Ok(())
    }

    pub(crate) fn execute_all(
        &self,
        py: Python<'_>,
        specs: &[&RunSpec],
        options: GpuOptions,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<RunOutput>> {
        let mut runs = Vec::with_capacity(specs.len());
        self.execute_each(py, specs, options, progress, |_, run| {
            runs.push(run);
            Ok(())
        })?;
        Ok(runs)
    }
}
