// Activations phi and phi', twin of src/activation.rs. The activation is a
// pipeline-overridable constant, so each pipeline compiles one case.

override ACT: u32 = 1u;
override ACT_PARAM: f32 = 0.0;

const SELU_ALPHA: f32 = 1.67326324235438;
const SELU_SCALE: f32 = 1.05070098735548;
const FRAC_1_SQRT_2: f32 = 0.707106781186548;
const FRAC_1_SQRT_2PI: f32 = 0.398942280401433;

fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

fn phi(z: f32) -> f32 {
    switch ACT {
        case 0u: { return z; }
        case 1u: { return max(z, 0.0); }
        case 2u: { return select(ACT_PARAM * z, z, z > 0.0); }
        // the builtin may form (e^2z - 1)/(e^2z + 1), which is inf/inf for large z
        case 3u: { return select(tanh(z), sign(z), abs(z) > 10.0); }
        case 4u: { return sigmoid(z); }
        case 5u: { return clamp(z, 0.0, 6.0); }
        case 6u: { return sin(ACT_PARAM * z); }
        case 7u: { return select(SELU_SCALE * SELU_ALPHA * expm1(z), SELU_SCALE * z, z > 0.0); }
        case 8u: { return 0.5 * z * erfc(-z * FRAC_1_SQRT_2); }
        case 9u: { return select(expm1(z), z, z > 0.0); }
        case 10u: { return z * sigmoid(z); }
        case 11u: { return erf(z); }
        // below -15, log(1 + e^z) rounds to 0 in f32 while e^z does not
        case 12u: { return select(max(z, 0.0) + log(1.0 + exp(-abs(z))), exp(z), z < -15.0); }
        case 13u: { return abs(z); }
        default: { return z; }
    }
}

fn phi_deriv(z: f32) -> f32 {
    switch ACT {
        case 0u: { return 1.0; }
        case 1u: { return select(0.0, 1.0, z > 0.0); }
        case 2u: { return select(ACT_PARAM, 1.0, z > 0.0); }
        // 1 - tanh^2 and s (1 - s) cancel for large |z|: use exp(-|z|) forms
        case 3u: {
            let e = exp(-2.0 * abs(z));
            return 4.0 * e / ((1.0 + e) * (1.0 + e));
        }
        case 4u: {
            let e = exp(-abs(z));
            return e / ((1.0 + e) * (1.0 + e));
        }
        case 5u: { return select(0.0, 1.0, z > 0.0 && z < 6.0); }
        case 6u: { return ACT_PARAM * cos(ACT_PARAM * z); }
        case 7u: { return select(SELU_SCALE * SELU_ALPHA * exp(z), SELU_SCALE, z > 0.0); }
        case 8u: { return 0.5 * erfc(-z * FRAC_1_SQRT_2) + z * FRAC_1_SQRT_2PI * exp(-0.5 * z * z); }
        case 9u: { return select(exp(z), 1.0, z > 0.0); }
        case 10u: { return sigmoid(z) * (1.0 + z * sigmoid(-z)); }
        case 11u: { return FRAC_2_SQRT_PI * exp(-z * z); }
        case 12u: { return sigmoid(z); }
        case 13u: { return sign(z); }
        default: { return 1.0; }
    }
}
