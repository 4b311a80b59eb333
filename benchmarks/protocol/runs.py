"""Runs: one (algorithm, dataset, seed) each, resumable from its checkpoint, run in a process pool or on Ray."""

import csv
import json
import math
import os
import re
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, configure

from sb3_iql import IQL, IQLEvalCallback
from sb3_iql.data.goals import evaluation_env, is_maze_task
from sb3_iql.data.readers import dataset_transitions, load_minari_dataset
from sb3_iql.tasks.antmaze import is_antmaze

EVAL_FIELDS = ["algo", "dataset", "seed", "phase", "step", "normalized_score", "mean_reward", "success_rate"]


@dataclass(frozen=True)
class RunSpec:
    """
    One run of the protocol.

    :param algo: iql, bc (IQL's actor with advantage weights 1), bc10 (BC on the top 10% episodes) or iql-naive
        (AntMaze: IQL on the data as recorded, without the paper's task semantics; evaluated in the same env) or
        iql-relabel (AntMaze: the paper's semantics with every episode relabelled against the fixed evaluation goal);
        the paper's Figure 3 ablations: iql-tau0.5 / iql-tau0.7 (expectile 0.5 / 0.7 instead of the preset's) and
        iql-mean-q (the mean of the twin critics instead of their minimum, "without clipped double Q")
    :param dataset: Minari dataset id
    :param seed: Random seed
    :param offline_steps: Gradient steps offline
    :param online_steps: Environment steps online (0 for Table 1)
    :param eval_freq: Steps between evaluations (each phase)
    :param n_eval_episodes: Episodes per evaluation
    :param domain: Hyperparameter domain (``IQL.paper_hyperparameters``)
    :param out: Output folder
    :param compile_update: Train with ``IQL(compile_update=True)`` (faster once compiled; worth it for long runs)
    :param keep: A folder kept with the repository (``benchmarks/results/table2/checkpoints``) for the run's offline-phase
        checkpoint (``kept_checkpoint``): the run resumes from it on a machine whose run folders are gone
    """

    algo: str
    dataset: str
    seed: int
    offline_steps: int
    online_steps: int
    eval_freq: int
    n_eval_episodes: int
    domain: str
    out: str
    compile_update: bool = False
    keep: str | None = None

    @property
    def directory(self) -> Path:
        return Path(self.out) / "runs" / self.algo / re.sub(r"[^A-Za-z0-9_.-]+", "_", self.dataset) / f"seed{self.seed}"

    @property
    def kept_checkpoint(self) -> Path | None:
        """
        The offline phase's checkpoint kept in the repository, ``<keep>/<task>_seed<k>_offline.zip`` (beside it a
        ``.json`` with the data's fingerprint and the run's rows): one file per run, replaced at every evaluation of
        the offline phase and at its end. None without ``keep``.
        """
        if self.keep is None:
            return None
        task = re.sub(r"-v\d+$", "", self.dataset.split("/", 1)[-1] if self.dataset.count("/") == 2 else self.dataset)
        prefix = "" if self.algo == "iql" else f"{self.algo}_"
        return Path(self.keep) / f"{prefix}{re.sub(r'[^A-Za-z0-9]+', '_', task)}_seed{self.seed}_offline.zip"


# -- runs -------------------------------------------------------------------------------------
class CheckpointingEval(IQLEvalCallback):
    """IQLEvalCallback that also saves the model (and online the replay buffer) after each evaluation."""

    def __init__(self, spec: RunSpec, phase: str, step_offset: int, dataset: minari.MinariDataset, fingerprint: str = ""):
        eval_env, score_success = evaluation_env(dataset)
        super().__init__(eval_env, dataset, spec.eval_freq, spec.n_eval_episodes, score_success=score_success)
        self.spec, self.phase, self.step_offset = spec, phase, step_offset
        self.eval_env.seed(spec.seed)  # evaluation episodes repeat with the run's seed
        self.fingerprint = fingerprint  # the data's, for the kept offline checkpoint

    def evaluate(self) -> dict[str, float]:
        result = super().evaluate()
        append_rows(self.spec.directory / "evaluations.csv", [evaluation_row(self.spec, self.phase, self.step_offset, result)])
        save_checkpoint(self.model, self.spec.directory, self.phase, with_buffer=self.phase == "online")
        if self.phase == "offline":
            keep_offline_checkpoint(self.spec, self.model, self.fingerprint, complete=False)
        return result

    def evaluate_at_end(self) -> None:
        """The protocol reports the score after the last step: evaluate there, unless an evaluation just did."""
        if self.model.num_timesteps % self.spec.eval_freq:
            self.evaluate()


