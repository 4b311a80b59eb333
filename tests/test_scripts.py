"""Every script in examples/ and benchmarks/ runs end to end at a tiny size, so none can break unnoticed."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import minari
import pytest
from conftest import needs_shared, small_iql

from sb3_iql.datasets import build
from sb3_iql.datasets.adroit import dapg_policy_file

ROOT = Path(__file__).resolve().parents[1]
PAPER_TABLE2 = json.loads((ROOT / "benchmarks" / "paper_numbers.json").read_text())["table2"]
SCRIPTS = sorted(
    str(path.relative_to(ROOT))
    for folder in ("examples", "benchmarks", "benchmarks/diagnostics", "benchmarks/peers")
    for path in (ROOT / folder).glob("*.py")
)
# Scripts another script runs for it, in d3rlpy's own environment (benchmarks/.venv-d3rlpy).
NOT_RUN_ALONE = {
    "benchmarks/peers/d3rlpy_speed.py": "speed.py runs it in benchmarks/.venv-d3rlpy, with d3rlpy installed",
    "benchmarks/peers/d3rlpy_iql.py": "peer.py runs it in benchmarks/.venv-d3rlpy, with d3rlpy installed",
}
D3RLPY_PYTHON = ROOT / "benchmarks" / ".venv-d3rlpy" / "bin" / "python"
# Scripts that need d3rlpy's own environment to run at all.
NEEDS_D3RLPY = {"benchmarks/peer.py"}
# Scripts whose tiny command reads a real source file from ../shared/data (absent from a user's clone).
NEEDS_SHARED = {"benchmarks/diagnostics/binary_data.py": dapg_policy_file("pen")}
# Datasets a script's tiny command reads, built first (in the test's own MINARI_DATASETS_PATH): recipe and size.
NEEDS_DATASET = {"benchmarks/diagnostics/antmaze_d4rl_data.py": ("antmaze-d4rl-umaze", 1200)}


def run(script: str, *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture
def umaze_model(umaze_dataset, tmp_path) -> Path:
    model = small_iql(None, policy="MultiInputPolicy")
    model.learn_offline(umaze_dataset, 2)
    model.save(tmp_path / "umaze")
    return tmp_path / "umaze.zip"


def minari_root(dataset: minari.MinariDataset) -> str:
    """:return: The ``MINARI_DATASETS_PATH`` folder a local ``sb3-iql/<env>/<name>`` dataset lies in (``.../data``)."""
    return str(Path(dataset.storage.data_path).parents[3])


def figure3_rows(tmp: Path) -> Path:
    """Evaluation rows as the runners write them, for the four Figure 3 settings at two steps."""
    path = tmp / "figure3_evaluations.csv"
    lines = ["algo,dataset,seed,phase,step,normalized_score,mean_reward,success_rate"]
    for algo, score in (("iql", 40.0), ("iql-tau0.5", 5.0), ("iql-tau0.7", 20.0), ("iql-mean-q", 10.0)):
        lines += [f"{algo},sb3-iql/antmaze/umaze-v1,0,offline,{step},{score * step / 100},0,0" for step in (50, 100)]
    path.write_text("\n".join(lines) + "\n")
    return path


def table2_rows(tmp: Path) -> Path:
    """A finetuning run's rows as finetune.py writes them: two offline and one online evaluation, one seed."""
    path = tmp / "pen_binary_seed0.csv"
    path.write_text(
        "algo,dataset,seed,phase,step,normalized_score,mean_reward,success_rate\n"
        "iql,sb3-iql/pen/binary-v1,0,offline,100,50.0,-50,0.9\n"
        "iql,sb3-iql/pen/binary-v1,0,offline,200,40.0,-60,0.8\n"
        "iql,sb3-iql/pen/binary-v1,0,online,300,70.0,-30,1.0\n"
    )
    return path


