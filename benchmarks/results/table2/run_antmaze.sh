#!/usr/bin/env bash
# Table 2's AntMaze rows on the D4RL-physics mazes, one run per call:
#   TASK=medium-play bash benchmarks/results/table2/run_antmaze.sh                  the paper's 1M + 1M (seed 0)
#   TASK=umaze-diverse SEED=1 STEPS=300000 bash benchmarks/results/table2/run_antmaze.sh   the 300k + 300k rows
# TASK: umaze, umaze-diverse, medium-play, medium-diverse, large-play or large-diverse. The AntMaze finetune preset;
# online in the paper's terminating maze; 100 evaluation episodes every 100k steps (50k at 300k). A 1M phase takes
# about 2.8 h of one core offline (~100 steps/s): the offline checkpoint is kept in the repository (checkpoints/, or
# checkpoints/300k/ for the short rows; replaced at every evaluation), so each phase can run on another day once the
# rebuilt data's fingerprint matches. THREADS=2 gives a run both cores. The dataset build takes 8-11 min.
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=${THREADS:-1} SB3_IQL_THREADS=${THREADS:-1} MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1
TASK=${TASK:-umaze} SEED=${SEED:-0} STEPS=${STEPS:-1000000}
KEEP=benchmarks/results/table2/checkpoints
[ "$STEPS" = 1000000 ] || KEEP=$KEEP/$((STEPS / 1000))k
python -c "import minari, sys; sys.exit(0 if 'sb3-iql/antmaze-d4rl/$TASK-v0' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build "antmaze-d4rl-$TASK"
python benchmarks/finetune.py "sb3-iql/antmaze-d4rl/$TASK-v0" --offline-steps "$STEPS" --online-steps "$STEPS" \
  --eval-freq $((STEPS == 1000000 ? 100000 : 50000)) --seeds 1 --first-seed "$SEED" --eval-episodes 100 --workers 1 --compile \
  --out "/work/runs/table2/antmaze$((STEPS / 1000))k" --keep "$KEEP"
