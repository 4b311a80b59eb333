"""Gradient steps per second of d3rlpy's IQL, run by speed.py in d3rlpy's own virtual environment.

d3rlpy 2.8 pins gymnasium==1.0.0, which conflicts with gymnasium-robotics, so it lives in
benchmarks/.venv-d3rlpy (see benchmarks/README.md); this script prints one JSON line.
"""

import argparse
import json
import time

import d3rlpy
import numpy as np
import torch as th


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--obs-dim", type=int, required=True)
    parser.add_argument("--act-dim", type=int, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=th.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    n = 20_000
    terminals = np.zeros(n, np.float32)
    terminals[999::1000] = 1.0
    dataset = d3rlpy.dataset.MDPDataset(
        observations=rng.normal(size=(n, args.obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, (n, args.act_dim)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        terminals=terminals,
    )
    # The paper's sizes: (256, 256) MLPs, batch 256 (d3rlpy's IQL defaults otherwise).
    algo = d3rlpy.algos.IQLConfig(batch_size=256).create(device=f"{args.device}:0")
    algo.build_with_dataset(dataset)
    # The body of d3rlpy's own fit() loop: sample a batch, update.
    for _ in range(20):
        algo.update(dataset.sample_transition_batch(256))
    synchronize = th.cuda.synchronize if args.device == "cuda" else lambda: None
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        algo.update(dataset.sample_transition_batch(256))
    synchronize()
    print(json.dumps({"steps_per_second": args.steps / (time.perf_counter() - start), "d3rlpy": d3rlpy.__version__}))


if __name__ == "__main__":
    main()
