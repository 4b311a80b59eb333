"""
How good the Adroit binary tasks' data already is, on the published scale: the room online finetuning has.

    python benchmarks/diagnostics/binary_data.py [--tasks pen door relocate] [--expert-episodes 50]

For each task, the normalized score (100 x (return + T) / T, the share of the episode spent solved) of the
built dataset's episodes, of its demonstrations and BC rollouts apart (with the share of their steps solved and of
their episodes solved at some step), and of the DAPG expert (mean action and sampled) in the same env, beside the
paper's IQL offline -> online. A dataset that is not built is
left out of its row. Writes ``<out>/binary_data.md``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import PAPER, write_markdown

from sb3_iql.data.episodes import rollout_episodes
from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.datasets.adroit import (
    AWAC_DEMOS,
    BINARY_TASKS,
    binary_dataset_id,
    binary_demos,
    binary_reference_scores,
    load_expert,
    make_binary_env,
)


def describe(episodes: list, low: float, high: float) -> list[str]:
    """
    :return: The episodes' mean normalized score, the share of their steps spent solved and the share solved at some
        step (the success rate Cal-QL and WSRL report). A piece shorter than the limit scores high on the first scale
        (the steps it lacks count as solved); the second has no such bias.
    """
    returns = np.array([np.sum(episode.rewards) for episode in episodes])
    rewards = np.concatenate([episode.rewards for episode in episodes])
    return [
        f"{np.mean(100 * (returns - low) / (high - low)):.1f}",
        f"{100 * np.mean(rewards == 0):.1f}",
        f"{100 * np.mean([episode.rewards.max() == 0 for episode in episodes]):.0f}",
    ]


def demo_and_rollout_episodes(task: str) -> tuple[list, list] | None:
    """:return: The built dataset's demonstrations (its first episodes) and BC rollouts, or None where it is not built."""
    try:
        dataset = load_minari_dataset(binary_dataset_id(task))
    except (ValueError, FileNotFoundError):
        return None
    episodes = list(dataset.iterate_episodes())
    n_demo_episodes = len(binary_demos(task, AWAC_DEMOS, source=None, seed=0, progress=False))  # pen's and door's are cut
    return episodes[:n_demo_episodes], episodes[n_demo_episodes:]


def expert_score(task: str, n_episodes: int, deterministic: bool) -> str:
    env = make_binary_env(task)
    episodes = rollout_episodes(env, load_expert(task, deterministic=deterministic), n_episodes, seed=10_000, progress=False)
    return describe(episodes, *binary_reference_scores(task))[0]  # the datasets' reference scores: the same scale


def row(task: str, n_expert_episodes: int) -> str:
    low, high = binary_reference_scores(task)
    parts = demo_and_rollout_episodes(task)
    data = ["-"] * 7
    if parts is not None:
        demos, rollouts = parts
        data = [describe(demos + rollouts, low, high)[0], *describe(demos, low, high), *describe(rollouts, low, high)]
    experts = [expert_score(task, n_expert_episodes, deterministic) for deterministic in (True, False)]
    offline, online = PAPER["table2"][f"{task}-binary-v0"]
    return f"| {task}-binary | " + " | ".join([*data, *experts, f"{offline:.1f} → {online:.1f}"]) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=BINARY_TASKS, default=list(BINARY_TASKS))
    parser.add_argument("--expert-episodes", type=int, default=50, help="episodes per DAPG expert measurement")
    parser.add_argument("--out", default="runs/binary_data")
    args = parser.parse_args()
    lines = [
        "| task | data: all episodes | demonstrations | demos: steps solved (%) | demos: solved at some step (%) "
        "| BC rollouts | rollouts: steps solved (%) | rollouts: solved at some step (%) | DAPG expert (mean action) "
        "| DAPG expert (sampled) | paper: IQL offline → online |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(task, args.expert_episodes) for task in args.tasks),
    ]
    write_markdown(args.out, "binary_data.md", lines)


if __name__ == "__main__":
    main()