def logged_run(tmp: Path) -> Path:
    """
    A run folder as the runners write it: evaluations, and SB3's CSV logs of an offline stretch cut short after step
    3, its resumed stretch from step 2, and the online phase (steps counted from 0 there).
    """
    run = tmp / "runs" / "iql" / "sb3-iql_pen_binary-v1" / "seed0"
    header = "time/gradient_steps,train/mean_q,train/mean_v,train/mean_advantage,train/mean_weight,train/actor_loss,train/critic_loss"
    logs = {
        "offline-from-0": [header, "1,1,0,0,1,1,1", "2,2,0,0,1,1,1", "3,99,0,0,1,1,1", ",,,,,,"],  # the last: an evaluation's
        "offline-from-2": [header, "3,3,0,0,1,1,1", "4,4,0,0,1,1,1"],
        "online-from-0": [
            "time/total_timesteps,rollout/success_rate,rollout/ep_rew_mean," + header.split(",", 1)[1],
            "1,0.25,-80,5,0,0,1,1,1",
            "2,0.5,-60,7,0,0,1,1,1",
        ],
    }
    for stretch, lines in logs.items():
        (run / "logs" / stretch).mkdir(parents=True)
        (run / "logs" / stretch / "progress.csv").write_text("\n".join(lines) + "\n")
    (run / "evaluations.csv").write_text(
        "algo,dataset,seed,phase,step,normalized_score,mean_reward,success_rate\n"
        "iql,sb3-iql/pen/binary-v1,0,offline,2,50.0,-50,0.9\n"
        "iql,sb3-iql/pen/binary-v1,0,offline,4,40.0,-60,0.8\n"
        "iql,sb3-iql/pen/binary-v1,0,online,6,70.0,-30,1.0\n"
    )
    return run


def tiny_commands(tmp: Path, pendulum: str, umaze_root: str, umaze_model: Path) -> dict[str, tuple[list[str], dict]]:
    """Each script's arguments at a tiny size, and the environment it needs."""
    umaze = {"MINARI_DATASETS_PATH": umaze_root}
    protocol = ["--seeds", "1", "--workers", "1", "--eval-episodes", "1", "--out", str(tmp / "out")]
    return {
        "examples/offline.py": (["--steps", "20", "--eval-episodes", "1", "--plot", str(tmp / "curves.png")], {}),
        "examples/finetune.py": (["--offline-steps", "20", "--online-steps", "20", "--eval-episodes", "1"], {}),
        "examples/pendulum_data.py": ([], {}),
        "examples/figure2_toy_maze.py": (["--steps", "20", "--episodes", "20", "--out", str(tmp / "figure2")], {}),
        "benchmarks/speed.py": (
            [
                "--steps",
                "3",
                "--repeats",
                "1",
                "--sizes",
                "antmaze",
                "--no-compile",
                "--load-transitions",
                "2000",
                "--seeds",
                "1",
                "2",
            ],
            {},
        ),
        "benchmarks/results_page.py": (["--out", str(tmp / "results.md")], {}),
        "benchmarks/diagnostics/seeds.py": (
            ["--seeds", "2", "--steps", "4", "--eval-episodes", "1", "--out", str(tmp / "seeds")],
            {},
        ),
        "benchmarks/offline.py": (
            [pendulum, "--offline-steps", "4", "--eval-freq", "2", "--algos", "iql", "bc", *protocol],
            {},
        ),
        "benchmarks/finetune.py": (
            [pendulum, "--offline-steps", "4", "--online-steps", "4", "--eval-freq", "2", *protocol],
            {},
        ),
        "benchmarks/diagnostics/antmaze_data.py": (
            ["sb3-iql/antmaze/umaze-v1", "--planner-episodes", "1", "--out", str(tmp / "data")],
            umaze,
        ),
        "benchmarks/diagnostics/antmaze_d4rl_data.py": (
            ["sb3-iql/antmaze-d4rl/umaze-v0", "--planner-episodes", "1", "--out", str(tmp / "d4rl_data")],
            {},
        ),
        "benchmarks/diagnostics/antmaze_progress.py": (
            ["sb3-iql/antmaze/umaze-v1", str(umaze_model), "--episodes", "1", "--out", str(tmp / "progress")],
            umaze,
        ),
        "benchmarks/diagnostics/critic_probe.py": (
            ["sb3-iql/antmaze/umaze-v1", str(umaze_model), "--samples", "64", "--labels", "tiny", "--out", str(tmp / "probe")],
            umaze,
        ),
        "benchmarks/diagnostics/online_speed.py": (
            [pendulum, "--threads", "1", "--offline-steps", "5", "--online-steps", "20", "--warm-up", "5", "--no-compile"],
            {},
        ),
        "benchmarks/diagnostics/binary_data.py": (
            ["--tasks", "pen", "--expert-episodes", "1", "--out", str(tmp / "binary")],
            {},
        ),
        "benchmarks/diagnostics/discrete.py": (
            [
                "--tasks",
                "cartpole",
                "--steps",
                "4",
                "--seeds",
                "1",
                "--eval-freq",
                "2",
                "--eval-episodes",
                "1",
                "--out",
                str(tmp / "d"),
            ],
            {},
        ),
        "benchmarks/diagnostics/ant_gain.py": (["--gains", "0.5", "--episodes", "1", "--out", str(tmp / "gain")], {}),
        "benchmarks/table2.py": ([str(table2_rows(tmp)), "--out", str(tmp / "table2")], {}),
        "benchmarks/peer.py": (
            [pendulum, "--steps", "4", "--eval-freq", "2", "--eval-episodes", "1", "--seeds", "1", "--out", str(tmp / "peer")],
            {},
        ),
        "benchmarks/figure3.py": ([str(figure3_rows(tmp)), "--out", str(tmp / "figure3")], {}),
        "benchmarks/diagnostics/training_log.py": ([str(logged_run(tmp)), "--out", str(tmp / "training")], {}),
        "benchmarks/diagnostics/ant_controller.py": (
            ["--trials", "1", "--maze-episodes", "1", "--workdir", str(tmp / "ant"), "--out", str(tmp / "ant_out")],
            {},
        ),
    }


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_runs_at_a_tiny_size(script, tmp_path, pendulum_dataset, umaze_dataset, umaze_model):
    if script in NOT_RUN_ALONE:
        pytest.skip(NOT_RUN_ALONE[script])
    if script in NEEDS_SHARED:
        needs_shared(NEEDS_SHARED[script])
    if script in NEEDS_D3RLPY and not D3RLPY_PYTHON.exists():
        pytest.skip(f"{script} trains d3rlpy in {D3RLPY_PYTHON.parent.parent}: make it as benchmarks/README.md says")
    umaze_root = minari_root(umaze_dataset)
    commands = tiny_commands(tmp_path, pendulum_dataset.spec.dataset_id, umaze_root, umaze_model)
    assert script in commands, f"{script} has no tiny command in tests/test_scripts.py: add one"
    args, env = commands[script]
    if script in NEEDS_DATASET:
        recipe, size = NEEDS_DATASET[script]
        build(recipe, size=size, progress=False)
    run(script, *args, env=env, cwd=tmp_path)


