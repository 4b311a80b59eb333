"""The paper-protocol runners' run logic (benchmarks/protocol/): resume, baselines, tables."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium_robotics.envs.maze import maps
from stable_baselines3.common.logger import configure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "diagnostics"))

from antmaze_progress import data_task_env, episode_progress, with_time_limit
from finetune import table as finetune_table
from offline import table
from protocol import RunSpec, collect_rows, data_score, final_scores, infer_domain, read_rows, run, run_together, top_episodes
from training_log import interval_rows, log_rows

from sb3_iql import IQL
from sb3_iql.data.readers import dataset_transitions
from sb3_iql.datasets import build
from sb3_iql.datasets.maze import CellPlanner
from sb3_iql.tasks.antmaze_d4rl import eval_env_id


def spec(tmp_path, algo: str = "iql", offline_steps: int = 4, online_steps: int = 0) -> RunSpec:
    return RunSpec(algo, "tests/pendulum/random-v0", 0, offline_steps, online_steps, 2, 1, "locomotion", str(tmp_path))


def test_runs_resume_from_their_checkpoint_and_are_not_redone(tmp_path, pendulum_dataset):
    first = spec(tmp_path)
    assert [int(row["step"]) for row in run(first)] == [2, 4]
    (first.directory / "done.json").unlink()  # as if the run had been stopped after step 4 of 6
    longer = spec(tmp_path, offline_steps=6)
    assert [int(row["step"]) for row in run(longer)] == [2, 4, 6]
    assert IQL.load(longer.directory / "model.zip").num_timesteps == 6
    modified = (longer.directory / "model.zip").stat().st_mtime_ns
    assert len(run(longer)) == 3 and (longer.directory / "model.zip").stat().st_mtime_ns == modified


def test_finetuning_run_continues_online(tmp_path, pendulum_dataset):
    finetune = spec(tmp_path, offline_steps=2, online_steps=4)
    rows = run(finetune)
    assert [(row["phase"], int(row["step"])) for row in rows] == [("offline", 2), ("online", 4), ("online", 6)]
    model = IQL.load(finetune.directory / "model.zip")
    assert model.num_timesteps == 4  # env steps online


def test_runs_log_the_update_statistics_offline_and_the_episodes_online(tmp_path, pendulum_dataset):
    """Each stretch of a run writes SB3's CSV log: offline the update's statistics, online also its episodes'."""
    finetune = replace(spec(tmp_path, offline_steps=4, online_steps=200), eval_freq=1000)  # 4 episodes of 50 steps online
    run(finetune)
    logs = finetune.directory / "logs"
    offline = [row for row in read_rows(logs / "offline-from-0" / "progress.csv") if row["time/gradient_steps"]]
    online = [row for row in read_rows(logs / "online-from-0" / "progress.csv") if row["time/total_timesteps"]]
    assert [int(row["time/gradient_steps"]) for row in offline] == [4]
    assert np.isfinite(float(offline[0]["train/mean_q"])) and np.isfinite(float(offline[0]["train/actor_loss"]))
    assert [int(row["time/total_timesteps"]) for row in online] == [200]
    assert float(online[0]["rollout/ep_rew_mean"]) < 0  # Pendulum's rewards are costs
    # What benchmarks/diagnostics/training_log.py reports of them:
    per_evaluation = interval_rows(finetune.directory, log_rows(finetune.directory))
    assert [(row["phase"], row["step"]) for row in per_evaluation] == [("offline", 4), ("online", 204)]
    assert all(np.isfinite(row["train/mean_q"]) for row in per_evaluation)
    assert per_evaluation[1]["rollout/ep_rew_mean"] == float(online[0]["rollout/ep_rew_mean"])
    model = IQL.load(finetune.directory / "model.zip")
    model.set_logger(configure(None, []))
    model.load_dataset(pendulum_dataset)
    model.train(gradient_steps=1, batch_size=8)
    model.train(gradient_steps=1, batch_size=8)
    assert model.logger.name_to_count["train/mean_q"] == 2  # online rows average the update's statistics since the last


def test_seeds_run_together_offline_then_finish_alone(tmp_path, pendulum_dataset):
    """--vectorized: the seeds' offline phases train at once, then each run goes online alone; rows as the pool's."""
    seeds = [replace(spec(tmp_path / "together", offline_steps=4, online_steps=2), seed=seed) for seed in (0, 1)]
    run_together(seeds)
    rows = collect_rows(seeds)
    assert sorted((int(row["seed"]), row["phase"], int(row["step"])) for row in rows) == [
        (seed, phase, step) for seed in (0, 1) for phase, step in (("offline", 2), ("offline", 4), ("online", 6))
    ]
    for one in seeds:
        assert (one.directory / "done.json").exists()
        assert IQL.load(one.directory / "model.zip").num_timesteps == 2
    scores = {int(row["seed"]): float(row["mean_reward"]) for row in rows if int(row["step"]) == 4}
    assert scores[0] != scores[1]


