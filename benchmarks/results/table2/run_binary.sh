#!/usr/bin/env bash
# Table 2, door-binary and relocate-binary at 300k offline + 300k online (issue: door/relocate rows), one run per call:
#   TASK=door SEED=0 bash benchmarks/results/table2/run_binary.sh      (TASK: door or relocate; SEED: 0 or 1)
# about 1.8 h of one core each (offline ~100 steps/s, online ~85 steps/s); run two side by side, one per core.
# The offline phase's checkpoint is kept in the repository (checkpoints/300k/, replaced at every evaluation): a run
# that a session's end cuts short goes on from it on another machine once the rebuilt data's fingerprint matches.
# STEPS=1000000 runs the paper's protocol instead (door-binary seed 0), kept in checkpoints/ beside pen-binary's.
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=${THREADS:-1} SB3_IQL_THREADS=${THREADS:-1} MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1
TASK=${TASK:-door} SEED=${SEED:-0} STEPS=${STEPS:-300000}
KEEP=benchmarks/results/table2/checkpoints
[ "$STEPS" = 1000000 ] || KEEP=$KEEP/$((STEPS / 1000))k
python -c "import minari, sys; sys.exit(0 if 'sb3-iql/$TASK/binary-v1' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build "$TASK-binary"
python benchmarks/finetune.py "sb3-iql/$TASK/binary-v1" --offline-steps "$STEPS" --online-steps "$STEPS" \
  --eval-freq $((STEPS == 1000000 ? 100000 : 50000)) --seeds 1 --first-seed "$SEED" --eval-episodes 100 --workers 1 --compile \
  --out "/work/runs/table2/$TASK$((STEPS / 1000))k" --keep "$KEEP"