def test_table2_gives_each_task_the_protocol_it_reached_beside_the_papers(tmp_path):
    shorter = tmp_path / "pen_binary_short_seed0-1.csv"  # two seeds of a shorter protocol, in one file
    shorter.write_text(
        "algo,dataset,seed,phase,step,normalized_score,mean_reward,success_rate\n"
        + "".join(f"iql,sb3-iql/pen/binary-v1,{seed},offline,2000,{10 * seed},0,0.5\n" for seed in (0, 1))
    )
    (tmp_path / "data_scores.json").write_text('{"sb3-iql/pen/binary-v1": 54.3}')  # recorded where the data was local
    readme = tmp_path / "README.md"
    readme.write_text("Intro\n\n| task | IQL, ours | seeds | old |\n|---|\n| pen-binary-v0 | old |\n\nAfter\n")
    args = (str(table2_rows(tmp_path)), str(shorter), "--out", str(tmp_path))
    run("benchmarks/table2.py", *args, "--readme", str(readme), cwd=tmp_path)
    table = (tmp_path / "table2.md").read_text()
    at_a_glance = (tmp_path / "glance.md").read_text()
    assert readme.read_text() == "Intro\n\n" + at_a_glance + "\nAfter\n"  # the README's copy replaced, the rest kept
    glance_rows = {line.split("|")[1].strip(): line for line in at_a_glance.splitlines()[2:]}
    assert list(glance_rows)[:6] == [name for name in PAPER_TABLE2][:6]  # the paper's tasks in its order
    pen = [cell.strip() for cell in glance_rows["pen-binary-v0"].strip("|").split("|")]
    assert pen[1:5] == ["40.0 → 70.0", "37.4 → 60.7", "0k + 0k", "1"]  # the protocol that went furthest, not the seeds' count
    assert pen[5].startswith("[rows](") and pen[5].endswith(".csv)")
    assert glance_rows["antmaze-large-play-v0"].startswith("| antmaze-large-play-v0 | not run yet | 25.5 → 46.0 | - | 0 |")
    rows = [line for line in table.splitlines() if line.startswith("| pen-binary")]
    shorter_cells, cells = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    assert cells[3] == "54.3"  # the dataset is not on this machine: its recorded score
    assert cells[1] == "0k + 0k (short of 1M + 1M)"  # 200 offline steps, 100 online
    assert cells[4] == "37.4 → 60.7"  # the paper's
    assert cells[6] == "40.0 → 70.0"  # last offline, last online; one seed: no spread
    assert cells[7] == "80.0 → 100.0"
    assert shorter_cells[1:3] == ["2k + 0k (short of 1M + 1M)", "2"]  # its own row (the longer first), seeds pooled
    assert shorter_cells[6] == "5.0 ± 5.0 → -"
    assert "| antmaze-large-play-v0 | not run yet | 0 | - | 25.5 → 46.0 | 38.5 → 64.5 | - | - |" in table.splitlines()
    assert not any(line.startswith("| pen-binary-v0 | not run yet") for line in table.splitlines())
    assert (tmp_path / "curves.png").stat().st_size > 0
    readme.write_text("No table here\n")
    failed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/table2.py"), *args, "--readme", str(readme)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and "paste benchmarks/results/table2/glance.md there once" in failed.stderr
    assert readme.read_text() == "No table here\n"


