#!/usr/bin/env bash
# Table 2, pen-binary at the paper's protocol (1M offline + 1M online), one seed; resumable: run it again.
# The offline phase's checkpoint is kept in the repository (checkpoints/, replaced at every 100k and at the phase's end):
# on a machine whose /work/runs is gone, the run rebuilds the dataset and goes on from it (the data's fingerprint checked).
# THREADS=2 gives it both cores (115 steps/s measured: about 5 hours in all); the default, one thread, leaves the other core free.
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=${THREADS:-1} SB3_IQL_THREADS=${THREADS:-1} MINARI_DATASETS_PATH=/work/runs/minari HF_HUB_OFFLINE=1
python -c "import minari, sys; sys.exit(0 if 'sb3-iql/pen/binary-v1' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build pen-binary
python benchmarks/finetune.py sb3-iql/pen/binary-v1 --offline-steps 1000000 --online-steps 1000000 \
  --eval-freq 100000 --seeds 1 --eval-episodes 100 --workers 1 --compile --out /work/runs/table2/out \
  --keep benchmarks/results/table2/checkpoints