class RunProgress(BaseCallback):
    """Print a run's steps, speed and time left every ``every_seconds``: long runs are not silent."""

    def __init__(self, spec: RunSpec, phase: str, total: int, every_seconds: float = 60.0):
        super().__init__()
        self.spec, self.phase, self.total, self.every_seconds = spec, phase, total, every_seconds

    def _on_training_start(self) -> None:
        self.started, self.start_steps, self.last_print = time.monotonic(), self.num_timesteps, time.monotonic()

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self.last_print >= self.every_seconds:
            self.last_print = now
            done = self.num_timesteps - self.start_steps
            speed = done / max(now - self.started, 1e-9)
            left = (self.total - self.num_timesteps) / max(speed, 1e-9)
            print(
                f"[{self.spec.algo} {self.spec.dataset} seed {self.spec.seed}] {self.phase} {self.num_timesteps:,}/{self.total:,} "
                f"steps, {speed:.0f} steps/s, {left / 60:.1f} min left",
                flush=True,
            )
        return True


def evaluation_row(spec: RunSpec, phase: str, step_offset: int, result: dict[str, float]) -> dict[str, Any]:
    return {
        "algo": spec.algo,
        "dataset": spec.dataset,
        "seed": spec.seed,
        "phase": phase,
        "step": step_offset + int(result["timesteps"]),
        "normalized_score": result.get("normalized_score", ""),
        "mean_reward": result["mean_reward"],
        "success_rate": result.get("success_rate", ""),
    }


def save_checkpoint(model: IQL, directory: Path, phase: str, with_buffer: bool) -> None:
    """Save atomically: a crash mid-save leaves the previous checkpoint intact."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.tmp.zip")
    if with_buffer:
        model.save_replay_buffer(directory / "replay_buffer.tmp.pkl")
        os.replace(directory / "replay_buffer.tmp.pkl", directory / "replay_buffer.pkl")
    (directory / "phase.tmp").write_text(phase)
    os.replace(directory / "model.tmp.zip", directory / "model.zip")
    os.replace(directory / "phase.tmp", directory / "phase")


def training_logger(spec: RunSpec, phase: str, start_step: int) -> Logger:
    """
    SB3's CSV logger for one stretch of a run: ``<run>/logs/<phase>-from-<step>/progress.csv`` (a resumed phase gets a
    file of its own). Offline it holds the update's statistics every 1,000 gradient steps (``train/*``: losses, mean
    V and Q, advantages, AWR weights); online SB3's ``rollout/*`` (episode return, ``success_rate`` over the last 100
    episodes) and the update's statistics averaged since the previous row, every 4 episodes.
    """
    return configure(str(spec.directory / "logs" / f"{phase}-from-{start_step}"), ["csv"])


def data_fingerprint(dataset: minari.MinariDataset) -> str:
    """:return: The content fingerprint of a dataset's transitions as recorded (the same data, the same fingerprint)."""
    return dataset_transitions(dataset).fingerprint()


