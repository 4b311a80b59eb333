#!/usr/bin/env bash
# Figure 3 on the D4RL-physics medium-play: expectile 0.5 and 0.7, and 0.9 with the mean of the twin critics, 300k steps,
# seed $SEED (0 or 1; run one seed per core); the preset's own runs (0.9, min) are antmaze_d4rl/medium_play_evaluations.csv.
# Resumable: each run's offline checkpoint is kept in checkpoints/ (replaced at every evaluation), so a run that a
# session's end cuts short goes on from there on another machine once the rebuilt data's fingerprint matches. A finished
# run's rows are copied beside this file (medium_play_<setting>_seed<k>.csv) and its checkpoint removed; a setting
# whose CSV is here is skipped. Commit both after each run.
cd /work/main && . .venv/bin/activate
export OMP_NUM_THREADS=1 SB3_IQL_THREADS=1 MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-/work/runs/minari} HF_HUB_OFFLINE=1
SEED=${SEED:-0}
HERE=benchmarks/results/figure3
python -c "import minari, sys; sys.exit(0 if 'sb3-iql/antmaze-d4rl/medium-play-v0' in minari.list_local_datasets() else 1)" 2>/dev/null \
  || python -m sb3_iql.datasets build antmaze-d4rl-medium-play
for ALGO in iql-tau0.5 iql-tau0.7 iql-mean-q; do
  CSV=$HERE/medium_play_${ALGO}_seed$SEED.csv
  [ -f "$CSV" ] && continue
  python benchmarks/offline.py sb3-iql/antmaze-d4rl/medium-play-v0 --algos "$ALGO" \
    --seeds 1 --first-seed "$SEED" --offline-steps 300000 --eval-freq 50000 --eval-episodes 100 --workers 1 --compile \
    --out /work/runs/figure3/seed"$SEED" --keep $HERE/checkpoints || exit 1
  cp /work/runs/figure3/seed"$SEED"/offline/runs/"$ALGO"/sb3-iql_antmaze-d4rl_medium-play-v0/seed"$SEED"/evaluations.csv "$CSV"
  rm -f $HERE/checkpoints/"${ALGO}"_antmaze_d4rl_medium_play_seed"${SEED}"_offline.{zip,json}
done
