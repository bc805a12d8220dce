#!/usr/bin/env bash
# Regenerates the README's pictures (docs/compare.svg, docs/phase.svg,
# docs/ntk_phase.svg, docs/spp_*.svg with their CSV).
# On lavapipe (2 cores) this takes about ten minutes; on a GPU, seconds.
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

# Signal Propagation Plots (Brock, De and Smith 2021) of ResNet-600 shapes at
# a quarter of the widths, 32x32 Gaussian images, batch 8, 4 networks: the
# BN-ReLU ResNet-V2's linear growth and reset per stage, and the NF-ResNet's
# alpha^2 steps with and without scaled weight standardisation (the squared
# channel mean). About two minutes each on lavapipe.
for net in resnet_v2_600_quarter nf_resnet_600_quarter nf_resnet_600_quarter_no_ws; do
    "$varprop" spp --arch architectures/resnets/$net.toml --batch 8 --networks 4 --quiet \
        --plot docs/spp_$net.svg --out docs/spp_$net.csv
done
# Rank collapse (Dong et al. 2021) and the query/key gradients (Noci et al.
# 2022) of the transformer files: 1 - token cosine, the tokens' stable rank
# and grad W_Q / grad W_V against depth (seconds, on the CPU reference)
"$varprop" tokens --arch architectures/transformers/pure_attention.toml,architectures/transformers/pre_ln.toml,architectures/transformers/post_ln.toml,architectures/transformers/post_ln_scaled.toml \
    --networks 8 --batch 4 --backward --quiet --plot docs/tokens.svg --format table > /dev/null
ls -l docs/*.svg
