"""
A peer library on the same data: d3rlpy's IQL on any of our Minari datasets, with the project's settings for the
dataset's domain (``IQL.paper_hyperparameters``), evaluated in the project's evaluation env, its rows in the
runners' CSV format (algo ``d3rlpy-iql``) beside sb3-iql's.

    python3 -m venv benchmarks/.venv-d3rlpy && benchmarks/.venv-d3rlpy/bin/pip install -c constraints.txt torch d3rlpy==2.8.1
    python benchmarks/peer.py sb3-iql/antmaze-d4rl/medium-play-v0 --steps 300000 --eval-freq 50000 --seeds 2

d3rlpy 2.8 pins gymnasium==1.0.0, so it trains in its own virtual environment (``peers/d3rlpy_iql.py``, one call per
stretch between two evaluations); this script exports the data once (D4RL's arrays: the observations, actions,
terminals and timeouts the project's IQL trains on, and its rewards after its reward scale and shift), then for each
stretch trains and evaluates the greedy policy d3rlpy saves (TorchScript) with the episodes and scoring of the
runners (``IQLEvalCallback``). A run resumes from its last stretch, or from the copy of it in ``--keep`` (committed
with the repository, for machines whose disk does not last: d3rlpy trains at ~35 steps/s on one CPU core). Writes ``<out>/peer/evaluations.csv`` (and
``--results`` as it grows).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from protocol import EVAL_FIELDS, RunSpec, infer_domain, mean_std, read_rows, typed_rows, write_csv, write_markdown
from protocol.runs import append_rows, evaluation_row

from sb3_iql import IQL
from sb3_iql.common.callbacks import evaluate_episodes, make_eval_env
from sb3_iql.data.goals import evaluation_env
from sb3_iql.data.readers import load_minari_dataset

ALGO = "d3rlpy-iql"
BENCHMARKS = Path(__file__).resolve().parent
TRAINER = BENCHMARKS / "peers" / "d3rlpy_iql.py"
DEFAULT_PYTHON = BENCHMARKS / ".venv-d3rlpy" / "bin" / "python"
#: The settings d3rlpy's IQLConfig takes; the networks are (256, 256) MLPs in both libraries.
SETTINGS = ("learning_rate", "batch_size", "gamma", "tau", "expectile", "beta", "max_weight", "actor_lr_schedule")


class TorchScriptPolicy:
    """A policy saved as TorchScript (d3rlpy's ``save_policy``) behind SB3's ``predict()``, for ``evaluate_policy``."""

    def __init__(self, path: Path):
        self.module = th.jit.load(str(path), map_location="cpu")
        self.module.eval()

    def predict(self, observation: np.ndarray, state=None, episode_start=None, deterministic: bool = True):
        with th.no_grad():
            action = self.module(th.as_tensor(np.asarray(observation), dtype=th.float32))
        return action.numpy(), None


def export_data(dataset_id: str, domain: str, folder: Path) -> tuple[Path, Path]:
    """
    Write the dataset as the project's IQL trains on it (rewards scaled and shifted) and the domain's settings.

    :return: The ``.npz`` and the settings ``.json`` (reused while the data's fingerprint is the same)
    """
    kwargs = IQL.paper_hyperparameters(domain)
    dataset = load_minari_dataset(dataset_id)
    if isinstance(dataset.observation_space, gym.spaces.Dict):
        raise ValueError(
            f"'{dataset_id}' has Dict observations; the peer runner exports flat arrays (d3rlpy's tuple observations "
            "would need another export). Use a dataset with Box observations, such as sb3-iql/antmaze-d4rl/*."
        )
    model = IQL("MlpPolicy", None, **kwargs)
    transitions = model.load_dataset(dataset).transitions  # the project's own reading of the data, and its reward scale
    fingerprint = transitions.fingerprint()[:12]
    data = folder / f"{dataset_id.replace('/', '_')}_{fingerprint}.npz"
    settings = data.with_suffix(".json")
    if not data.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rewards = transitions.rewards * model.reward_scale_factor + model.reward_shift
        temporary = data.with_suffix(".tmp.npz")
        np.savez(
            temporary,
            observations=np.asarray(transitions.observations, dtype=np.float32),
            actions=np.asarray(transitions.actions, dtype=np.float32),
            rewards=rewards.astype(np.float32),
            terminals=(transitions.dones & ~transitions.timeouts).astype(np.float32),
            timeouts=transitions.timeouts.astype(np.float32),
        )
        os.replace(temporary, data)
    record = {key: kwargs[key] for key in SETTINGS}
    record.update(
        domain=domain, dataset=dataset_id, fingerprint=fingerprint, actor_dropout=kwargs["policy_kwargs"]["actor_dropout"]
    )
    settings.write_text(json.dumps(record, indent=1) + "\n")
    return data, settings


def kept_files(spec: RunSpec, keep: Path) -> tuple[Path, Path]:
    """:return: The run's kept checkpoint in ``keep``: d3rlpy's model file, and a record of its steps, data and rows."""
    stem = f"{re.sub(r'[^A-Za-z0-9]+', '_', spec.dataset)}_{spec.offline_steps // 1000}k_seed{spec.seed}"
    return keep / f"{stem}.d3", keep / f"{stem}.json"


def keep_checkpoint(spec: RunSpec, keep: Path, fingerprint: str) -> None:
    """Copy the run's last stretch (model, steps, rows) into ``keep``, the model first, each file replaced atomically."""
    model, record = kept_files(spec, keep)
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec.directory / "model.d3", model.with_suffix(".tmp"))
    os.replace(model.with_suffix(".tmp"), model)
    state = json.loads((spec.directory / "state.json").read_text())
    rows = read_rows(spec.directory / "evaluations.csv")
    record.with_suffix(".tmp").write_text(json.dumps({"state": state, "fingerprint": fingerprint, "rows": rows}, indent=1))
    os.replace(record.with_suffix(".tmp"), record)


def restore_kept(spec: RunSpec, keep: Path, fingerprint: str) -> None:
    """Put the run's kept checkpoint into a run folder that has none (a machine whose run folders are gone)."""
    model, record = kept_files(spec, keep)
    if (spec.directory / "state.json").exists() or not record.exists():
        return
    saved = json.loads(record.read_text())
    if saved["fingerprint"] != fingerprint:
        raise ValueError(
            f"The kept checkpoint {record} was trained on data with fingerprint {saved['fingerprint']}, and the dataset "
            f"found here has {fingerprint}: rebuild the dataset as COMMAND.md says, or delete the kept files to start over."
        )
    spec.directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, spec.directory / "model.d3")
    (spec.directory / "evaluations.csv").unlink(missing_ok=True)
    append_rows(spec.directory / "evaluations.csv", saved["rows"])
    (spec.directory / "state.json").write_text(json.dumps(saved["state"]))


