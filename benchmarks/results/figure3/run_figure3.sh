#!/usr/bin/env bash
# Figure 3 on the D4RL-physics medium-play: expectile 0.5 and 0.7, and 0.9 with the mean of the twin critics, 300k steps,
# seed $SEED (0 or 1; run one seed per core); the preset's own runs (0.9, min) are antmaze_d4rl/medium_play_evaluations.csv.
# Resumable: each run's offline checkpoint is kept in checkpoints/ (replaced at every evaluation), so a run that a
# session's end cuts short goes on from there on another machine once the rebuilt data's fingerprint matches.
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=1 SB3_IQL_THREADS=1 MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1
SEED=${SEED:-0}
python -c "import minari, sys; sys.exit(0 if 'sb3-iql/antmaze-d4rl/medium-play-v0' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build antmaze-d4rl-medium-play
python benchmarks/offline.py sb3-iql/antmaze-d4rl/medium-play-v0 --algos iql-tau0.5 iql-tau0.7 iql-mean-q \
  --seeds 1 --first-seed "$SEED" --offline-steps 300000 --eval-freq 50000 --eval-episodes 100 --workers 1 --compile \
  --out /work/runs/figure3/seed"$SEED" --keep benchmarks/results/figure3/checkpoints