def keep_offline_checkpoint(spec: RunSpec, model: IQL, fingerprint: str, complete: bool) -> None:
    """
    Write the run's offline phase into ``spec.kept_checkpoint`` (nothing without ``spec.keep``): the model (networks,
    optimizers, random states), and beside it the data's fingerprint, the steps done, whether the phase is complete and
    the run's rows so far and its training logs (``training_logger``'s CSVs of the offline phase, ~0.2 MB a 1M phase).
    Both files are replaced atomically, the model first.
    """
    path = spec.kept_checkpoint
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    record = {
        "dataset": spec.dataset,
        "fingerprint": fingerprint,
        "algo": spec.algo,
        "seed": spec.seed,
        "offline_steps": model.num_timesteps,
        "planned_offline_steps": spec.offline_steps,
        "complete": complete,
        "rows": read_rows(spec.directory / "evaluations.csv"),
        "logs": {
            log.parent.name: log.read_text() for log in sorted((spec.directory / "logs").glob("offline-from-*/progress.csv"))
        },
    }
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(temporary, path.with_suffix(".json"))


def kept_is_complete(spec: RunSpec) -> bool:
    """:return: Whether the run's kept offline checkpoint already holds its whole offline phase."""
    path = spec.kept_checkpoint
    return path is not None and path.exists() and json.loads(path.with_suffix(".json").read_text())["complete"]


def resume_from_kept(spec: RunSpec, fingerprint: str) -> IQL | None:
    """
    :return: The model of the run's kept offline checkpoint, its rows and training logs restored into the run folder;
        None if there is none
    :raises ValueError: When the data rebuilt here differ from the data the checkpoint was trained on, or the checkpoint
        is from a run of another length (its learning-rate schedule would differ)
    """
    path = spec.kept_checkpoint
    if path is None or not path.exists():
        return None
    record = json.loads(path.with_suffix(".json").read_text())
    if record["fingerprint"] != fingerprint:
        raise ValueError(
            f"The kept checkpoint {path} was trained on '{record['dataset']}' with content fingerprint {record['fingerprint']}, "
            f"but the dataset found here has fingerprint {fingerprint}: its online phase would start from other data. Rebuild "
            "the dataset with the recipe, size and seed that COMMAND.md gives, or delete the checkpoint (and its .json) to "
            "start the run over."
        )
    planned = record.get("planned_offline_steps", spec.offline_steps)  # checkpoints kept before 2026-12-05 lack it
    if planned != spec.offline_steps:
        raise ValueError(
            f"The kept checkpoint {path} is from a run of {planned:,} offline steps, and this run plans "
            f"{spec.offline_steps:,}: its offline phase would go on under another learning-rate schedule. Keep each "
            f"protocol in a folder of its own (--keep DIR), or pass --offline-steps {planned}."
        )
    spec.directory.mkdir(parents=True, exist_ok=True)
    (spec.directory / "evaluations.csv").unlink(missing_ok=True)
    append_rows(spec.directory / "evaluations.csv", record["rows"])
    for stretch, text in record.get("logs", {}).items():  # checkpoints kept before 2026-12-05 22:30 UTC lack them
        (spec.directory / "logs" / stretch).mkdir(parents=True, exist_ok=True)
        (spec.directory / "logs" / stretch / "progress.csv").write_text(text)
    return IQL.load(path, env=None, device="auto", compile_update=spec.compile_update)