def test_ten_percent_bc_keeps_the_best_episodes(pendulum_dataset):
    returns = dataset_transitions(pendulum_dataset).episode_returns
    best = top_episodes(pendulum_dataset)
    assert best.total_episodes == 1
    assert dataset_transitions(best).episode_returns[0] == returns.max()


def test_table_has_baselines_paper_numbers_and_totals(tmp_path, pendulum_dataset):
    specs = [spec(tmp_path, algo) for algo in ("iql", "bc", "bc10")]
    for one in specs:
        run(one)
    rows = collect_rows(specs)
    assert set(final_scores(rows, "offline")) == {(a, "tests/pendulum/random-v0") for a in ("iql", "bc", "bc10")}
    markdown = table(rows, ["tests/pendulum/random-v0"], ["iql", "bc", "bc10"])
    assert "| BC | 10% BC | IQL (ours) | IQL (paper) |" in markdown
    bc, bc10, ours = (float(cell) for cell in markdown.splitlines()[2].split("|")[2:5])  # one seed each: the score alone
    assert np.isfinite([bc, bc10, ours]).all() and np.isfinite(rows[0]["normalized_score"])
    assert infer_domain("sb3-iql/pen/binary-v1") == "adroit_finetune"
    assert infer_domain("D4RL/antmaze/umaze-v1", finetune=True) == "antmaze_finetune"


def test_domain_totals_sum_the_datasets_present():
    rows = [
        {"algo": "iql", "dataset": dataset, "seed": seed, "phase": "offline", "step": 10, "normalized_score": score}
        for dataset, scores in {
            "sb3-iql/hopper/medium-v0": (60.0, 70.0),
            "sb3-iql/hopper/medium-replay-v0": (90.0, 100.0),
        }.items()
        for seed, score in enumerate(scores)
    ]
    markdown = table(rows, ["sb3-iql/hopper/medium-v0", "sb3-iql/hopper/medium-replay-v0"], ["iql"])
    total = next(line for line in markdown.splitlines() if "total" in line)
    # ours: per-seed totals 150 and 170; paper: 66.3 + 94.7
    assert total == "| **locomotion-v2 total (2 of 9)** | 160.0 ± 10.0 | 161.0 | -1.0 |"


def test_antmaze_progress_data_task_is_the_collection_maze_ending_at_the_goal(umaze_dataset):
    collection = umaze_dataset.recover_environment()
    env = data_task_env(umaze_dataset)
    try:
        assert env.unwrapped.maze.maze_map == collection.unwrapped.maze.maze_map
        assert env.spec.max_episode_steps == 700
        assert not env.unwrapped.continuing_task
        env.reset(seed=0)
        goal = env.unwrapped.goal
        # Walking the ant onto the goal ends the episode, which the collection env never does.
        env.unwrapped.data.qpos[:2] = goal
        assert env.step(np.zeros(env.action_space.shape))[2]
    finally:
        env.close()
        collection.close()


def test_finetune_table_shows_the_data_episodes_score(pendulum_dataset, umaze_dataset):
    returns = dataset_transitions(pendulum_dataset).episode_returns
    expected = 100 * (returns.mean() + 1200.0) / (-150.0 + 1200.0)  # the fixture's reference scores
    assert np.isclose(data_score(pendulum_dataset), expected)
    rows = [
        {"algo": "iql", "dataset": "tests/pendulum/random-v0", "seed": 0, "phase": phase, "step": 10, "normalized_score": 50.0}
        for phase in ("offline", "online")
    ]
    assert f"| tests/pendulum/random-v0 | {expected:.1f} | 50.0 → 50.0 |" in finetune_table(rows, ["tests/pendulum/random-v0"])
    # AntMaze is scored by success rate, which continuing episodes lack; so is the D4RL-physics AntMaze
    assert data_score(umaze_dataset) is None
    assert data_score(build("antmaze-d4rl-umaze", size=300, progress=False)) is None


