#!/usr/bin/env bash
# The one prepared run for a machine with a real GPU (the device tool's
# H200, whose sessions are short): the adapter, `varprop bench`, the Signal
# Propagation Plots of the paper-size ResNet-600s (Brock, De and Smith
# 2021: BN-ReLU ResNet-V2-600, NF-ResNet-600 with and without scaled WS,
# full widths, 32x32 images, batch 8, 4 networks), the gram engine at
# width 10^6, depth 1,000, and a layer-norm MLP at width 10^6 on gram with
# the backward pass. It needs no toolchain there: build here, carry the
# binary.
#
#   cargo build --release
#   device run: command "scripts/gpu-check.sh", carry ["target/release/varprop", ".gl"]
#
# (.gl: the Vulkan loader packages, as /work/.library/device/README.md
# says to fetch them.) Writes under $OUT (./gpu-check when unset), at most 8
# files: log.txt (every step's time and the end of its output),
# devices.json, bench.json, spp_<net>.csv for the three nets, gram_1e6.csv,
# layer_norm_mlp.csv.
# GPU_CHECK_QUICK=1 runs the same steps at small sizes (a smoke test of the
# script on lavapipe).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
varprop=${VARPROP:-target/release/varprop}

quick=${GPU_CHECK_QUICK:-0}
if [ "$quick" = 1 ]; then
    nets="resnet_v2_600_quarter nf_resnet_600_quarter nf_resnet_600_quarter_no_ws"
    spp_flags="--batch 2 --networks 1"
    bench_flags="--quick"
    gram_flags="--width 4096 --depth 100"
    ln_width=4096
else
    nets="resnet_v2_600 nf_resnet_600 nf_resnet_600_no_ws"
    spp_flags="--batch 8 --networks 4"
    bench_flags=""
    gram_flags="--width 1000000 --depth 1000"
    ln_width=1000000
fi

# one step: its command line, wall time and the end of its output in the log
step() {
    echo "== $*" >>"$out/log.txt"
    local start=$SECONDS
    "$@" >"$out/step.txt" 2>&1
    local rc=$?
    tail -n 20 "$out/step.txt" >>"$out/log.txt"
    echo "-- rc $rc, $((SECONDS - start)) s" >>"$out/log.txt"
    rm -f "$out/step.txt"
}

: >"$out/log.txt"
step "$varprop" devices --format json
"$varprop" devices --format json >"$out/devices.json" 2>/dev/null
# shellcheck disable=SC2086
step "$varprop" bench $bench_flags --format json --out "$out/bench.json"
for net in $nets; do
    # shellcheck disable=SC2086
    step "$varprop" spp --arch "architectures/resnets/$net.toml" $spp_flags --device gpu \
        --quiet --out "$out/spp_$net.csv"
done
# shellcheck disable=SC2086
step "$varprop" run --engine gram $gram_flags --batch 16 --networks 1 --device gpu --quiet \
    --format csv --out "$out/gram_1e6.csv"
# the layer-norm MLP (100 layers) at that width on the gram engine, with the backward pass
ln_file="$(mktemp -d)/layer_norm_mlp.toml"
sed "s/= 256/= $ln_width/g" architectures/layer_norm_mlp.toml >"$ln_file"
step "$varprop" run --arch "$ln_file" --engine gram --backward --batch 16 \
    --networks 1 --device gpu --quiet --format csv --out "$out/layer_norm_mlp.csv"
cat "$out/log.txt"