def run_peer(spec: RunSpec, data: Path, settings: Path, python: Path, results: Path | None, keep: Path | None) -> None:
    """Train and evaluate one seed stretch by stretch, going on from its last evaluation (or its kept checkpoint)."""
    fingerprint = json.loads(settings.read_text())["fingerprint"]
    if keep is not None:
        restore_kept(spec, keep, fingerprint)
    dataset = load_minari_dataset(spec.dataset)
    env, score_success = evaluation_env(dataset)
    eval_env = make_eval_env(env)
    done = {int(row["step"]) for row in read_rows(spec.directory / "evaluations.csv")}
    for stop in range(spec.eval_freq, spec.offline_steps + 1, spec.eval_freq):
        if stop in done:
            continue
        command = [str(python), str(TRAINER), "--data", str(data), "--settings", str(settings), "--run", str(spec.directory)]
        command += ["--seed", str(spec.seed), "--steps", str(spec.offline_steps), "--until", str(stop)]
        finished = subprocess.run(command, check=True, capture_output=True, text=True)
        speed = json.loads(finished.stdout.strip().splitlines()[-1])["steps_per_second"]
        eval_env.seed(spec.seed * 1_000_003 + stop)  # each evaluation's episodes repeat, whichever session ran it
        policy = TorchScriptPolicy(spec.directory / f"policy_{stop}.pt")
        result = evaluate_episodes(policy, eval_env, spec.n_eval_episodes, True, dataset, score_success)
        row = evaluation_row(spec, "offline", 0, {**result, "timesteps": stop})  # spec.algo is ALGO
        append_rows(spec.directory / "evaluations.csv", [row])
        print(
            f"[{ALGO} {spec.dataset} seed {spec.seed}] {stop:,} steps ({speed:.0f} steps/s): score {row['normalized_score']}",
            flush=True,
        )
        if results is not None:
            append_rows(results, [row])
        if keep is not None:
            keep_checkpoint(spec, keep, fingerprint)


