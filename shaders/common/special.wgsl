// Special functions in f32: erf, erfc, erfinv, expm1. Twins in Rust: libm
// (erf, erfc, expm1) and rng::erfinv_giles.

const FRAC_2_SQRT_PI: f32 = 1.12837916709551;

// erfc for x >= 0 (Numerical Recipes' erfcc): relative error < 1.2e-7.
fn erfc_nonneg(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-x * x + p);
}

fn erfc(x: f32) -> f32 {
    if (x >= 0.0) {
        return erfc_nonneg(x);
    }
    return 2.0 - erfc_nonneg(-x);
}

fn erf(x: f32) -> f32 {
    let a = abs(x);
    if (a < 0.5) {
        // Taylor series: 1 - erfc(x) would cancel near 0.
        let x2 = x * x;
        let s = 1.0 + x2 * (-1.0 / 3.0 + x2 * (1.0 / 10.0 + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 + x2 * (-1.0 / 1320.0)))));
        return FRAC_2_SQRT_PI * x * s;
    }
    return sign(x) * (1.0 - erfc_nonneg(a));
}

// exp(x) - 1 without cancellation near 0.
fn expm1(x: f32) -> f32 {
    if (abs(x) < 0.1) {
        return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0)))));
    }
    return exp(x) - 1.0;
}

// Giles' single-precision erfinv (GPU Computing Gems, 2011).
fn erfinv(x: f32) -> f32 {
    var w = -log((1.0 - x) * (1.0 + x));
    var p: f32;
    if (w < 5.0) {
        w = w - 2.5;
        p = 2.81022636e-08;
        p = 3.43273939e-07 + p * w;
        p = -3.5233877e-06 + p * w;
        p = -4.39150654e-06 + p * w;
        p = 0.00021858087 + p * w;
        p = -0.00125372503 + p * w;
        p = -0.00417768164 + p * w;
        p = 0.246640727 + p * w;
        p = 1.50140941 + p * w;
    } else {
        w = sqrt(w) - 3.0;
        p = -0.000200214257;
        p = 0.000100950558 + p * w;
        p = 0.00134934322 + p * w;
        p = -0.00367342844 + p * w;
        p = 0.00573950773 + p * w;
        p = -0.0076224613 + p * w;
        p = 0.00943887047 + p * w;
        p = 1.00167406 + p * w;
        p = 2.83297682 + p * w;
    }
    return p * x;
}
