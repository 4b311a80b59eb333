"""
Table 1 protocol: offline IQL on each dataset x seed with the domain's paper hyperparameters,
beside a BC and a 10% BC baseline computed the same way, and the paper's IQL numbers.

    python benchmarks/offline.py sb3-iql/door/human-v0 sb3-iql/pointmaze/umaze-diverse-v0 \\
        --offline-steps 2000 --eval-freq 1000 --seeds 2 --eval-episodes 5

Writes ``<out>/offline/evaluations.csv`` (every evaluation), ``table1.md`` (final normalized score,
mean ± std over seeds, domain totals, paper numbers and the difference) and ``curves.png``.
Full protocol: ``--offline-steps 1000000 --eval-freq 5000 --seeds 10`` (AntMaze: ``--eval-freq 100000``).
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from protocol import (
    ALGO_TITLES,
    ALGOS,
    PAPER,
    RunSpec,
    common_arguments,
    default_eval_episodes,
    dispatch,
    final_scores,
    infer_domain,
    mean_std,
    paper_name,
    paper_offline_score,
    plot_curves,
    table_group,
    write_csv,
)


def table(rows: list[dict], datasets: list[str], algos: list[str]) -> str:
    """Table 1 layout: a block per domain, a row per dataset, a totals row per domain."""
    scores = final_scores(rows, "offline")
    header = ["Dataset", *(ALGO_TITLES[a] for a in algos if a != "iql"), "IQL (ours)", "IQL (paper)", "ours - paper"]
    ordered = [a for a in algos if a != "iql"] + (["iql"] if "iql" in algos else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_domain: dict[str, list[str]] = defaultdict(list)
    for dataset in datasets:
        by_domain[table_group(paper_name(dataset))].append(dataset)
    for domain, members in by_domain.items():
        seed_totals: dict[str, dict[int, float]] = {algo: defaultdict(float) for algo in ordered}
        paper_total = 0.0
        for dataset in members:
            cells = []
            for algo in ordered:
                per_seed = scores.get((algo, dataset), {})
                cells.append(mean_std(list(per_seed.values())))
                for seed, score in per_seed.items():
                    seed_totals[algo][seed] += score
            name = paper_name(dataset)
            paper = paper_offline_score(name)
            ours = np.mean(list(scores.get(("iql", dataset), {}).values()) or [np.nan])
            paper_total += paper or 0.0
            label = f"{dataset} ({name})" if name else dataset
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {_number(paper)} | {_difference(ours, paper)} |")
        if domain in PAPER["table1"]:  # the paper's totals are per Table 1 domain
            totals = [mean_std(list(seed_totals[algo].values())) for algo in ordered]
            ours = np.mean(list(seed_totals.get("iql", {}).values()) or [np.nan])
            count = f" ({len(members)} of {len(PAPER['table1'][domain])})"
            lines.append(
                f"| **{domain} total{count}** | "
                + " | ".join(totals)
                + f" | {_number(paper_total)} | {_difference(ours, paper_total)} |"
            )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _difference(ours: float, paper: float | None) -> str:
    return "-" if paper is None or np.isnan(ours) else f"{ours - paper:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser, default_steps=1_000_000, default_eval_freq=5000)
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS, help="algorithms to run")
    args = parser.parse_args()
    out = Path(args.out) / "offline"
    specs = [
        RunSpec(
            algo,
            dataset,
            seed,
            args.offline_steps,
            0,
            args.eval_freq,
            args.eval_episodes or default_eval_episodes(dataset),
            args.domain or infer_domain(dataset),
            str(out),
            args.compile,
            args.keep,
        )
        for dataset in args.datasets
        for algo in args.algos
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    rows = dispatch(specs, args)
    write_csv(out / "evaluations.csv", rows)
    markdown = table(rows, args.datasets, args.algos)
    (out / "table1.md").write_text(markdown + "\n")
    plot_curves(out / "curves.png", rows, f"Offline ({args.offline_steps} steps, {args.seeds} seeds)")
    print(markdown)
    print(f"\nWrote {out / 'evaluations.csv'}, {out / 'table1.md'}, {out / 'curves.png'}")


if __name__ == "__main__":
    main()
