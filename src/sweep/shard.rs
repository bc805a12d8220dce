//! Shards of a sweep: the I-th of N disjoint slices of the grid, from
//! `--shard I/N` or from an array job's environment.

use crate::error::{Error, Result};

/// The I-th of N disjoint slices of a grid: configuration k belongs to
/// shard k mod N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 0 <= I < N.
    pub fn parse(flag: &str, text: &str) -> Result<Shard> {
        let bad = || {
            Error::invalid(
                flag,
                format!("'{text}': expected I/N with 0 <= I < N, e.g. 0/4"),
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Shard ID of `count`, ID the array task's own number: Slurm's
    /// `SLURM_ARRAY_TASK_ID` as it is (`--array=0-63`, or any subset of it
    /// resubmitted), Grid Engine's `SGE_TASK_ID` less 1 (`qsub -t 1-64`).
    /// The count is the sweep's, never the submission's, so a task
    /// resubmitted alone runs its own shard.
    pub fn from_task_id(
        flag: &'static str,
        count: usize,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(Shard, &'static str)> {
        if count == 0 {
            return Err(Error::invalid(flag, "must be >= 1"));
        }
        let sge_id = var("SGE_TASK_ID").filter(|v| v.trim() != "undefined");
        let (id_var, text, first, scheduler) = match (var("SLURM_ARRAY_TASK_ID"), sge_id) {
            (Some(id), _) => ("SLURM_ARRAY_TASK_ID", id, 0, "Slurm"),
            (None, Some(id)) => ("SGE_TASK_ID", id, 1, "Grid Engine"),
            (None, None) => {
                return Err(Error::invalid(
                    flag,
                    "takes the shard's index from an array job's task id (SLURM_ARRAY_TASK_ID or \
                     SGE_TASK_ID), and neither is set; give --shard I/N outside one",
                ));
            }
        };
        let id: i64 = text.trim().parse().map_err(|_| {
            Error::invalid(
                id_var,
                format!("'{text}' is not an integer; give --shard I/N"),
            )
        })?;
        let index = id - first;
        if index < 0 || index >= count as i64 {
            return Err(Error::invalid(
                id_var,
                format!(
                    "task {id} is not a shard of {count} (tasks {first}..={} for {flag} {count})",
                    count as i64 - 1 + first
                ),
            ));
        }
        Ok((
            Shard {
                index: index as usize,
                count,
            },
            scheduler,
        ))
    }

    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index
    }

    /// The shard an array job's scheduler assigns, from its environment
    /// (`var` reads a variable), with the scheduler's name; None outside an
    /// array job.
    ///
    /// - Slurm: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, and
    ///   `SLURM_ARRAY_TASK_MIN` / `SLURM_ARRAY_TASK_STEP` when set: shard
    ///   (ID - MIN) / STEP of COUNT (`--array=0-63` or `1-64`).
    /// - Grid Engine (SGE, UGE, OGE): `SGE_TASK_ID`, `SGE_TASK_FIRST`,
    ///   `SGE_TASK_LAST`, `SGE_TASK_STEPSIZE` (`qsub -t 1-64`).
    ///
    /// PBS and LSF do not export the array's size: give
    /// `--shard $PBS_ARRAY_INDEX/64` (or `$((LSB_JOBINDEX - 1))/64`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<(Shard, &'static str)>> {
        let number = |name: &str| -> Result<Option<i64>> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                    Error::invalid(name, format!("'{v}' is not an integer; give --shard I/N"))
                }),
            }
        };
        // Grid Engine sets SGE_TASK_ID to "undefined" outside array jobs
        let sge_id = var("SGE_TASK_ID").filter(|v| v.trim() != "undefined");
        let (scheduler, id_var, id, first, count, step) = if var("SLURM_ARRAY_TASK_ID").is_some() {
            let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                Error::invalid(
                    "SLURM_ARRAY_TASK_COUNT",
                    "not set while SLURM_ARRAY_TASK_ID is; give --shard I/N",
                )
            })?;
            (
                "Slurm",
                "SLURM_ARRAY_TASK_ID",
                number("SLURM_ARRAY_TASK_ID")?.unwrap_or(0),
                number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0),
                count,
                number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1),
            )
        } else if sge_id.is_some() {
            let first = number("SGE_TASK_FIRST")?.unwrap_or(1);
            let step = number("SGE_TASK_STEPSIZE")?.unwrap_or(1);
            let last = number("SGE_TASK_LAST")?.ok_or_else(|| {
                Error::invalid(
                    "SGE_TASK_LAST",
                    "not set while SGE_TASK_ID is; give --shard I/N",
                )
            })?;
            if step < 1 {
                return Err(Error::invalid("SGE_TASK_STEPSIZE", "must be >= 1"));
            }
            (
                "Grid Engine",
                "SGE_TASK_ID",
                number("SGE_TASK_ID")?.unwrap_or(0),
                first,
                (last - first) / step + 1,
                step,
            )
        } else {
            return Ok(None);
        };
        let offset = id - first;
        if step < 1 || count < 1 || offset < 0 || offset % step != 0 || offset / step >= count {
            return Err(Error::invalid(
                id_var,
                format!(
                    "task {id} is not one of {count} tasks from {first} in steps of {step} (a contiguous array such as 0-63 is needed); give --shard I/N"
                ),
            ));
        }
        Ok(Some((
            Shard {
                index: (offset / step) as usize,
                count: count as usize,
            },
            scheduler,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment of the given variables.
    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn with_a_shard_count_the_index_is_the_task_id() {
        // a task resubmitted alone (--array=1) is shard 1 of the sweep's 3
        let one = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
        ]);
        assert_eq!(
            Shard::from_task_id("--shards", 3, one).unwrap().0,
            Shard { index: 1, count: 3 }
        );
        let sge = env(&[("SGE_TASK_ID", "3")]);
        assert_eq!(
            Shard::from_task_id("--shards", 3, sge).unwrap().0,
            Shard { index: 2, count: 3 }
        );
        assert!(Shard::from_task_id("--shards", 3, env(&[("SLURM_ARRAY_TASK_ID", "3")])).is_err());
        assert!(Shard::from_task_id("--shards", 3, env(&[])).is_err());
        assert!(Shard::from_task_id("--shards", 0, env(&[("SLURM_ARRAY_TASK_ID", "0")])).is_err());
    }

    #[test]
    fn shards_come_from_the_flag_or_the_scheduler() {
        assert_eq!(
            Shard::parse("--shard", "1/3").unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert!(Shard::parse("--shard", "3/3").is_err());
        assert!(Shard::parse("--shard", "x").is_err());
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "64"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(
            Shard::from_env(slurm).unwrap(),
            Some((
                Shard {
                    index: 4,
                    count: 64
                },
                "Slurm"
            ))
        );
        let sge = env(&[
            ("SGE_TASK_ID", "3"),
            ("SGE_TASK_FIRST", "1"),
            ("SGE_TASK_LAST", "8"),
            ("SGE_TASK_STEPSIZE", "1"),
        ]);
        assert_eq!(
            Shard::from_env(sge).unwrap(),
            Some((Shard { index: 2, count: 8 }, "Grid Engine"))
        );
        assert_eq!(
            Shard::from_env(env(&[("SGE_TASK_ID", "undefined")])).unwrap(),
            None
        );
        assert!(Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "2")])).is_err());
    }
}
