//! `varprop compare`: several schemes (init schemes, activations, weight
//! variances) on one shape, one seed and one batch, side by side. A scheme
//! is the base run's settings with some of act, init and sigma_w2 replaced.

use crate::config::settings::{NetworkSettings, RunSettings};
use crate::error::{Error, Result};
use crate::model::init::InitFlags;
use crate::spec::RunSpec;

/// One scheme: its name (the `scheme` column) and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Scheme {
    pub label: String,
    pub settings: RunSettings,
}

/// The lists the schemes are the product of; an empty list leaves the
/// base's setting alone.
#[derive(Clone, Debug, Default)]
pub struct SchemeLists {
    pub acts: Vec<String>,
    pub inits: Vec<String>,
    pub sigma_w2s: Vec<f64>,
}

pub const ACTS_FLAG: &str = "--acts";
pub const INITS_FLAG: &str = "--inits";
pub const SIGMA_W2S_FLAG: &str = "--sigma-w2s";

/// A comma-separated list of names: trimmed, none empty, none twice.
pub fn parse_names(flag: &str, text: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(Error::invalid(
                flag,
                format!("'{text}': an empty name in the list (give NAME,NAME,...)"),
            ));
        }
        if out.iter().any(|o| o == item) {
            return Err(Error::invalid(flag, format!("'{item}' is listed twice")));
        }
        out.push(item.to_string());
    }
    Ok(out)
}

/// A comma-separated list of numbers, none twice.
pub fn parse_numbers(flag: &str, text: &str) -> Result<Vec<f64>> {
    let mut out: Vec<f64> = Vec::new();
    for item in parse_names(flag, text)? {
        let v: f64 = item
            .parse()
            .map_err(|_| Error::invalid(flag, format!("'{item}' is not a number")))?;
        if out.contains(&v) {
            return Err(Error::invalid(flag, format!("{v} is listed twice")));
        }
        out.push(v);
    }
    Ok(out)
}

/// The schemes: every combination of the lists (activations outermost,
/// then inits, then sigma_w2), each resolved once here so that bad input
/// fails before anything runs. Errors name the list flag and the scheme.
pub fn schemes(
    base: &RunSettings,
    lists: &SchemeLists,
    default_networks: usize,
) -> Result<Vec<(Scheme, RunSpec)>> {
    if lists.acts.is_empty() && lists.inits.is_empty() && lists.sigma_w2s.is_empty() {
        return Err(Error::invalid(
            INITS_FLAG,
            "give the schemes to compare: --inits, --acts and/or --sigma-w2s, comma-separated",
        ));
    }
    let clashes = [
        (
            !lists.acts.is_empty() && base.net.act.is_some(),
            "--act",
            ACTS_FLAG,
        ),
        (
            !lists.inits.is_empty() && base.net.init.init.is_some(),
            "--init",
            INITS_FLAG,
        ),
        (
            !lists.sigma_w2s.is_empty() && base.net.init.sigma_w2.is_some(),
            "--sigma-w2",
            SIGMA_W2S_FLAG,
        ),
    ];
    for (clash, single, list) in clashes {
        if clash {
            return Err(Error::invalid(
                single,
                format!("give either {single} or the list {list}, not both"),
            ));
        }
    }
    let options = |v: &[String]| -> Vec<Option<String>> {
        if v.is_empty() {
            vec![None]
        } else {
            v.iter().cloned().map(Some).collect()
        }
    };
    let sigmas: Vec<Option<f64>> = if lists.sigma_w2s.is_empty() {
        vec![None]
    } else {
        lists.sigma_w2s.iter().copied().map(Some).collect()
    };
    let mut out = Vec::new();
    for act in options(&lists.acts) {
        for init in options(&lists.inits) {
            for sigma_w2 in &sigmas {
                let mut parts: Vec<String> = Vec::new();
                parts.extend(act.clone());
                parts.extend(init.clone());
                parts.extend(sigma_w2.map(|s| format!("sigma_w2={s}")));
                let label = parts.join("/");
                let point = RunSettings {
                    net: NetworkSettings {
                        act: act.clone(),
                        init: InitFlags {
                            init: init.clone(),
                            sigma_w2: *sigma_w2,
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let settings = base.overlay(&point);
                let spec = settings.resolve(default_networks).map_err(|e| match e {
                    Error::Invalid { flag, message } => {
                        let flag = match flag.as_str() {
                            "--act" if !lists.acts.is_empty() => ACTS_FLAG.to_string(),
                            "--init" if !lists.inits.is_empty() => INITS_FLAG.to_string(),
                            "--sigma-w2" if !lists.sigma_w2s.is_empty() => {
                                SIGMA_W2S_FLAG.to_string()
                            }
                            _ => flag,
                        };
                        Error::invalid(flag, format!("scheme '{label}': {message}"))
                    }
                    other => other,
                })?;
                out.push((Scheme { label, settings }, spec));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_checked() {
        assert_eq!(
            parse_names("--inits", "a, b").unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(parse_names("--inits", "a,,b").is_err());
        assert!(parse_names("--inits", "a,a").is_err());
        assert!(parse_numbers("--sigma-w2s", "1,x").is_err());
        assert_eq!(
            parse_numbers("--sigma-w2s", "1,2.5").unwrap(),
            vec![1.0, 2.5]
        );
    }

    #[test]
    fn schemes_are_the_product_and_errors_name_the_list() {
        let base = RunSettings {
            net: NetworkSettings {
                width: Some(8),
                depth: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let lists = SchemeLists {
            acts: vec!["relu".into(), "tanh".into()],
            inits: vec!["xavier-normal".into(), "he-normal".into()],
            ..Default::default()
        };
        let s = schemes(&base, &lists, 4).unwrap();
        let labels: Vec<&str> = s.iter().map(|(s, _)| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "relu/xavier-normal",
                "relu/he-normal",
                "tanh/xavier-normal",
                "tanh/he-normal"
            ]
        );
        let bad = SchemeLists {
            inits: vec!["he-normal".into(), "kaiming-magic".into()],
            ..Default::default()
        };
        let err = schemes(&base, &bad, 4).unwrap_err().to_string();
        assert!(
            err.starts_with("--inits:") && err.contains("kaiming-magic"),
            "{err}"
        );
        let none = schemes(&base, &SchemeLists::default(), 4).unwrap_err();
        assert!(none.to_string().starts_with("--inits:"));
    }
}
