#!/usr/bin/env bash
# Regenerates the README's pictures (docs/compare.svg, docs/phase.svg,
# docs/ntk_phase.svg).
# On lavapipe (2 cores) this takes about three minutes; on a GPU, seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
varprop=${CARGO_TARGET_DIR:-target}/release/varprop

# relu at width 128: Xavier halves q every layer, He keeps it, PyTorch's
# nn.Linear default (v = 1/(3 fan_in) and a uniform bias) falls to the bias's
# fixed point; the gradient panel shows the same from the other end
"$varprop" compare --inits xavier-normal,he-normal,torch-default \
    --width 128 --depth 50 --networks 8 --backward --quiet \
    --plot docs/compare.svg --format table

# erf: the correlation of two inputs after 30 layers over (sigma_w2, sigma_b2),
# measured beside mean-field theory, with the edge of chaos chi_1 = 1
"$varprop" phase --act erf --width 128 --depth 30 --networks 8 --batch 8 \
    --sigma-w2-range 0.25:4:16 --sigma-b2-range 0:0.5:11 --quiet \
    --plot docs/phase.svg --out /dev/null

# erf: log10 of the NTK's condition number over the batch after 30 layers,
# measured (gram engine, width 256) beside infinite width: the trainability
# diagram of Xiao, Pennington and Schoenholz (2020)
"$varprop" phase --quantity ntk_cond --act erf --width 256 --depth 30 --networks 8 --batch 8 \
    --sigma-w2-range 0.25:4:16 --sigma-b2-range 0:0.5:11 --quiet \
    --plot docs/ntk_phase.svg --out /dev/null
ls -l docs/*.svg
