"""The runners' shared command line."""

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from protocol.reports import collect_rows
from protocol.runs import RunSpec, run_all, run_together


def common_arguments(parser, default_steps: int, default_eval_freq: int) -> None:
    """Arguments both runners take."""
    parser.add_argument("datasets", nargs="+", help="Minari dataset ids (local, or downloadable)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per dataset (paper: 10 offline, 5 finetuning)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (add seeds to earlier runs: --first-seed 1)")
    parser.add_argument("--offline-steps", type=int, default=default_steps, help="gradient steps offline (paper: 1M)")
    parser.add_argument("--eval-freq", type=int, default=default_eval_freq, help="steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default: paper's: 100 maze, 10 else)")
    parser.add_argument("--domain", help="hyperparameter domain for every dataset (default: from the dataset id)")
    parser.add_argument("--out", default="benchmarks/results", help="output folder (runs resume from here)")
    parser.add_argument("--compile", action="store_true", help="compile each run's gradient step (faster for long runs)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel runs (each uses one thread)")
    parser.add_argument(
        "--keep",
        help="a folder committed with the repository (e.g. benchmarks/results/table2/checkpoints) for each run's "
        "offline-phase checkpoint: a run resumes from it where its run folder is gone, once the rebuilt data's "
        "fingerprint matches",
    )
    parser.add_argument("--ray", action="store_true", help="run with Ray instead of a local process pool")
    parser.add_argument("--ray-address", help="Ray cluster address ('auto' joins a running cluster)")
    parser.add_argument(
        "--vectorized",
        action="store_true",
        help="train each (algo, dataset)'s seeds at once in this process (IQL.learn_offline_together; for a GPU)",
    )


def default_eval_episodes(dataset_id: str) -> int:
    """The paper evaluates AntMaze with 100 episodes and the other domains with 10."""
    return 100 if "maze" in dataset_id.lower() else 10


def dispatch(specs: Sequence[RunSpec], args) -> list[dict[str, Any]]:
    if args.vectorized:
        groups: dict[RunSpec, list[RunSpec]] = {}
        for spec in specs:
            groups.setdefault(replace(spec, seed=0), []).append(spec)
        print(f"{len(specs)} runs planned, the seeds of each of {len(groups)} (algo, dataset) at once", flush=True)
        for group in groups.values():
            run_together(group)
    else:
        run_all(specs, args.workers, args.ray_address, args.ray)
    return collect_rows(specs)
