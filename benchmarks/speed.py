"""Training speed of sb3-iql against d3rlpy's IQL and a plain PyTorch IQL loop, side by side.

    python benchmarks/speed.py --steps 600 --repeats 3 --load-transitions 1000000

Prints gradient steps/s at the paper's network sizes for three observation/action sizes, the
ratios to the peers, the share of the compute ceiling (FLOPs per step / this machine's
measured matmul throughput), all as medians of interleaved rounds; then many seeds trained at
once (``IQL.learn_offline_seeds``, K = ``--seeds``) against K runs one after the other; and the
time and memory to load a large Minari dataset.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import torch as th
from minari.data_collector.episode_buffer import EpisodeBuffer
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from sb3_iql import IQL

SIZES = {"locomotion (hopper)": (11, 3), "antmaze": (29, 8), "adroit (door)": (39, 28)}
HIDDEN, BATCH = 256, 256
PEER_PYTHON = Path(__file__).parent / ".venv-d3rlpy" / "bin" / "python"
#: Measures this many steps and returns steps/s.
Timer = Callable[[int], float]


def flops_per_step(obs_dim: int, act_dim: int) -> float:
    """Multiply-adds x 2 of one IQL step: forward (1x) plus backward (2x, weights and inputs) where trained."""

    def mlp_macs(n_in: int, n_out: int) -> int:
        return n_in * HIDDEN + HIDDEN * HIDDEN + HIDDEN * n_out

    q, v, pi = mlp_macs(obs_dim + act_dim, 1), mlp_macs(obs_dim, 1), mlp_macs(obs_dim, act_dim)
    macs = BATCH * (2 * q + 3 * v + 2 * v + 3 * pi + 3 * 2 * q)  # target Q, V trained, V(s, s'), actor, twin Q trained
    return 2.0 * macs


def matmul_gflops(seconds: float = 2.0, windows: int = 5) -> float:
    """
    Float32 throughput of the matmuls IQL is made of (batch 256 x 256 x 256): the best of a few short
    windows, since a ceiling is what the machine reaches when nothing else slows it down.
    """
    a, b = th.randn(BATCH, HIDDEN), th.randn(HIDDEN, HIDDEN)
    for _ in range(50):
        a @ b
    best = 0.0
    for _ in range(windows):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / windows:
            for _ in range(100):
                a @ b
            n += 100
        best = max(best, n * 2 * BATCH * HIDDEN * HIDDEN / (time.perf_counter() - start) / 1e9)
    return best


def random_episodes(obs_space: gym.Space, act_dim: int, n_transitions: int, episode_length: int = 1000) -> list[EpisodeBuffer]:
    rng = np.random.default_rng(0)
    episodes = []
    for start in range(0, n_transitions, episode_length):
        length = min(episode_length, n_transitions - start)
        if isinstance(obs_space, gym.spaces.Dict):
            observations = {k: rng.normal(size=(length + 1, *s.shape)).astype(np.float32) for k, s in obs_space.spaces.items()}
        else:
            observations = rng.normal(size=(length + 1, *obs_space.shape)).astype(np.float32)
        episodes.append(
            EpisodeBuffer(
                observations=observations,
                actions=rng.uniform(-1, 1, (length, act_dim)).astype(np.float32),
                rewards=rng.normal(size=length),
                terminations=np.zeros(length, bool),
                truncations=np.arange(1, length + 1) == length,
            )
        )
    return episodes


def make_dataset(dataset_id: str, obs_space: gym.Space, act_dim: int, n_transitions: int) -> minari.MinariDataset:
    """Random data for the speed benchmarks (the one already written, when the run made it for another table)."""
    if dataset_id in minari.list_local_datasets():
        return minari.load_dataset(dataset_id)
    return minari.create_dataset_from_buffers(
        dataset_id,
        random_episodes(obs_space, act_dim, n_transitions),
        observation_space=obs_space,
        action_space=gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32),
        description="random data for speed benchmarks",
    )


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so a timer stops when the work is done."""
    if th.device(device).type == "cuda":
        th.cuda.synchronize()


def steps_per_second(run_steps: Callable[[int], object], steps: int, device: str) -> float:
    synchronize(device)
    start = time.perf_counter()
    run_steps(steps)
    synchronize(device)
    return steps / (time.perf_counter() - start)


def sb3_iql_timer(dataset: minari.MinariDataset, compile_update: bool, device: str = "cpu") -> tuple[Timer, float]:
    """:return: A timer of ``IQL.learn_offline`` steps, and the seconds its warm-up (with compilation) took."""
    model = IQL("MlpPolicy", None, device=device, seed=0, compile_update=compile_update)
    model.load_dataset(dataset)

    def run_steps(steps: int) -> None:
        model.learn_offline(dataset, total_timesteps=steps, log_interval=0)

    start = time.perf_counter()
    steps_per_second(run_steps, 30, device)
    return lambda steps: steps_per_second(run_steps, steps, device), time.perf_counter() - start


