#!/usr/bin/env bash
# IQL at 300k on one antmaze-d4rl dataset, one seed a call, as the v0 runs of ../antmaze_d4rl/ (issue 60):
#   NAME=medium-play-v1 SEED=0 bash benchmarks/results/antmaze_d4rl_v1/run_v1.sh        D4RL's recipe (v1)
#   NAME=medium-play-v1 DRIVING=ours SEED=0 bash benchmarks/results/antmaze_d4rl_v1/run_v1.sh   v1's ant, our driving
# The AntMaze preset, 300k gradient steps, 100 evaluation episodes every 50k in the paper's task, compiled, one thread.
# A missing dataset is built first (8-11 min). The offline checkpoint is kept in checkpoints/ (replaced at every
# evaluation), so a run a session's end cuts short goes on from it once the rebuilt data's fingerprint matches; commit
# it once, when work on the run stops. Rows: out/runs/iql/<dataset>/seed<k>/evaluations.csv.
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=${THREADS:-1} SB3_IQL_THREADS=${THREADS:-1} MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1
NAME=${NAME:?set NAME, e.g. medium-play-v1} SEED=${SEED:-0} DRIVING=${DRIVING:-}
RECIPE=antmaze-d4rl-${NAME%-v0}
DATASET=$(python -c "
from sb3_iql.datasets.antmaze_d4rl import dataset_id
name, version = '$NAME'.rsplit('-v', 1)
print(dataset_id(name, version=int(version), driving='$DRIVING' or None))") || exit 2
python -c "import minari, sys; sys.exit(0 if '$DATASET' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build "$RECIPE" ${DRIVING:+--driving "$DRIVING"}
python benchmarks/offline.py "$DATASET" --algos iql --seeds 1 --first-seed "$SEED" --offline-steps 300000 \
  --eval-freq 50000 --eval-episodes 100 --workers 1 --compile --out /work/runs/antmaze_d4rl_v1 \
  --keep benchmarks/results/antmaze_d4rl_v1/checkpoints