def side_by_side(rows: list[dict]) -> list[str]:
    """
    :param rows: Evaluation rows of sb3-iql (algo ``iql``) and of the peer, any datasets (``typed_rows``)
    :return: A markdown table: per dataset and step, each seed's score and the mean ± standard error of either library,
        and the peer's mean minus ours (at the steps both reached)
    """
    lines = [
        "| dataset | step | sb3-iql (seeds) | sb3-iql | d3rlpy (seeds) | d3rlpy | d3rlpy - sb3-iql |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in sorted({row["dataset"] for row in rows}):
        for step in sorted({row["step"] for row in rows if row["dataset"] == dataset}):
            cells = []
            means = []
            for algo in ("iql", ALGO):
                scores = {
                    row["seed"]: row["normalized_score"]
                    for row in rows
                    if (row["dataset"], row["step"], row["algo"]) == (dataset, step, algo)
                }
                values = [scores[seed] for seed in sorted(scores)]
                cells += [" / ".join(f"{value:.0f}" for value in values) or "-", mean_std(values, standard_error=True)]
                means.append(float(np.mean(values)) if values else None)
            difference = "-" if None in means else f"{means[1] - means[0]:+.1f}"
            lines.append(f"| {dataset} | {step:,} | {' | '.join(cells)} | {difference} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", help="Minari dataset ids with Box observations")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="CSV",
        help="instead of training: runner CSVs of both libraries (the peer's --results, sb3-iql's evaluations) side by "
        "side as a markdown table (printed, and written beside the first CSV as .md)",
    )
    parser.add_argument("--steps", type=int, default=300_000, help="gradient steps")
    parser.add_argument("--eval-freq", type=int, default=50_000, help="steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=100, help="episodes per evaluation")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--domain", help="hyperparameter domain (default: from the dataset id, offline)")
    parser.add_argument("--out", default="/work/runs/peer", help="run folders and exported data (not for the repository)")
    parser.add_argument("--results", help="a CSV that every evaluation row is appended to as it comes (to commit)")
    parser.add_argument(
        "--keep",
        help="a folder committed with the repository for each run's last stretch (d3rlpy's model, steps, rows; one "
        "file per run, replaced): a run resumes from it where its run folder is gone",
    )
    parser.add_argument("--python", default=str(DEFAULT_PYTHON), help="the python of d3rlpy's virtual environment")
    args = parser.parse_args()
    if args.compare:
        lines = side_by_side(typed_rows([row for path in args.compare for row in read_rows(Path(path))]))
        write_markdown(Path(args.compare[0]).parent, Path(args.compare[0]).with_suffix(".md").name, lines)
        return
    if not args.datasets:
        parser.error("name the datasets to train on, or pass --compare CSV ...")
    python = Path(args.python)
    if not python.exists():
        sys.exit(f"No d3rlpy environment at {python}: make it as this script's docstring says, or pass --python.")
    out = Path(args.out)
    keep = Path(args.keep) if args.keep else None
    specs = []
    for dataset in args.datasets:
        domain = args.domain or infer_domain(dataset)
        data, settings = export_data(dataset, domain, out / "data")
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            spec = RunSpec(ALGO, dataset, seed, args.steps, 0, args.eval_freq, args.eval_episodes, domain, str(out))
            run_peer(spec, data, settings, python, Path(args.results) if args.results else None, keep)
            specs.append(spec)
    rows = typed_rows([row for spec in specs for row in read_rows(spec.directory / "evaluations.csv")])
    (out / "peer").mkdir(parents=True, exist_ok=True)
    write_csv(out / "peer" / "evaluations.csv", rows)
    print(f"Wrote {out / 'peer' / 'evaluations.csv'} ({len(rows)} rows; fields {', '.join(EVAL_FIELDS)})")


if __name__ == "__main__":
    main()