def plain_pytorch_timer(obs_dim: int, act_dim: int, device: str = "cpu") -> Timer:
    """The same maths written the straightforward way: numpy batches, separate networks, three optimizers."""

    def mlp(n_in: int, n_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(n_in, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, n_out)
        )

    q1, q2, value, actor = (
        net.to(device)
        for net in (mlp(obs_dim + act_dim, 1), mlp(obs_dim + act_dim, 1), mlp(obs_dim, 1), mlp(obs_dim, act_dim))
    )
    q1_target, q2_target = mlp(obs_dim + act_dim, 1).to(device), mlp(obs_dim + act_dim, 1).to(device)
    q1_target.load_state_dict(q1.state_dict())
    q2_target.load_state_dict(q2.state_dict())
    log_std = nn.Parameter(th.zeros(act_dim, device=device))
    q_optimizer = th.optim.Adam([*q1.parameters(), *q2.parameters()], lr=3e-4)
    v_optimizer = th.optim.Adam(value.parameters(), lr=3e-4)
    pi_optimizer = th.optim.Adam([*actor.parameters(), log_std], lr=3e-4)
    rng = np.random.default_rng(0)
    n = 20_000
    data = {
        "obs": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "next_obs": rng.normal(size=(n, obs_dim)).astype(np.float32),
        "act": rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        "rew": rng.normal(size=n).astype(np.float32),
        "done": np.zeros(n, np.float32),
    }

    def step() -> None:
        idx = rng.integers(0, n, BATCH)
        obs, next_obs, act, rew, done = (
            th.as_tensor(data[k][idx], device=device) for k in ("obs", "next_obs", "act", "rew", "done")
        )
        obs_act = th.cat([obs, act], -1)
        with th.no_grad():
            target_q = th.min(q1_target(obs_act), q2_target(obs_act)).squeeze(-1)
        diff = target_q - value(obs).squeeze(-1)
        v_loss = (th.abs(0.7 - (diff < 0).float()) * diff**2).mean()
        v_optimizer.zero_grad()
        v_loss.backward()
        v_optimizer.step()
        with th.no_grad():
            weight = th.exp(3.0 * (target_q - value(obs).squeeze(-1))).clamp(max=100.0)
            td_target = rew + 0.99 * (1 - done) * value(next_obs).squeeze(-1)
        dist = th.distributions.Normal(th.tanh(actor(obs)), log_std.clamp(-5, 2).exp())
        pi_loss = -(weight * dist.log_prob(act).sum(-1)).mean()
        pi_optimizer.zero_grad()
        pi_loss.backward()
        pi_optimizer.step()
        q_loss = ((q1(obs_act).squeeze(-1) - td_target) ** 2 + (q2(obs_act).squeeze(-1) - td_target) ** 2).mean()
        q_optimizer.zero_grad()
        q_loss.backward()
        q_optimizer.step()
        with th.no_grad():
            for net, target in ((q1, q1_target), (q2, q2_target)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.mul_(0.995).add_(0.005 * p)

    def run_steps(steps: int) -> None:
        for _ in range(steps):
            step()

    run_steps(20)
    return lambda steps: steps_per_second(run_steps, steps, device)


def d3rlpy_steps_per_second(obs_dim: int, act_dim: int, steps: int, device: str = "cpu") -> float | None:
    if not PEER_PYTHON.exists():
        return None
    command = [
        str(PEER_PYTHON),
        str(Path(__file__).parent / "peers" / "d3rlpy_speed.py"),
        "--obs-dim",
        str(obs_dim),
        "--act-dim",
        str(act_dim),
    ]
    output = subprocess.run(
        [*command, "--steps", str(steps), "--threads", str(th.get_num_threads()), "--device", device],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])["steps_per_second"]


class Clock(BaseCallback):
    """Times the gradient steps after the first ``warm_up`` (compilation and setup left out)."""

    def __init__(self, warm_up: int, device: str):
        super().__init__()
        self.warm_up, self.device, self.start, self.seconds = warm_up, device, 0.0, 0.0

    def _on_step(self) -> bool:
        if self.n_calls == self.warm_up:
            synchronize(self.device)
            self.start = time.perf_counter()
        return True

    def _on_training_end(self) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def seeds_steps_per_second(
    dataset: minari.MinariDataset, n_seeds: int, steps: int, compile_update: bool, device: str
) -> float:
    """:return: Gradient steps/s of each of ``n_seeds`` seeds trained at once (1: plain ``learn_offline``)."""
    warm_up = 30
    clock = Clock(warm_up, device)
    kwargs = {"compile_update": compile_update, "device": device}
    if n_seeds == 1:
        IQL("MlpPolicy", None, seed=0, **kwargs).learn_offline(dataset, warm_up + steps, callback=clock, log_interval=0)
    else:
        callbacks = [clock] + [None] * (n_seeds - 1)
        IQL.learn_offline_seeds(
            range(n_seeds), "MlpPolicy", None, dataset, warm_up + steps, callbacks, log_interval=0, **kwargs
        )
    return steps / clock.seconds