def test_antmaze_progress_gives_the_mean_and_the_sampled_actions_a_row_each(tmp_path, umaze_dataset, umaze_model):
    umaze = {"MINARI_DATASETS_PATH": minari_root(umaze_dataset)}
    args = ("sb3-iql/antmaze/umaze-v1", str(umaze_model), "--episodes", "1", "--actions", "both", "--out", str(tmp_path))
    run("benchmarks/diagnostics/antmaze_progress.py", *args, env=umaze, cwd=tmp_path)
    rows = [line for line in (tmp_path / "antmaze_progress.md").read_text().splitlines() if str(umaze_model) in line]
    assert [row.split("|")[2].strip() for row in rows] == ["mean", "sampled"]
    assert all(row.split("|")[4].strip() == "6.0" for row in rows)  # the same start, six cells around the U
    for row in rows:  # one episode: either a success with its length, or one failure (in the goal's cell or not)
        success, steps, near_goal, still = (row.split("|")[i].strip() for i in (3, 8, 9, 10))
        assert (
            (steps.isdigit() and near_goal == still == "0 of 0")
            if success == "100%"
            else (steps == "-" and {near_goal, still} <= {"0 of 1", "1 of 1"})
        )
    with open(tmp_path / "antmaze_progress_episodes.csv") as file:
        episodes = list(csv.DictReader(file))
    assert [(row["actions"], row["seed"], row["start"]) for row in episodes] == [
        ("mean", "1000", "6"),
        ("sampled", "1000", "6"),
    ]
    for row in episodes:  # a success was in the goal's cell on its way; a step in it lies within the episode
        goal_cell_step = int(row["goal_cell_step"])
        assert goal_cell_step >= (0 if float(row["success"]) else -1) and goal_cell_step <= int(row["steps"])


def test_training_log_averages_each_evaluation_interval_and_puts_online_steps_after_offline(tmp_path):
    run(
        "benchmarks/diagnostics/training_log.py",
        str(logged_run(tmp_path)),
        "--name",
        "pen",
        "--out",
        str(tmp_path),
        cwd=tmp_path,
    )
    rows = [line for line in (tmp_path / "pen_training.md").read_text().splitlines()[2:]]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert [row[:4] for row in cells] == [
        ["offline", "2", "50.0", "90"],
        ["offline", "4", "40.0", "80"],
        ["online", "6", "70.0", "100"],
    ]
    assert [row[6] for row in cells] == ["1.500", "3.500", "6.000"]  # mean Q; step 3 of the stretch cut short gives way
    assert [row[4:6] for row in cells] == [["-", "-"], ["-", "-"], ["50", "-60.0"]]  # the last 100 online episodes
    assert (tmp_path / "pen_training.png").stat().st_size > 0


