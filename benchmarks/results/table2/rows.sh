#!/usr/bin/env bash
# Commit-ready evidence of one Table 2 run, as it grows (run from anywhere; run_table2.sh's run folders):
#   bash benchmarks/results/table2/rows.sh door_binary_seed0 /work/runs/table2/out/finetune/runs/iql/sb3-iql_door_binary-v2/seed0
# copies the run's evaluations to <name>.csv, writes its training log (<name>_training.md/.png), the table over every
# run (table2.md, curves.png, the README's copy) and the results page. Then commit benchmarks/, README.md and docs/.
set -euo pipefail
NAME=${1:?usage: rows.sh NAME RUN_FOLDER (e.g. door_binary_seed0 <out>/finetune/runs/iql/<dataset>/seed0)}
RUN=${2:?usage: rows.sh NAME RUN_FOLDER}
[ -f "$RUN/evaluations.csv" ] || { echo "$RUN has no evaluations.csv: pass a run folder finetune.py wrote" >&2; exit 2; }
cd "$(dirname "$0")/../../.." && . .venv/bin/activate
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MPLBACKEND=Agg
HERE=benchmarks/results/table2
cp "$RUN/evaluations.csv" "$HERE/$NAME.csv"
python benchmarks/diagnostics/training_log.py "$RUN" --name "$NAME" --out "$HERE"
python benchmarks/table2.py "$HERE"/*_seed*.csv --out "$HERE" --readme README.md
python benchmarks/results_page.py
