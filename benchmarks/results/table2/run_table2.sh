#!/usr/bin/env bash
# One Table 2 run (offline, then online finetuning) for a dataset recipe of `python -m sb3_iql.datasets`, one call a run:
#   RECIPE=door-binary SEED=1 STEPS=300000 bash benchmarks/results/table2/run_table2.sh   door/relocate-binary, 300k + 300k
#   RECIPE=door-binary bash benchmarks/results/table2/run_table2.sh                       the paper's 1M + 1M, seed 0
#   (run_pen.sh is RECIPE=pen-binary)
#   RECIPE=antmaze-d4rl-medium-play bash benchmarks/results/table2/run_table2.sh          AntMaze, D4RL-physics maze
# The domain's finetune preset (AntMaze finetunes in the paper's terminating maze); 100 evaluation episodes every 100k
# steps (50k for shorter runs). The offline phase's checkpoint is kept in the repository (checkpoints/ for 1M runs,
# checkpoints/<steps>k/ otherwise; replaced at every evaluation): a run that a session's end cuts short goes on from
# it on another machine once the rebuilt data's fingerprint matches. Commit it once, when work on the run stops
# (benchmarks/results/README.md), not at every evaluation. A 1M offline phase takes ~2.8 h of one core (~100
# steps/s), 300k + 300k ~1.8 h; THREADS=2 gives a run both cores. A missing dataset is built first
# (pen/door/relocate-binary ~30 min, antmaze-d4rl-* 8-11 min).
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=${THREADS:-1} SB3_IQL_THREADS=${THREADS:-1} MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1
RECIPE=${RECIPE:?set RECIPE, e.g. door-binary or antmaze-d4rl-umaze} SEED=${SEED:-0} STEPS=${STEPS:-1000000}
DATASET=$(python -c "from sb3_iql.datasets import RECIPES; print(RECIPES['$RECIPE'].dataset_ids[0])" 2>/dev/null) \
  || { echo "Unknown recipe '$RECIPE': see python -m sb3_iql.datasets --help" >&2; exit 2; }
KEEP=benchmarks/results/table2/checkpoints OUT=/work/runs/table2/out  # the 1M runs' (pen-binary's since 2026-12-01)
[ "$STEPS" = 1000000 ] || { KEEP=$KEEP/$((STEPS / 1000))k; OUT=/work/runs/table2/$((STEPS / 1000))k; }
python -c "import minari, sys; sys.exit(0 if '$DATASET' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build "$RECIPE"
python benchmarks/finetune.py "$DATASET" --offline-steps "$STEPS" --online-steps "$STEPS" \
  --eval-freq $((STEPS >= 1000000 ? 100000 : 50000)) --seeds 1 --first-seed "$SEED" --eval-episodes 100 --workers 1 \
  --compile --out "$OUT" --keep "$KEEP"