def test_training_log_keeps_the_rows_it_wrote_for_evaluations_whose_logs_are_gone(tmp_path):
    run_folder = logged_run(tmp_path)
    run("benchmarks/diagnostics/training_log.py", str(run_folder), "--name", "pen", "--out", str(tmp_path), cwd=tmp_path)
    before = (tmp_path / "pen_training.md").read_text()
    for stretch in ("offline-from-0", "offline-from-2"):  # a wiped machine: the offline phase's logs did not come back
        shutil.rmtree(run_folder / "logs" / stretch)
    run("benchmarks/diagnostics/training_log.py", str(run_folder), "--name", "pen", "--out", str(tmp_path), cwd=tmp_path)
    assert (tmp_path / "pen_training.md").read_text() == before
    (tmp_path / "pen_training.md").unlink()  # with no earlier log, those rows say they have no statistics
    run("benchmarks/diagnostics/training_log.py", str(run_folder), "--name", "pen", "--out", str(tmp_path), cwd=tmp_path)
    rows = (tmp_path / "pen_training.md").read_text().splitlines()[2:]
    assert [row.strip("| ").split(" | ")[6] for row in rows] == ["-", "-", "6.000"]


def test_the_readme_shows_the_committed_table2():
    committed = (ROOT / "benchmarks" / "results" / "table2" / "glance.md").read_text().strip()
    assert committed in (ROOT / "README.md").read_text(), "copy benchmarks/results/table2/glance.md into the README"


def test_peer_resumes_from_its_kept_checkpoint_where_the_run_folder_is_gone(tmp_path, pendulum_dataset):
    if not D3RLPY_PYTHON.exists():
        pytest.skip(f"peer.py trains d3rlpy in {D3RLPY_PYTHON.parent.parent}: make it as benchmarks/README.md says")
    args = [pendulum_dataset.spec.dataset_id, "--steps", "4", "--eval-freq", "2", "--eval-episodes", "1", "--seeds", "1"]
    args += ["--out", str(tmp_path / "out"), "--keep", str(tmp_path / "keep")]
    run("benchmarks/peer.py", *args, "--steps", "2", cwd=tmp_path)  # the first stretch, then the session ends
    shutil.rmtree(tmp_path / "out")  # and the disk with it
    run("benchmarks/peer.py", *args, cwd=tmp_path)
    run_folder = next((tmp_path / "out" / "runs" / "d3rlpy-iql").glob("*/seed0"))
    assert sorted(path.name for path in run_folder.glob("policy_*.pt")) == ["policy_4.pt"]  # only the second stretch trained
    with open(tmp_path / "out" / "peer" / "evaluations.csv") as file:
        assert [row["step"] for row in csv.DictReader(file)] == ["2", "4"]
    kept = json.loads(next((tmp_path / "keep").glob("*.json")).read_text())
    assert kept["state"]["steps"] == 4 and len(kept["rows"]) == 2


def test_the_first_run_prints_the_table_and_progress_bars_and_nothing_else(tmp_path):
    quiet = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    imported = subprocess.run(
        [sys.executable, "-c", "import sb3_iql, sb3_iql.datasets"], env=quiet, capture_output=True, text=True
    )
    assert imported.returncode == 0 and imported.stdout == imported.stderr == "", imported.stderr
    args = ["--steps", "20", "--eval-episodes", "1", "--plot", str(tmp_path / "curves.png")]
    example = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "offline.py"), *args], cwd=tmp_path, env=quiet, capture_output=True, text=True
    )
    assert example.returncode == 0, example.stderr[-3000:]
    assert example.stderr == ""  # the dataset is built here too: Minari says nothing either
    assert "warn" not in example.stdout.lower() and "| IQL          |" in example.stdout


def test_peer_compare_puts_both_libraries_side_by_side_at_each_step(tmp_path):
    header = "algo,dataset,seed,phase,step,normalized_score,mean_reward,success_rate\n"
    (tmp_path / "peer.csv").write_text(header + "d3rlpy-iql,d,0,offline,50,10.0,0,0.1\nd3rlpy-iql,d,1,offline,50,30.0,0,0.3\n")
    (tmp_path / "ours.csv").write_text(
        header + "iql,d,0,offline,50,40.0,0,0.4\niql,d,1,offline,50,50.0,0,0.5\niql,d,0,offline,100,60.0,0,0.6\n"
    )
    run("benchmarks/peer.py", "--compare", str(tmp_path / "peer.csv"), str(tmp_path / "ours.csv"), cwd=tmp_path)
    lines = (tmp_path / "peer.md").read_text().splitlines()
    assert lines[2] == "| d | 50 | 40 / 50 | 45.0 ± 5.0 | 10 / 30 | 20.0 ± 10.0 | -25.0 |"
    assert lines[3] == "| d | 100 | 60 | 60.0 | - | - | - |"
