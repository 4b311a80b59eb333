"""
What trained IQL models' value functions say of their data: Figure 3's argument in numbers.

    python benchmarks/diagnostics/critic_probe.py sb3-iql/antmaze-d4rl/medium-play-v0 A.zip B.zip ... [--samples 100000] [--out DIR]

Each model reads the dataset as it trained on it (``load_dataset``: its own rewards, terminals and goal semantics) and
the same transitions are drawn for every model (``--seed``). Per model: the mean of V(s) and of Q(s, a) for the
logged action (the target critics' minimum, or their mean where the model was trained so: what its V regressed to),
the mean advantage Q - V, the share of transitions whose advantage is positive (about 1 - expectile once V fits), the
mean advantage weight exp(beta A) (clipped as in training) and the share of the whole weight that the top 10% of
transitions carry. A higher expectile puts V nearer the best logged action's value, so fewer transitions get a
positive advantage and the actor's regression concentrates on them (the paper's Section 4 and Figure 3).
Writes ``<out>/critic_probe.md``.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the runners' protocol package
from protocol import write_markdown

from sb3_iql import IQL


@th.no_grad()
def probe(model: IQL, dataset: str, samples: int, seed: int) -> dict[str, float]:
    """:return: The value statistics of ``model`` on ``samples`` of the dataset's transitions, drawn with ``seed``."""
    model.load_dataset(dataset)
    np.random.seed(seed)  # SB3's ReplayBuffer.sample draws with NumPy's global generator
    batch = model.replay_buffer.sample(samples)
    qs = model.critic_target(batch.observations, batch.actions)  # (critics, batch)
    q = qs.min(dim=0).values if model.critic_reduction == "min" else qs.mean(dim=0)
    v = model.value(batch.observations)
    advantage = q - v
    weight = th.exp(model.beta * advantage).clamp(max=model.max_weight)
    top = th.topk(weight, max(len(weight) // 10, 1)).values
    return {
        "mean V": v.mean().item(),
        "mean Q": q.mean().item(),
        "mean advantage": advantage.mean().item(),
        "advantage > 0 (%)": 100 * (advantage > 0).float().mean().item(),
        "mean weight": weight.mean().item(),
        "top 10% of weight (%)": 100 * (top.sum() / weight.sum()).item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="the Minari dataset id the models trained on")
    parser.add_argument("models", nargs="+", help="saved models (model.zip)")
    parser.add_argument("--samples", type=int, default=100_000, help="transitions drawn from the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", nargs="+", help="a name per model for the table (default: its path)")
    parser.add_argument("--out", default=".")
    args = parser.parse_args()
    if args.labels and len(args.labels) != len(args.models):
        parser.error(f"--labels names {len(args.labels)} models, and {len(args.models)} are given: give one label each.")
    rows = []
    for path, label in zip(args.models, args.labels or args.models):
        model = IQL.load(path, device="cpu")
        settings = f"expectile {model.expectile}, {model.critic_reduction} of the critics, {model.num_timesteps:,} steps"
        rows.append((label, settings, probe(model, args.dataset, args.samples, args.seed)))
    columns = list(rows[0][2])
    lines = [f"| model | settings | {' | '.join(columns)} |", "|" + "---|" * (len(columns) + 2)]
    lines += [
        f"| {label} | {settings} | " + " | ".join(f"{stats[c]:.3f}" for c in columns) + " |" for label, settings, stats in rows
    ]
    write_markdown(args.out, "critic_probe.md", lines)


if __name__ == "__main__":
    main()