def seeds_table(args: argparse.Namespace) -> None:
    """K seeds at once against K runs one after the other, at the AntMaze sizes, eager and compiled."""
    obs_dim, act_dim = SIZES["antmaze"]
    dataset = make_dataset(
        f"bench/{obs_dim}-{act_dim}/random-v0", gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32), act_dim, 20_000
    )
    header = f"{'seeds (antmaze sizes)':<24}{'steps/s each':>14}{'member-steps/s':>16}{'vs K runs':>11}"
    print("\n" + header + "\n" + "-" * len(header))
    for compile_update in [False] if args.no_compile else [False, True]:
        single = None
        for n_seeds in args.seeds:
            each = seeds_steps_per_second(dataset, n_seeds, args.steps, compile_update, args.device)
            single = each if n_seeds == 1 else single
            ratio = f"{n_seeds * each / single:>10.2f}x" if single else f"{'n/a':>11}"
            name = f"K={n_seeds} {'compiled' if compile_update else 'eager'}"
            print(f"{name:<24}{each:>14.0f}{n_seeds * each:>16.0f}{ratio}", flush=True)
    print("(vs K runs: K seeds' steps/s together over one seed's alone, i.e. over K runs one after the other)")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_benchmark(n_transitions: int, device: str = "cpu") -> None:
    """Time and memory to load an AntMaze-shaped (Dict observations) Minari dataset into the replay buffer."""
    obs_space = gym.spaces.Dict(
        {
            "observation": gym.spaces.Box(-np.inf, np.inf, (27,), np.float64),
            "achieved_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
            "desired_goal": gym.spaces.Box(-np.inf, np.inf, (2,), np.float64),
        }
    )
    start = time.perf_counter()
    dataset = make_dataset("bench/antmaze-shaped/random-v0", obs_space, 8, n_transitions)
    build_seconds = time.perf_counter() - start
    del dataset
    rss_before = peak_rss_mib()
    model = IQL("MultiInputPolicy", None, device=device, buffer_size=2 * n_transitions)
    start = time.perf_counter()
    model.load_dataset("bench/antmaze-shaped/random-v0")
    synchronize(device)
    load_seconds = time.perf_counter() - start
    buffer = model.replay_buffer
    raw_bytes = n_transitions * 4 * (2 * (27 + 2 + 2) + 8 + 3)  # obs, next obs, action, reward, done, timeout as float32
    print(f"\nLoading {n_transitions:,} transitions (AntMaze-shaped Dict observations) from a local Minari dataset:")
    print(f"  dataset written in {build_seconds:.1f} s (not part of the load)")
    print(f"  load_dataset into the buffer: {load_seconds:.2f} s")
    print(
        f"  buffer: {buffer.nbytes() / 2**20:.0f} MiB for {raw_bytes / 2**20:.0f} MiB of raw float32 data ({buffer.nbytes() / raw_bytes:.2f}x)"
    )
    print(f"  peak RSS: {peak_rss_mib():.0f} MiB (before loading {rss_before:.0f} MiB)")


@dataclass
class Row:
    """Median steps/s of each contender over the rounds, and the median of each round's ratios."""

    ceiling: float | None
    eager: float
    compiled: float | None
    d3rlpy: float | None
    plain: float
    vs_d3rlpy: float | None
    vs_plain: float
    of_ceiling: float | None
    compile_seconds: float


