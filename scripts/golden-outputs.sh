#!/usr/bin/env bash
# The outputs of a fixed list of commands, to show that a refactor changes
# no number (issue 13): every subcommand, every engine (dense, gram, blocks,
# CPU), forward, --backward, --jacobian, --weight-grads, orthogonal weights,
# every architecture file, check with a suite and golden files, compare, a
# sharded sweep with merge, phase and theory.
#
#   scripts/golden-outputs.sh record DIR      run them all, write DIR/<name>.out
#   scripts/golden-outputs.sh compare A B     byte-compare two recordings
#
# Recorded files drop only what may differ without a change of numbers: the
# `engine_reason` and `version` lines of JSON and the adapter's probe figure.
set -euo pipefail
cd "$(dirname "$0")/.."
VARPROP="${VARPROP:-target/release/varprop}"
ARCHS="${ARCHS:-$(ls -d architectures 2>/dev/null || echo examples)}"

normalise() {
    { grep -v -E '"(engine_reason|version)":' || true; } | sed -E 's/probe error [0-9.e+-]+/probe error X/g'
}

record() {
    local out="$1"
    # without an adapter every GPU case records the same error, before and
    # after a change alike, and the comparison would show nothing
    if ! "$VARPROP" devices > /dev/null 2>&1; then
        echo "no GPU adapter: install mesa-vulkan-drivers (or a GPU driver) before recording" >&2
        exit 2
    fi
    mkdir -p "$out"
    local work
    work="$(mktemp -d)"
    run_case() { # name, then the command's arguments
        local name="$1"
        shift
        if "$VARPROP" "$@" > "$work/stdout" 2> "$work/stderr"; then rc=0; else rc=$?; fi
        local shown="${*//$work/WORK}"
        { echo "# varprop ${shown//$ARCHS\//ARCHS/} (exit $rc)"; normalise < "$work/stdout" | sed "s|$work|WORK|g"; } > "$out/$name.out"
        echo "$name: exit $rc" >&2
    }
    local small=(--width 32 --depth 6 --batch 4 --networks 2 --seed 7 --format json -q)
    local wide=(--width 64 --depth 6 --batch 4 --networks 2 --seed 7 --format json -q)
    run_case run-dense run "${small[@]}" --engine dense
    run_case run-gram run "${wide[@]}" --engine gram
    run_case run-auto-csv run --width 64 --depth 20 --networks 2 --format csv -q
    run_case run-cpu run "${small[@]}" --device cpu
    run_case run-dense-backward run "${small[@]}" --engine dense --backward
    run_case run-gram-backward run "${wide[@]}" --engine gram --backward
    run_case run-dense-jacobian run "${small[@]}" --engine dense --jacobian
    run_case run-gram-jacobian run "${wide[@]}" --engine gram --jacobian
    run_case run-dense-weight-grads run "${small[@]}" --engine dense --weight-grads
    run_case run-gram-weight-grads run "${wide[@]}" --engine gram --weight-grads
    run_case run-cpu-backward run "${small[@]}" --device cpu --backward --jacobian --weight-grads
    run_case run-orthogonal-dense run "${small[@]}" --engine dense --init orthogonal --act tanh
    run_case run-orthogonal-gram run "${wide[@]}" --engine gram --init orthogonal --act tanh --backward
    run_case run-tanh-bias run "${small[@]}" --act tanh --sigma-w2 1.5 --sigma-b2 0.1 --dist uniform
    run_case run-widths run --widths 16,32x4,8 --batch 4 --networks 2 --format json -q
    run_case run-renorm run --width 32 --depth 40 --batch 4 --networks 2 --init xavier-normal --format csv -q
    for f in "$ARCHS"/*.toml; do
        local base
        base="$(basename "$f" .toml)"
        run_case "arch-$base" run --arch "$f" --batch 4 --networks 2 --seed 3 --format json -q
        run_case "arch-$base-backward-cpu" run --arch "$f" --batch 4 --networks 1 --seed 3 --device cpu --backward --format json -q
    done
    run_case theory-table theory --depth 50 --act tanh --sigma-w2 1.2 --sigma-b2 0.05 --format csv
    run_case theory-summary theory --act erf --sigma-w2 2 --sigma-b2 0.1 --summary --format json
    run_case theory-edge theory --act tanh --sigma-b2 0.05 --edge-of-chaos --format json
    run_case check-plain check --width 64 --depth 10 --networks 4 --format json -q
    printf '[[case]]\nname = "relu-he"\nact = "relu"\ninit = "he-normal"\nwidth = 32\ndepth = 5\nnetworks = 4\n\n[[case]]\nname = "erf"\nact = "erf"\nsigma-w2 = 2.0\nsigma_b2 = 0.1\nwidth = 32\ndepth = 5\nnetworks = 4\n' > "$work/suite.toml"
    run_case check-suite check --config "$work/suite.toml" --format json -q
    run_case check-bless check --config "$work/suite.toml" --golden "$work/golden" --bless -q
    for g in "$work"/golden/*; do cp "$g" "$out/golden-$(basename "$g").out"; done
    run_case check-golden check --config "$work/suite.toml" --golden "$work/golden" -q
    run_case compare compare --width 32 --depth 8 --batch 4 --networks 2 --inits he-normal,xavier-normal,orthogonal --format csv -q
    printf 'width = 16\ndepth = 4\nbatch = 4\nnetworks = 2\nact = "tanh"\n\n[grid]\ninit = ["xavier-normal", "he-normal"]\nsigma-b2 = [0.0, 0.1]\n' > "$work/sweep.toml"
    for i in 0 1; do
        run_case "sweep-shard$i" sweep "$work/sweep.toml" --out-dir "$work/shard$i" --shard "$i/2"
    done
    run_case merge merge "$work/shard0" "$work/shard1" --out "$work/merged.csv"
    { echo "# merged summary"; cat "$work/merged.csv"; } > "$out/merge-summary.out"
    for f in "$work"/shard*/*.json; do
        normalise < "$f" > "$out/sweep-$(basename "$(dirname "$f")")-$(basename "$f").out"
    done
    run_case phase phase --act tanh --width 32 --depth 10 --batch 4 --networks 2 --sigma-w2-range 0.5:2.5:3 --sigma-b2-range 0:0.2:2 --format csv -q
    rm -rf "$work"
}

case "${1:-}" in
    record) record "${2:?record DIR}" ;;
    compare)
        a="${2:?compare A B}"; b="${3:?compare A B}"
        if diff -r "$a" "$b"; then echo "identical: $(ls "$a" | wc -l) files"; else exit 1; fi ;;
    *) sed -n 2,12p "$0"; exit 2 ;;
esac