def test_antmaze_progress_counts_cells_along_the_maze_not_through_walls():
    env = gym.make("AntMaze_UMaze-v4", maze_map=maps.U_MAZE)
    maze = env.unwrapped.maze
    planner = CellPlanner(maze)
    top_left, bottom_left = maze.cell_rowcol_to_xy(np.array([1, 1])), maze.cell_rowcol_to_xy(np.array([3, 1]))
    # One wall apart, six cells around the U.
    assert planner.cells_between(bottom_left, top_left) == 6
    assert planner.cells_between(top_left + 0.5, top_left) == 0
    env.close()


def test_antmaze_progress_reads_the_d4rl_physics_mazes_goal_from_the_env():
    # Its observations leave the goal out (as D4RL's do): the episode's noisy goal comes from the env.
    env = gym.make(eval_env_id("umaze"))
    planner = CellPlanner(env.unwrapped.maze)
    standing_still = episode_progress(env, planner, lambda observation: np.zeros(env.action_space.shape), seed=1_000)
    env.close()
    # From the start (1, 1) to the goal (3, 1): around the U, six cells; an ant that stays put ends there, upright.
    counts = {key: standing_still[key] for key in ("success", "start", "end", "closest", "fell", "steps")}
    assert counts == {"success": 0.0, "start": 6, "end": 6, "closest": 6, "fell": 0.0, "steps": 700}
    # The episode's own noisy goal, in the goal cell (3, 1), and the ant never within D4RL's 0.5 m of it
    goal = np.array([standing_still["goal_x"], standing_still["goal_y"]])
    assert planner.cells_between(planner.maze.cell_rowcol_to_xy(np.array([3, 1])), goal) == 0
    assert standing_still["closest_m"] > 0.5 and standing_still["end_speed"] < 0.001
    assert standing_still["goal_cell_step"] == -1  # never in the goal's cell


def test_antmaze_progress_time_limit_remakes_the_same_task_with_other_steps():
    env = with_time_limit(gym.make(eval_env_id("umaze")), 30)
    episode = episode_progress(env, CellPlanner(env.unwrapped.maze), lambda observation: np.zeros(8), seed=1_000)
    env.close()
    assert env.spec.id == eval_env_id("umaze") and (episode["steps"], episode["start"], episode["success"]) == (30, 6, 0.0)


def test_finetune_table_shows_the_success_rate_beside_the_normalized_return():
    rows = [
        {"algo": "iql", "dataset": "x", "seed": 0, "phase": phase, "step": 10, "normalized_score": score, "success_rate": rate}
        for phase, score, rate in (("offline", 40.0, 0.25), ("online", 60.0, 0.5))
    ]
    line = next(line for line in finetune_table(rows, []).splitlines() if "success rate" in line)
    assert "normalized return" in line
    assert final_scores(rows, "online", "success_rate") == {("iql", "x"): {0: 0.5}}
    assert final_scores(rows, "offline") == {("iql", "x"): {0: 40.0}}


def test_ray_runs_give_the_process_pool_rows(tmp_path, pendulum_dataset):
    """The runners' --ray path on a local Ray instance (2 CPUs): two tiny runs, the rows of the same runs without Ray."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'sb3-iql[benchmarks]'")
    from protocol import run_all

    def specs(out):
        return [replace(spec(out, offline_steps=4), seed=seed) for seed in (0, 1)]

    run_all(specs(tmp_path / "pool"), workers=1)  # the same run() as the pool's workers, in this process
    try:
        run_all(specs(tmp_path / "ray"), workers=2, use_ray=True)
    finally:
        ray.shutdown()
    fields = ("algo", "dataset", "seed", "phase", "step", "normalized_score", "mean_reward")
    pool_rows = [{key: row[key] for key in fields} for row in collect_rows(specs(tmp_path / "pool"))]
    ray_rows = [{key: row[key] for key in fields} for row in collect_rows(specs(tmp_path / "ray"))]
    assert len(ray_rows) == 4 and ray_rows == pool_rows


def test_figure3_ablations_change_only_what_they_name(tmp_path, pendulum_dataset):
    from protocol import new_model

    models = {
        algo: new_model(spec(tmp_path, algo), pendulum_dataset) for algo in ("iql", "iql-tau0.5", "iql-tau0.7", "iql-mean-q")
    }
    assert [models[algo].expectile for algo in models] == [0.7, 0.5, 0.7, 0.7]  # locomotion's preset is 0.7
    assert [models[algo].critic_reduction for algo in models] == ["min", "min", "min", "mean"]
    assert {models[algo].beta for algo in models} == {3.0}


KEPT_RUN = """
import os, sys
sys.path.insert(0, {benchmarks!r})
from protocol import RunSpec, run
from sb3_iql.datasets import build
size = int(sys.argv[1])
build("antmaze-d4rl-umaze", size=size, progress=False)
offline_steps = int(sys.argv[5])
run(RunSpec("iql", "sb3-iql/antmaze-d4rl/umaze-v0", 0, offline_steps, int(sys.argv[2]), 20, 1, "antmaze_finetune", sys.argv[3], keep=sys.argv[4]))
"""


def _kept_run(tmp_path, minari_dir: str, out: str, keep: str, online_steps: int, size: int = 1500, offline_steps: int = 40):
    """One ``run`` in a fresh process that first builds its dataset into ``minari_dir`` (a machine's own disk)."""
    script = tmp_path / "kept_run.py"
    script.write_text(KEPT_RUN.format(benchmarks=str(Path(__file__).resolve().parents[1] / "benchmarks")))
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / minari_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            str(script),
            str(size),
            str(online_steps),
            str(tmp_path / out),
            str(tmp_path / keep),
            str(offline_steps),
        ],
        env=env,
        capture_output=True,
        text=True,
    )


