"""
Table 2 protocol: offline IQL, then online finetuning (one gradient step per env step) with the
finetuning hyperparameters, reporting "offline -> online" normalized scores beside the paper's and the mean score of the
dataset's own episodes (what offline training starts from).

    python benchmarks/finetune.py sb3-iql/pen/binary-v1 --offline-steps 2000 --online-steps 2000 \\
        --eval-freq 1000 --seeds 2 --eval-episodes 5

Writes ``<out>/finetune/evaluations.csv``, ``table2.md`` and ``curves.png`` (offline and online
on one step axis; the dashed line marks the switch). Full protocol: ``--offline-steps 1000000
--online-steps 1000000``.
"""

import argparse
from pathlib import Path

import numpy as np
from protocol import (
    PAPER,
    RunSpec,
    common_arguments,
    data_score,
    default_eval_episodes,
    dispatch,
    final_scores,
    infer_domain,
    mean_std,
    paper_name,
    plot_curves,
    write_csv,
)

from sb3_iql.data.readers import load_minari_dataset


def table(rows: list[dict], datasets: list[str]) -> str:
    """
    Per dataset: the data's own episodes, ours and the paper's offline -> online on the normalized scale, and
    ours as a success rate (the share of evaluation episodes that reached the goal; AntMaze's score is 100 x it).
    """
    offline, online = final_scores(rows, "offline"), final_scores(rows, "online")
    success = {phase: final_scores(rows, phase, "success_rate") for phase in ("offline", "online")}
    lines = [
        "| Dataset | data's episodes | IQL offline → online (ours, normalized return) | IQL offline → online (paper) "
        "| online: ours - paper | success rate offline → online (ours, %) |",
        "|---|---|---|---|---|---|",
    ]
    for dataset in datasets:
        ours_offline = list(offline.get(("iql", dataset), {}).values())
        ours_online = list(online.get(("iql", dataset), {}).values())
        name = paper_name(dataset)
        paper = PAPER["table2"].get(name)
        paper_cell = f"{paper[0]:.1f} → {paper[1]:.1f}" if paper else "-"
        difference = f"{np.mean(ours_online) - paper[1]:+.1f}" if paper and ours_online else "-"
        label = f"{dataset} ({name})" if name else dataset
        data = data_score(load_minari_dataset(dataset))
        data_cell = "-" if data is None else f"{data:.1f}"
        rates = [[100 * rate for rate in success[phase].get(("iql", dataset), {}).values()] for phase in ("offline", "online")]
        rate_cell = (
            "-" if all(np.isnan(rate) for part in rates for rate in part) else f"{mean_std(rates[0])} → {mean_std(rates[1])}"
        )
        lines.append(
            f"| {label} | {data_cell} | {mean_std(ours_offline)} → {mean_std(ours_online)} | {paper_cell} | {difference} "
            f"| {rate_cell} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser, default_steps=1_000_000, default_eval_freq=50_000)
    parser.add_argument("--online-steps", type=int, default=1_000_000, help="environment steps online (paper: 1M)")
    args = parser.parse_args()
    out = Path(args.out) / "finetune"
    specs = [
        RunSpec(
            "iql",
            dataset,
            seed,
            args.offline_steps,
            args.online_steps,
            args.eval_freq,
            args.eval_episodes or default_eval_episodes(dataset),
            args.domain or infer_domain(dataset, finetune=True),
            str(out),
            args.compile,
            args.keep,
        )
        for dataset in args.datasets
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    rows = dispatch(specs, args)
    write_csv(out / "evaluations.csv", rows)
    markdown = table(rows, args.datasets)
    (out / "table2.md").write_text(markdown + "\n")
    plot_curves(
        out / "curves.png", rows, f"Finetuning ({args.offline_steps} + {args.online_steps} steps)", boundary=args.offline_steps
    )
    print(markdown)
    print(f"\nWrote {out / 'evaluations.csv'}, {out / 'table2.md'}, {out / 'curves.png'}")


if __name__ == "__main__":
    main()