def append_rows(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as file:
        writer = csv.DictWriter(file, EVAL_FIELDS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def top_episodes(dataset: minari.MinariDataset, fraction: float = 0.1) -> minari.MinariDataset:
    """:return: The dataset restricted to its best ``fraction`` of episodes by return (at least one)."""
    returns = dataset_transitions(dataset).episode_returns
    threshold = np.sort(returns)[::-1][max(math.ceil(fraction * len(returns)), 1) - 1]
    return dataset.filter_episodes(lambda episode: float(np.sum(episode.rewards)) >= threshold)


def new_model(spec: RunSpec, dataset: minari.MinariDataset, env: gym.Env | None = None) -> IQL:
    """IQL with the domain's paper hyperparameters; BC variants weigh every action equally (beta 0)."""
    kwargs = IQL.paper_hyperparameters(spec.domain)
    if not is_antmaze(dataset) or spec.algo == "iql-naive":
        # The paper's AntMaze task semantics; PointMaze data already terminates at its goal.
        kwargs.pop("goal_semantics", None)
    elif spec.algo == "iql-relabel":
        kwargs["goal_semantics"] = "evaluation"
    if spec.algo.startswith("iql-tau"):
        kwargs["expectile"] = float(spec.algo.removeprefix("iql-tau"))
    elif spec.algo == "iql-mean-q":
        kwargs["critic_reduction"] = "mean"
    if spec.algo in ("bc", "bc10"):
        # Weights exp(0 * A) = 1 whatever the critics learn, so reward processing plays no part
        # (and the top 10% of episodes may all share one return, which "return_range" rejects).
        kwargs.update(beta=0.0, reward_scale=1.0)
    policy = "MultiInputPolicy" if isinstance(dataset.observation_space, gym.spaces.Dict) else "MlpPolicy"
    return IQL(policy, env, seed=spec.seed, device="auto", compile_update=spec.compile_update, **kwargs)


def resume_or_start(spec: RunSpec, dataset: minari.MinariDataset, env: gym.Env | None, fingerprint: str) -> tuple[IQL, str]:
    """:return: The model, from the last checkpoint if there is one, and the phase it was in."""
    directory = spec.directory
    if (directory / "model.zip").exists():
        phase = (directory / "phase").read_text()
        model = IQL.load(
            directory / "model.zip",
            env=env if phase == "online" else None,
            device="auto",
            compile_update=spec.compile_update,
        )
        if phase == "online" and (directory / "replay_buffer.pkl").exists():
            model.load_replay_buffer(directory / "replay_buffer.pkl")
        return model, phase
    if (kept := resume_from_kept(spec, fingerprint)) is not None:
        return kept, "offline"
    if directory.exists():  # evaluations from a run that never reached its first checkpoint
        (directory / "evaluations.csv").unlink(missing_ok=True)
    return new_model(spec, dataset, env), "offline"


def run(spec: RunSpec) -> list[dict[str, Any]]:
    """Do one run (offline, then online if ``spec.online_steps``), resuming it; return its evaluation rows."""
    directory = spec.directory
    if (directory / "done.json").exists():
        return read_rows(directory / "evaluations.csv")
    th.set_num_threads(int(os.environ.get("SB3_IQL_THREADS", "1")))
    dataset = load_minari_dataset(spec.dataset)
    train_data = top_episodes(dataset) if spec.algo == "bc10" else dataset
    # AntMaze finetunes in the paper's terminating maze, not the continuing env the data was collected in.
    online_env = None
    if spec.online_steps:
        online_env = evaluation_env(dataset)[0] if is_maze_task(dataset) else dataset.recover_environment()
    fingerprint = data_fingerprint(dataset) if spec.keep is not None else ""  # hashing the data takes seconds
    # The offline phase has no env, fresh or resumed alike: the online phase then starts the same way from either.
    model, phase = resume_or_start(spec, dataset, None, fingerprint)
    if phase == "offline":
        remaining = spec.offline_steps - model.num_timesteps
        if remaining > 0:
            model.set_logger(training_logger(spec, "offline", model.num_timesteps))
            evaluation = CheckpointingEval(spec, "offline", 0, dataset, fingerprint)
            progress = RunProgress(spec, "offline", spec.offline_steps)
            model.learn_offline(
                train_data, remaining, callback=[evaluation, progress], reset_num_timesteps=model.num_timesteps == 0
            )
            evaluation.evaluate_at_end()
        save_checkpoint(model, directory, "offline", with_buffer=False)
        if not kept_is_complete(spec):  # a run going on from its complete kept phase leaves the committed files as they are
            keep_offline_checkpoint(spec, model, fingerprint, complete=True)
    elif online_env is not None:
        model.set_env(online_env)
    if spec.online_steps:
        if phase == "offline":
            model.set_env(online_env)
            model.env.seed(spec.seed)
            model.action_space.seed(spec.seed)
            model.num_timesteps = 0
        model.load_dataset(train_data)  # a reloaded model has no buffer; finetuning starts from the dataset
        remaining = spec.online_steps - model.num_timesteps
        if remaining > 0:
            model.set_logger(training_logger(spec, "online", model.num_timesteps))
            evaluation = CheckpointingEval(spec, "online", spec.offline_steps, dataset)
            model.learn(
                remaining, callback=[evaluation, RunProgress(spec, "online", spec.online_steps)], reset_num_timesteps=False
            )
            evaluation.evaluate_at_end()
        save_checkpoint(model, directory, "online", with_buffer=False)
    rows = read_rows(directory / "evaluations.csv")
    (directory / "done.json").write_text(json.dumps({"spec": asdict(spec), "evaluations": len(rows)}))
    return rows


def run_together(specs: Sequence[RunSpec]) -> None:
    """
    Runs that differ only in their seed, with their offline phases trained at once in this process
    (``IQL.learn_offline_together``: one batched network per role, which keeps a GPU busy); each run then
    finishes alone through ``run`` (online phase, last rows). Runs found at different offline steps go on alone.
    """
    if len({replace(spec, seed=0) for spec in specs}) > 1:
        raise ValueError("run_together takes runs that differ only in their seed.")
    th.set_num_threads(int(os.environ.get("SB3_IQL_THREADS", "1")))
    dataset = load_minari_dataset(specs[0].dataset)
    train_data = top_episodes(dataset) if specs[0].algo == "bc10" else dataset
    pending = [spec for spec in specs if not (spec.directory / "done.json").exists()]
    fingerprint = data_fingerprint(dataset) if specs[0].keep is not None else ""
    started = [(spec, *resume_or_start(spec, dataset, None, fingerprint)) for spec in pending]
    offline = [
        (spec, model) for spec, model, phase in started if phase == "offline" and model.num_timesteps < spec.offline_steps
    ]
    if len(offline) > 1 and len({model.num_timesteps for _, model in offline}) == 1:
        done_steps = offline[0][1].num_timesteps
        evaluations = [CheckpointingEval(spec, "offline", 0, dataset, fingerprint) for spec, _ in offline]
        callbacks = [
            [evaluation, RunProgress(spec, "offline", spec.offline_steps)]
            for evaluation, (spec, _) in zip(evaluations, offline)
        ]
        models = [model for _, model in offline]
        for spec, model in offline:
            model.set_logger(training_logger(spec, "offline", done_steps))
        IQL.learn_offline_together(
            models, train_data, specs[0].offline_steps - done_steps, callbacks, reset_num_timesteps=done_steps == 0
        )
        for evaluation, (spec, model) in zip(evaluations, offline):
            evaluation.evaluate_at_end()
            save_checkpoint(model, spec.directory, "offline", with_buffer=False)
    for spec in specs:
        run(spec)


def run_all(specs: Sequence[RunSpec], workers: int, ray_address: str | None = None, use_ray: bool = False) -> None:
    """
    Run independent runs in parallel: a local process pool, or Ray tasks (one CPU each) when
    ``use_ray``; ``ray_address`` joins an existing cluster ("auto" for the local one). With Ray,
    ``out`` must be on storage all nodes share, and every node needs the datasets.
    """
    if use_ray:
        import ray

        env_vars = {key: os.environ[key] for key in ("MINARI_DATASETS_PATH", "HF_HUB_OFFLINE") if key in os.environ}
        # Workers import this module by name; on a cluster the checkout must sit at the same path on every node.
        benchmarks = str(Path(__file__).resolve().parents[1])
        env_vars["PYTHONPATH"] = os.pathsep.join(filter(None, [benchmarks, os.environ.get("PYTHONPATH")]))
        ray.init(address=ray_address, runtime_env={"env_vars": env_vars})
        remote_run = ray.remote(num_cpus=1)(run)
        ray.get([remote_run.remote(spec) for spec in specs])
        return
    print(f"{len(specs)} runs planned, {workers} at a time", flush=True)
    if workers <= 1:
        for done, spec in enumerate(specs, 1):
            run(spec)
            print(f"runs done: {done}/{len(specs)}", flush=True)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for done, future in enumerate(as_completed([pool.submit(run, spec) for spec in specs]), 1):
            future.result()
            print(f"runs done: {done}/{len(specs)}", flush=True)