def measure_row(obs_dim: int, act_dim: int, args: argparse.Namespace) -> Row:
    """
    Every contender, then again, ``args.repeats`` times over: a shared machine's speed drifts by
    minutes, so each round's ratios compare measurements taken next to each other.
    """
    dataset = make_dataset(
        f"bench/{obs_dim}-{act_dim}/random-v0", gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32), act_dim, 20_000
    )
    on_cpu = th.device(args.device).type == "cpu"
    eager_timer, _ = sb3_iql_timer(dataset, False, args.device)
    compiled_timer, compile_seconds = (None, 0.0) if args.no_compile else sb3_iql_timer(dataset, True, args.device)
    plain_timer = plain_pytorch_timer(obs_dim, act_dim, args.device)
    rounds: dict[str, list[float | None]] = {key: [] for key in ("ceiling", "eager", "compiled", "d3rlpy", "plain")}
    for _ in range(args.repeats):
        # At batch 256 a GPU's matmuls wait on launches, not arithmetic: a FLOP ceiling says nothing there.
        rounds["ceiling"].append(matmul_gflops(0.5) * 1e9 / flops_per_step(obs_dim, act_dim) if on_cpu else None)
        rounds["eager"].append(eager_timer(args.steps))
        rounds["compiled"].append(compiled_timer(args.steps) if compiled_timer else None)
        rounds["d3rlpy"].append(d3rlpy_steps_per_second(obs_dim, act_dim, args.steps, args.device))
        rounds["plain"].append(plain_timer(args.steps))
    best = [max(eager, compiled or 0.0) for eager, compiled in zip(rounds["eager"], rounds["compiled"])]

    def median(values: list) -> float | None:
        return None if None in values else float(np.median(values))

    def median_ratio(denominators: list) -> float | None:
        return None if None in denominators else float(np.median(np.divide(best, denominators)))

    return Row(
        ceiling=median(rounds["ceiling"]),
        eager=median(rounds["eager"]),  # type: ignore[arg-type]
        compiled=median(rounds["compiled"]),
        d3rlpy=median(rounds["d3rlpy"]),
        plain=median(rounds["plain"]),  # type: ignore[arg-type]
        vs_d3rlpy=median_ratio(rounds["d3rlpy"]),
        vs_plain=median_ratio(rounds["plain"]),  # type: ignore[arg-type]
        of_ceiling=median_ratio(rounds["ceiling"]),
        compile_seconds=compile_seconds,
    )


def format_row(name: str, row: Row) -> str:
    def number(value: float | None, width: int, suffix: str = "", scale: float = 1.0, digits: int = 0) -> str:
        if value is None:
            return f"{'n/a':>{width}}"
        return f"{value * scale:>{width - len(suffix)}.{digits}f}{suffix}"

    return (
        f"{name:<26}{number(row.ceiling, 9)}{number(row.eager, 9)}{number(row.compiled, 10)}{number(row.d3rlpy, 8)}"
        f"{number(row.plain, 8)}{number(row.vs_d3rlpy, 11, 'x', digits=2)}{number(row.vs_plain, 10, 'x', digits=2)}"
        f"{number(row.of_ceiling, 12, '%', scale=100)}"
    )


def main_table(args: argparse.Namespace) -> None:
    """Every size: sb3-iql eager and compiled, d3rlpy, a plain loop; ratios and the compute ceiling share."""
    header = (
        f"{'sizes (obs, act)':<26}{'ceiling':>9}{'sb3-iql':>9}{'compiled':>10}{'d3rlpy':>8}{'plain':>8}"
        f"{'vs d3rlpy':>11}{'vs plain':>10}{'of ceiling':>12}"
    )
    print(header + "\n" + "-" * len(header))
    compile_times = []
    for name, (obs_dim, act_dim) in SIZES.items():
        if args.sizes is not None and name.split()[0] not in args.sizes:
            continue
        row = measure_row(obs_dim, act_dim, args)
        compile_times.append(row.compile_seconds)
        print(format_row(f"{name} ({obs_dim}, {act_dim})", row), flush=True)
    print(
        f"(steps/s at batch 256, (256, 256) MLPs, medians of {args.repeats} interleaved rounds of {args.steps} steps;"
        " ratios and ceiling share: medians of each round's ratio, using the faster sb3-iql column)"
    )
    if not args.no_compile:
        print(f"compiled: the first 30 steps, compilation included, took {', '.join(f'{t:.1f}' for t in compile_times)} s")
    if not PEER_PYTHON.exists():
        print(f"d3rlpy not measured: create {PEER_PYTHON.parent.parent} as benchmarks/README.md says", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="timed gradient steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of measurements per size (medians are printed)")
    parser.add_argument(
        "--sizes",
        nargs="*",
        choices=[name.split()[0] for name in SIZES],
        help="rows to measure (default: all; none: no table)",
    )
    parser.add_argument("--load-transitions", type=int, default=1_000_000, help="size of the load benchmark (0 to skip)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (every column runs there)")
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=[1, 4, 10], help="seeds trained at once in the seeds table (none: skip it)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="sb3_iql_speed_")

    on_cpu = th.device(args.device).type == "cpu"
    machine = f"{os.cpu_count()} CPUs" if on_cpu else th.cuda.get_device_name()
    ceiling_note = f"; matmul {matmul_gflops():.0f} GFLOP/s" if on_cpu else ""
    print(f"machine: {machine}, torch {th.__version__}, {th.get_num_threads()} threads{ceiling_note}")
    if args.sizes != []:  # --sizes with no names: the seeds table only
        main_table(args)
    if args.seeds:
        seeds_table(args)
    if args.load_transitions:
        load_benchmark(args.load_transitions, args.device)


if __name__ == "__main__":
    main()
