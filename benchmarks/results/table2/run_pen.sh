#!/usr/bin/env bash
# Table 2, pen-binary at the paper's protocol (1M offline + 1M online), seed 0: run_table2.sh with RECIPE=pen-binary.
# Resumable: run it again. The offline phase's checkpoint is kept in the repository (checkpoints/, replaced at every 100k
# and at the phase's end): on a machine whose /work/runs is gone, the run rebuilds the dataset and goes on from it (the
# data's fingerprint checked). The online phase's checkpoints (with the replay buffer) stay in /work/runs/table2/out.
# THREADS=2 gives it both cores (a 1M online phase: 2.2-2.4 h); the default, one thread, leaves the other core free.
RECIPE=pen-binary STEPS=1000000 exec bash "$(dirname "$0")/run_table2.sh"