def _weights(path: Path) -> dict:
    return IQL.load(path).policy.state_dict()


def test_kept_offline_checkpoint_resumes_the_online_phase_bit_for_bit_on_another_machine(tmp_path):
    """Offline phase -> kept checkpoint -> a fresh process rebuilds the data -> online: the weights of an uninterrupted run."""
    whole = _kept_run(tmp_path, "minari_a", "out_a", "keep_a", online_steps=30)
    assert whole.returncode == 0, whole.stderr[-3000:]
    offline = _kept_run(tmp_path, "minari_b", "out_b", "keep_b", online_steps=0)
    assert offline.returncode == 0, offline.stderr[-3000:]
    kept = tmp_path / "keep_b" / "antmaze_d4rl_umaze_seed0_offline.zip"
    record = json.loads(kept.with_suffix(".json").read_text())
    assert record["complete"] and record["offline_steps"] == 40 and [int(row["step"]) for row in record["rows"]] == [20, 40]
    kept_bytes = kept.read_bytes()
    # Another day: the run folder and the dataset are gone; only the kept checkpoint came back with the repository.
    online = _kept_run(tmp_path, "minari_c", "out_c", "keep_b", online_steps=30)
    assert online.returncode == 0, online.stderr[-3000:]
    assert kept.read_bytes() == kept_bytes  # going on from the complete kept phase does not rewrite the committed file
    directory = Path("runs/iql/sb3-iql_antmaze-d4rl_umaze-v0/seed0")
    resumed, uninterrupted = (
        _weights(tmp_path / "out_c" / directory / "model.zip"),
        _weights(tmp_path / "out_a" / directory / "model.zip"),
    )
    assert resumed.keys() == uninterrupted.keys()
    assert all(th.equal(resumed[name], uninterrupted[name]) for name in resumed)
    rows = read_rows(tmp_path / "out_c" / directory / "evaluations.csv")
    assert [(row["phase"], int(row["step"])) for row in rows] == [
        ("offline", 20),
        ("offline", 40),
        ("online", 60),
        ("online", 70),
    ]
    # The offline phase's training logs came back with it, as the run wrote them: training_log.py reads both phases.
    offline_log = directory / "logs" / "offline-from-0" / "progress.csv"
    assert (tmp_path / "out_c" / offline_log).read_text() == (tmp_path / "out_b" / offline_log).read_text() != ""
    assert sorted(path.name for path in (tmp_path / "out_c" / directory / "logs").iterdir()) == [
        "offline-from-0",
        "online-from-0",
    ]


def test_kept_checkpoint_refuses_other_data_or_another_run_length(tmp_path):
    offline = _kept_run(tmp_path, "minari_b", "out_b", "keep", online_steps=0)
    assert offline.returncode == 0, offline.stderr[-3000:]
    kept = (tmp_path / "keep").glob("*.zip").__next__()
    before = kept.read_bytes()
    other = _kept_run(tmp_path, "minari_c", "out_c", "keep", online_steps=30, size=1400)  # not the data it was trained on
    assert other.returncode != 0
    assert "fingerprint" in other.stderr and "Rebuild the dataset" in other.stderr
    assert kept.read_bytes() == before
    # The same data, but a run of another length: the kept phase's learning-rate schedule was another one.
    longer = _kept_run(tmp_path, "minari_d", "out_d", "keep", online_steps=30, offline_steps=60)
    assert longer.returncode != 0
    assert "from a run of 40 offline steps, and this run plans 60" in longer.stderr and "--keep DIR" in longer.stderr
    assert kept.read_bytes() == before
