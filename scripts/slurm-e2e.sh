#!/usr/bin/env bash
# The README's Slurm scripts, end to end, on a single-node Slurm started on
# this machine (issue 15): the README's sweep.sbatch with its array cut to
# three shards, one task cancelled while it runs, the merge job that then
# never starts, the cancelled task resubmitted alone, the README's merge
# line, and the merged summary compared byte for byte with the sweep run in
# one go. Needs root (it starts munged, slurmctld and slurmd) and installs
# Debian's slurm-wlm and munge where they are missing.
#
#   scripts/slurm-e2e.sh            (VARPROP=path/to/varprop to pick a binary)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
VARPROP="${VARPROP:-$repo/target/release/varprop}"
[ -x "$VARPROP" ] || { echo "slurm-e2e: no varprop binary at $VARPROP (cargo build --release first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "slurm-e2e: needs root, to start munged, slurmctld and slurmd" >&2; exit 2; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work="$(mktemp -d)"
export SLURM_CONF="$work/etc/slurm.conf"
mkdir -p "$work/etc" "$work/spool/ctld" "$work/spool/d" "$work/log" "$work/bin" "$work/munge"
cleanup() {
    local rc=$?
    scancel --user=root >/dev/null 2>&1 || true
    for p in slurmd slurmctld munged; do pkill -f "$p.*$work" 2>/dev/null || true; done
    # the daemons write their state until they exit: wait, then remove
    for _ in $(seq 50); do
        pgrep -f "(slurmd|slurmctld|munged).*$work" >/dev/null || break
        sleep 0.2
    done
    [ "$rc" = 0 ] || { echo "slurm-e2e: failed; logs:" >&2; tail -n 20 "$work"/log/* "$work"/case/logs/* >&2 2>/dev/null || true; }
    rm -rf "$work" 2>/dev/null || true
    exit "$rc"
}
trap cleanup EXIT

# munge: a key of its own and a socket in the work directory
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --force --key-file="$work/munge/munge.key" --socket="$socket" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/seed"

host="$(hostname -s)"
cpus="$(nproc)"
cat > "$SLURM_CONF" <<EOF
ClusterName=varprop-ci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/spool/ctld
SlurmdSpoolDir=$work/spool/d
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
    sleep 1
done
sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || { echo "slurm-e2e: the node did not come up" >&2; exit 1; }

# varprop on the tasks' PATH, and a sweep of 6 configurations, seconds
# each on lavapipe, so that a task can be cancelled while it runs
ln -s "$VARPROP" "$work/bin/varprop"
export PATH="$work/bin:$PATH"
mkdir -p "$work/case" && cd "$work/case"
cat > sweep.toml <<'EOF'
width = 128
depth = 1000
networks = 4
act = "tanh"

[grid]
init = ["xavier-normal", "he-normal", "orthogonal"]
seed = [0, 1]
EOF

# the README's two scripts, as the README prints them, the array cut to 3
readme_block() { # the n-th ```sh block of the README
    awk -v n="$1" '/^```sh$/ {k++; inside = (k == n); next} /^```$/ {inside = 0} inside' "$repo/README.md"
}
block=$(grep -c '^```sh$' "$repo/README.md")
sbatch_block=0
for k in $(seq "$block"); do
    if readme_block "$k" | grep -q '^# sweep.sbatch'; then sbatch_block=$k; fi
done
[ "$sbatch_block" -gt 0 ] || { echo "slurm-e2e: no sweep.sbatch block in README.md" >&2; exit 1; }
readme_block "$sbatch_block" | sed -e 's/--array=0-63/--array=0-2/' -e 's/--shards 64/--shards 3/' \
    -e 's/--cpus-per-task=2/--cpus-per-task=1/' > sweep.sbatch
grep -q -- '--shards 3' sweep.sbatch && grep -q -- '--array=0-2' sweep.sbatch
readme_block $((sbatch_block + 1)) > submit.sh
grep -q 'sbatch --parsable' submit.sh

# submit as the README does, then cancel task 1 once it runs
GRES="" bash submit.sh > submitted.txt
jobid=$(squeue -h -o '%F' | sort -n | head -n 1)
merge_job=$(squeue -h -o '%i %j' | awk '$2 == "wrap" {print $1}')
for _ in $(seq 120); do
    state=$(squeue -h -j "${jobid}_1" -o %T 2>/dev/null || true)
    [ "$state" = RUNNING ] && break
    sleep 0.5
done
[ "$state" = RUNNING ] || { echo "slurm-e2e: task 1 never ran (state '$state')" >&2; exit 1; }
# cancel it once its first configuration is written, midway through its second
for _ in $(seq 600); do
    compgen -G 'results/shard-1/*.json' >/dev/null && break
    sleep 0.2
done
scancel "${jobid}_1"
# wait for tasks 0 and 2; the merge job's afterok can now never be met
for _ in $(seq 600); do
    left=$(squeue -h -j "$jobid" -o %i 2>/dev/null | wc -l)
    [ "$left" = 0 ] && break
    sleep 1
done
[ "$left" = 0 ] || { echo "slurm-e2e: the array did not finish" >&2; exit 1; }
[ -f results/shard-0/summary-shard-0-of-3.csv ] && [ -f results/shard-2/summary-shard-2-of-3.csv ]
[ ! -f results/shard-1/summary-shard-1-of-3.csv ] || { echo "slurm-e2e: task 1 finished before it was cancelled" >&2; exit 1; }
if [ -n "$merge_job" ]; then scancel "$merge_job" || true; fi
# a merge now refuses: shard 1 is missing
if varprop merge results/shard-* --out results/summary.csv 2> merge.err; then
    echo "slurm-e2e: merge accepted a missing shard" >&2; exit 1
fi
grep -q 'shard 1 of' merge.err

# resubmit the cancelled task alone, then the README's merge line after it
job2=$(sbatch --parsable --array=1 sweep.sbatch)
sbatch --parsable --dependency=afterok:$job2 --wrap 'varprop merge results/shard-* --out results/summary.csv' > /dev/null
for _ in $(seq 600); do
    [ "$(squeue -h -o %i | wc -l)" = 0 ] && break
    sleep 1
done
[ -f results/summary.csv ] || { echo "slurm-e2e: no merged summary" >&2; exit 1; }
# what the resubmitted task found of the cancelled one's work
grep -h '^sweep:' logs/"${job2}"_1.out >&2 || true

# the sweep in one go, without Slurm
XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" varprop sweep sweep.toml --out-dir whole -q 2>/dev/null
if cmp -s results/summary.csv whole/summary.csv; then
    echo "slurm-e2e: 3 shards on Slurm (task 1 cancelled and resubmitted), merged: byte-identical to the unsharded sweep ($(($(wc -l < whole/summary.csv) - 1)) configurations)"
else
    diff results/summary.csv whole/summary.csv | head >&2
    echo "slurm-e2e: the merged summary differs from the unsharded sweep" >&2
    exit 1
fi
