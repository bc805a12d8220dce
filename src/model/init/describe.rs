//! The schemes in words, per convention: which library function each name
//! stands for and its law (`varprop inits`, the README's table), and one
//! phrase for a resolved layer's law (the run's config block and header).

use super::{Convention, Dist, SCHEME_NAMES, Scheme, WeightLaw};

/// The library function a scheme name stands for under a convention, and
/// its law as a formula (v = variance of one entry, fan = fan_in unless
/// --fan-mode, s = gain / sqrt(fan)).
pub fn scheme_in_words(scheme: Scheme, convention: Convention) -> (&'static str, &'static str) {
    use Convention::*;
    use Scheme::*;
    match (scheme, convention) {
        (XavierNormal, Pytorch) => (
            "torch.nn.init.xavier_normal_(w, gain)",
            "N(0, v), v = gain^2 2/(fan_in + fan_out)",
        ),
        (XavierNormal, _) => (
            "glorot_normal() = variance_scaling(1, 'fan_avg', 'truncated_normal')",
            "v = gain^2 2/(fan_in + fan_out), normal cut at +-2 std and rescaled",
        ),
        (XavierUniform, Pytorch) => (
            "torch.nn.init.xavier_uniform_(w, gain)",
            "U(+-sqrt(3 v)), v = gain^2 2/(fan_in + fan_out)",
        ),
        (XavierUniform, _) => (
            "glorot_uniform() = variance_scaling(1, 'fan_avg', 'uniform')",
            "U(+-sqrt(3 v)), v = gain^2 2/(fan_in + fan_out)",
        ),
        (HeNormal, Pytorch) => (
            "torch.nn.init.kaiming_normal_(w, a=0, mode, nonlinearity='leaky_relu')",
            "N(0, v), v = gain^2/fan, gain = calculate_gain(nonlinearity, a) = sqrt 2 by default",
        ),
        (HeNormal, _) => (
            "he_normal() = variance_scaling(2, 'fan_in', 'truncated_normal')",
            "v = 2/fan (gain sqrt 2), normal cut at +-2 std and rescaled",
        ),
        (HeUniform, Pytorch) => (
            "torch.nn.init.kaiming_uniform_(w, a=0, mode, nonlinearity='leaky_relu')",
            "U(+-sqrt(3 v)), v = gain^2/fan, gain = calculate_gain(nonlinearity, a) = sqrt 2 by default",
        ),
        (HeUniform, _) => (
            "he_uniform() = variance_scaling(2, 'fan_in', 'uniform')",
            "U(+-sqrt(3 v)), v = 2/fan (gain sqrt 2)",
        ),
        (LecunNormal, Pytorch) => (
            "(no torch.nn.init function) kaiming_normal_(w, nonlinearity='linear')",
            "N(0, v), v = gain^2/fan_in",
        ),
        (LecunNormal, _) => (
            "lecun_normal() = variance_scaling(1, 'fan_in', 'truncated_normal')",
            "v = gain^2/fan_in, normal cut at +-2 std and rescaled",
        ),
        (LecunUniform, Pytorch) => (
            "(no torch.nn.init function) kaiming_uniform_(w, nonlinearity='linear')",
            "U(+-sqrt(3 v)), v = gain^2/fan_in",
        ),
        (LecunUniform, _) => (
            "lecun_uniform() = variance_scaling(1, 'fan_in', 'uniform')",
            "U(+-sqrt(3 v)), v = gain^2/fan_in",
        ),
        (TruncatedNormal, Pytorch) => (
            "torch.nn.init.trunc_normal_(w, std=s, a=-2, b=2)",
            "N(0, s^2) cut at +-2 (absolute bounds), s = gain/sqrt(fan)",
        ),
        (TruncatedNormal, Jax) => (
            "jax.nn.initializers.truncated_normal(stddev=s)",
            "N(0, s^2) cut at +-2 s, not rescaled: v = 0.774 s^2, s = gain/sqrt(fan)",
        ),
        (TruncatedNormal, Flax) => (
            "variance_scaling(gain^2, mode, 'truncated_normal')",
            "v = gain^2/fan, normal cut at +-2 std and rescaled",
        ),
        (Orthogonal, Pytorch) => (
            "torch.nn.init.orthogonal_(w, gain)",
            "Haar orthogonal times gain: v = gain^2/max(fan_in, fan_out)",
        ),
        (Orthogonal, _) => (
            "orthogonal(scale=gain)",
            "Haar orthogonal times gain: v = gain^2/max(fan_in, fan_out)",
        ),
        (Siren, _) => (
            "the SIREN reference layers (Sitzmann et al. 2020)",
            "layer 1 U(+-1/fan_in), then U(+-sqrt(6/fan_in)/omega); bias nn.Linear's U(+-1/sqrt(fan_in))",
        ),
        (TorchDefault, _) => (
            "nn.Linear's default: kaiming_uniform_(w, a=sqrt 5)",
            "U(+-1/sqrt(fan_in)), v = 1/(3 fan_in); bias U(+-1/sqrt(fan_in))",
        ),
        (Custom, _) => (
            "(varprop's own) --sigma-w2, --dist",
            "v = sigma_w2/fan_in; its truncated-normal is cut at +-2 std and rescaled",
        ),
    }
}

/// Every scheme name, in the order `--help` lists them.
pub fn schemes() -> impl Iterator<Item = Scheme> {
    SCHEME_NAMES.iter().map(|(_, s)| *s)
}

/// One layer's weight law in words: "normal, v fan_in = 2",
/// "truncated-normal (+-2 std), v fan_in = 2", ...
pub fn law_in_words(law: &WeightLaw, fan_in: usize) -> String {
    let dist = match law.dist {
        Dist::TruncatedNormal { bound } => format!("truncated-normal (+-{} std)", short(bound)),
        d => d.name().to_string(),
    };
    format!("{dist}, v fan_in = {}", short(law.variance * fan_in as f64))
}

/// The bias law in words: "none", "normal, variance 0.05", "uniform, variance 0.0013".
pub fn bias_in_words(law: &WeightLaw) -> String {
    if law.variance == 0.0 {
        "none".into()
    } else {
        format!("{}, variance {}", law.dist.name(), short(law.variance))
    }
}

/// Four significant digits, no trailing zeros.
fn short(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if x.abs() < 1e-4 {
        format!("{x:.3e}")
    } else {
        s
    }
}
