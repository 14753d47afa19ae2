#!/usr/bin/env bash
# Runs a conversion plan's jobs as parallel processes on this machine (xargs -P), then finishes it:
# what a Slurm array or a Kubernetes Indexed Job does across machines (docs/CLUSTER.md).
#   scripts/convert_jobs.sh PLAN.json [PROCESSES] [MOECKPT]
set -euo pipefail
plan=$1
processes=${2:-$(nproc)}
bin=${3:-moeckpt}
jobs=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["jobs"]))' "$plan")
seq 0 $((jobs - 1)) | xargs -P "$processes" -I{} "$bin" convert --plan "$plan" --job {} --quiet
"$bin" convert --plan "$plan" --finish
