"""
Where a finetuning run's time goes: offline and online steps/s with a Table 2 run's own settings, and the online
step split into its parts.

    python benchmarks/diagnostics/online_speed.py sb3-iql/pen/binary-v1 --threads 1 2 --offline-steps 3000 --online-steps 3000

For each thread count: the paper's finetuning preset of the dataset's domain (``adroit_finetune`` for pen-binary),
``compile_update=True``, offline gradient steps/s (``learn_offline``), then online steps/s (``learn``: one env step and
one gradient step each) in the dataset's env, timed after a warm-up, with the online step's time split into the
gradient step (``train``), the policy's action (``predict``), the env (``env.step``), the replay buffer (``add``),
logging (``logger.dump``) and the rest (SB3's loop, callbacks). Prints a markdown table.
"""

import argparse
import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from sb3_iql import IQL
from sb3_iql.data.readers import load_minari_dataset
from sb3_iql.iql.hyperparameters import infer_domain

PARTS = ("gradient step", "prediction", "env", "buffer", "logging")


class PartTimer:
    """Wraps methods of the model's objects so that each call adds its duration to a part's total."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.active = False

    def wrap(self, owner: Any, name: str, part: str) -> None:
        method: Callable = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                if self.active:
                    self.seconds[part] += time.perf_counter() - start

        setattr(owner, name, timed)


class StartTiming(BaseCallback):
    """Starts the clocks after ``warm_up`` online steps (compilation, the first episodes) and stops them at the end."""

    def __init__(self, timer: PartTimer, warm_up: int):
        super().__init__()
        self.timer, self.warm_up = timer, warm_up
        self.started: float | None = None
        self.steps_at_start = 0
        self.elapsed = 0.0
        self.timed_steps = 0

    def _on_step(self) -> bool:
        if self.started is None and self.num_timesteps >= self.warm_up:
            self.started, self.steps_at_start, self.timer.active = time.perf_counter(), self.num_timesteps, True
        return True

    def _on_training_end(self) -> None:
        if self.started is not None:
            self.elapsed = time.perf_counter() - self.started
            self.timed_steps = self.num_timesteps - self.steps_at_start
        self.timer.active = False


def offline_steps_per_second(model: IQL, dataset, steps: int, warm_up: int) -> float:
    model.learn_offline(dataset, warm_up)  # compiles, fills the buffer
    start = time.perf_counter()
    model.learn_offline(dataset, steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def measure(
    dataset_id: str, threads: int, offline_steps: int, online_steps: int, warm_up: int, seed: int, compile_update: bool = True
) -> dict[str, float]:
    th.set_num_threads(threads)
    dataset = load_minari_dataset(dataset_id)
    env = dataset.recover_environment()
    kwargs = IQL.paper_hyperparameters(infer_domain(dataset_id, finetune=True))
    kwargs.pop("goal_semantics", None)
    model = IQL("MlpPolicy", None, seed=seed, device="cpu", compile_update=compile_update, **kwargs)
    offline = offline_steps_per_second(model, dataset, offline_steps, warm_up)
    model.set_env(env)
    model.num_timesteps = 0
    timer = PartTimer()
    timer.wrap(model, "train", "gradient step")
    timer.wrap(model, "predict", "prediction")
    timer.wrap(model.env, "step", "env")
    timer.wrap(model.replay_buffer, "add", "buffer")
    timer.wrap(model.logger, "dump", "logging")
    clock = StartTiming(timer, warm_up)
    model.learn(warm_up + online_steps, callback=clock, reset_num_timesteps=False)
    env.close()
    row = {"threads": threads, "offline": offline, "online": clock.timed_steps / clock.elapsed}
    per_step = {part: 1e3 * timer.seconds[part] / clock.timed_steps for part in PARTS}
    per_step["rest"] = 1e3 * clock.elapsed / clock.timed_steps - sum(per_step.values())
    return {**row, **{f"ms {part}": value for part, value in per_step.items()}}


def table(rows: list[dict[str, float]]) -> str:
    parts = [*PARTS, "rest"]
    lines = [
        "| threads | offline steps/s | online steps/s | 1M online steps (h) | "
        + " | ".join(f"{part} (ms/step)" for part in parts)
        + " |",
        "|---|---|---|---|" + "---|" * len(parts),
    ]
    for row in rows:
        cells = " | ".join(f"{row[f'ms {part}']:.2f}" for part in parts)
        hours = 1e6 / row["online"] / 3600
        lines.append(f"| {row['threads']} | {row['offline']:.0f} | {row['online']:.0f} | {hours:.1f} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a local Minari dataset id (e.g. sb3-iql/pen/binary-v1)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads, one measurement each")
    parser.add_argument("--offline-steps", type=int, default=3000, help="timed offline gradient steps")
    parser.add_argument("--online-steps", type=int, default=3000, help="timed online steps")
    parser.add_argument("--warm-up", type=int, default=500, help="untimed steps before each timing (compilation)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile", action="store_true", help="eager gradient steps (a quick check; runs compile)")
    args = parser.parse_args()
    rows = []
    for threads in args.threads:
        rows.append(
            measure(args.dataset, threads, args.offline_steps, args.online_steps, args.warm_up, args.seed, not args.no_compile)
        )
        print(f"{threads} thread(s): {rows[-1]}", flush=True)
    print(
        f"\n{args.dataset}, {'eager' if args.no_compile else 'compiled'}, {os.cpu_count()} CPU cores, torch {th.__version__}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
