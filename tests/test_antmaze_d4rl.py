"""The D4RL-physics AntMaze: D4RL's ant, observation layout, tasks, and its datasets with relabelled rewards."""

import gymnasium as gym
import minari
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from sb3_iql import IQL
from sb3_iql.data.goals import evaluation_env
from sb3_iql.data.readers import dataset_transitions
from sb3_iql.datasets import build
from sb3_iql.datasets.antmaze_d4rl import (
    D4RL_AIM_DISTANCE,
    TASKS,
    VERSIONS,
    D4RLNavigation,
    dataset_id,
    make_collection_env,
    relabel_goal,
)
from sb3_iql.tasks.antmaze import marked_cells
from sb3_iql.tasks.antmaze_d4rl import (
    D4RL_GOAL_RADIUS,
    DATA_MAPS,
    EVAL_GOALS,
    EVAL_STEPS,
    GOAL_NOISE,
    D4RLAntMaze,
    eval_env_id,
    is_d4rl_antmaze,
)


@pytest.fixture(scope="module")
def medium_env():
    env = gym.make(eval_env_id("medium"))
    yield env
    env.close()


def test_the_ant_has_d4rls_motors_timestep_and_contacts(medium_env):
    ant = medium_env.unwrapped.ant_env
    assert ant.model.opt.timestep == pytest.approx(0.02) and ant.frame_skip == 5 and ant.dt == pytest.approx(0.1)
    assert ant.model.opt.integrator == 1  # mjINT_RK4
    medium_env.reset(seed=0)
    medium_env.step(np.ones(8, dtype=np.float32))
    np.testing.assert_allclose(ant.data.qfrc_actuator[6:], 30.0)  # action 1 is 30 N m on each joint (Gymnasium's ant: 150)
    np.testing.assert_allclose(ant.model.geom_solimp[ant.model.geom("torso_geom").id][:3], [0.8, 0.8, 0.01])


def test_observations_are_qpos15_and_qvel14(medium_env):
    observation, _ = medium_env.reset(seed=1)
    assert medium_env.observation_space.shape == (29,)
    data = medium_env.unwrapped.ant_env.data
    np.testing.assert_array_equal(observation, np.concatenate([data.qpos[:15], data.qvel[:14]]))
    observation, *_ = medium_env.step(medium_env.action_space.sample())
    np.testing.assert_array_equal(observation[:2], data.qpos[:2])


@pytest.mark.parametrize("maze", ["umaze", "medium", "large"])
def test_evaluation_task_starts_at_r_and_aims_at_d4rls_goal_with_its_noise(maze):
    env = gym.make(eval_env_id(maze))
    assert env.spec.max_episode_steps == EVAL_STEPS[maze]
    maze_geometry = env.unwrapped.maze
    goals = []
    for seed in range(20):
        observation, info = env.reset(seed=seed)
        assert np.abs(observation[:2] - maze_geometry.cell_rowcol_to_xy(np.array((1, 1)))).max() <= 0.1 + 1e-9
        goals.append(info["goal"])
    offsets = np.array(goals) - maze_geometry.cell_rowcol_to_xy(np.array(EVAL_GOALS[maze]))
    # D4RL's goal noise, U(0, 1) + U(0, 0.5) toward higher columns (+x) and rows (-y here), drawn anew each episode.
    assert (offsets[:, 0] >= 0).all() and (offsets[:, 1] <= 0).all() and np.abs(offsets).max() <= sum(GOAL_NOISE)
    assert len({tuple(goal) for goal in goals}) == len(goals)
    env.close()


def test_success_within_half_a_metre_ends_the_episode_with_reward_one(medium_env):
    _, info = medium_env.reset(seed=2)
    ant = medium_env.unwrapped.ant_env
    qpos, qvel = ant.data.qpos.copy(), np.zeros_like(ant.data.qvel)
    qpos[:2] = info["goal"] + np.array([0.3, 0.0])
    ant.set_state(qpos, qvel)
    _, reward, terminated, truncated, info = medium_env.step(np.zeros(8, dtype=np.float32))
    assert info["success"] and reward == 1.0 and terminated and not truncated
    qpos[:2] = info["goal"] + np.array([D4RL_GOAL_RADIUS + 0.2, 0.0])
    ant.set_state(qpos, qvel)
    _, reward, terminated, _, info = medium_env.step(np.zeros(8, dtype=np.float32))
    assert not info["success"] and reward == 0.0 and not terminated


def test_gymnasium_and_sb3_env_checkers_pass():
    # Rendering is left out: this machine has no display for the "human" mode the checker tries.
    gym_check_env(D4RLAntMaze("umaze"), skip_render_check=True)
    sb3_check_env(gym.make(eval_env_id("umaze")))


def test_play_data_start_in_free_cells_and_aim_at_marked_goals():
    env = make_collection_env("medium-play")
    maze = env.unwrapped.maze
    marked = set(marked_cells(DATA_MAPS["medium"], "g"))
    starts, goal_cells = set(), set()
    for seed in range(30):
        observation, info = env.reset(seed=seed)
        starts.add(tuple(int(i) for i in maze.cell_xy_to_rowcol(observation[:2] - np.array([0.5, -0.5]))))
        goal_cells.add(min(marked, key=lambda cell: np.linalg.norm(maze.cell_rowcol_to_xy(np.array(cell)) - info["goal"])))
    assert not starts & marked and len(starts) > 5
    assert goal_cells == marked
    assert not env.unwrapped.terminate_at_goal
    env.close()


def test_small_dataset_builds_in_seconds_with_relabelled_rewards_and_d4rl_infos():
    dataset = build("antmaze-d4rl-umaze", size=1500, progress=False, seed=3)
    assert dataset.spec.dataset_id == dataset_id("umaze") == "sb3-iql/antmaze-d4rl/umaze-v0"
    assert dataset.total_steps == 1500 and dataset.observation_space.shape == (29,)
    goal = relabel_goal("umaze", 3)
    reached_rows = 0
    for episode in dataset.iterate_episodes():
        reached = np.linalg.norm(episode.observations[1:, :2] - goal, axis=1) <= D4RL_GOAL_RADIUS
        np.testing.assert_array_equal(episode.rewards, reached.astype(float))
        np.testing.assert_array_equal(episode.terminations, reached)
        np.testing.assert_array_equal(episode.infos["qpos"], episode.observations[:, :15])
        np.testing.assert_array_equal(episode.infos["qvel"], episode.observations[:, 15:])
        assert len(np.unique(episode.infos["goal"], axis=0)) == 1  # one commanded goal per episode
        assert episode.truncations[-1] and len(episode.actions) <= 1000
        reached_rows += int(reached.sum())
    assert reached_rows > 0  # umaze's data are the task itself: the planner-driven ant gets there
    assert is_d4rl_antmaze(dataset) and dataset.recover_environment(eval_env=True).spec.id == eval_env_id("umaze")
    transitions = dataset_transitions(dataset)
    assert transitions.dones.sum() >= reached_rows  # terminal rows, and the episode goes on after them


def test_learn_offline_with_the_antmaze_preset_needs_nothing_else(tmp_path):
    dataset = build("antmaze-d4rl-medium-play", size=600, progress=False)
    env, scores_success = evaluation_env(dataset)
    assert scores_success and env.spec.id == eval_env_id("medium")
    model = IQL(
        "MlpPolicy", None, **{**IQL.paper_hyperparameters("antmaze"), "batch_size": 16, "policy_kwargs": {"net_arch": [16]}}
    )
    model.learn_offline(dataset_id("medium-play"), 4, eval_env="dataset", eval_freq=4, n_eval_episodes=1)
    assert model.observation_space.shape == (29,)


def test_unknown_recipe_and_bad_env_arguments_say_what_to_do():
    with pytest.raises(KeyError, match="Unknown dataset recipe"):
        build("antmaze-d4rl-huge-play")
    with pytest.raises(ValueError, match="choose one of"):
        dataset_id("huge-play")
    with pytest.raises(ValueError, match="start must be one of"):
        D4RLAntMaze("umaze", start="corner")
    assert set(TASKS) == {"umaze", "umaze-diverse", "medium-play", "medium-diverse", "large-play", "large-diverse"}
    assert minari.list_local_datasets() == {}


def test_the_2x2s_other_cells_swap_only_the_ant():
    """D4RL's design on Gymnasium's ant, and Minari's design on D4RL's ant: the AntMaze 2 x 2's off-diagonal cells."""
    design_d4rl = build("antmaze-d4rl-medium-play", size=300, progress=False, ant="gymnasium")
    assert design_d4rl.spec.dataset_id == "sb3-iql/antmaze-d4rl-gymnasium-ant/medium-play-v0"
    env, scores_success = evaluation_env(design_d4rl)
    ant = env.unwrapped.ant_env
    assert scores_success and env.spec.id == eval_env_id("medium") and ant.dt == pytest.approx(0.05)
    assert ant.model.actuator_gear[0, 0] == 150.0 and design_d4rl.observation_space.shape == (29,)
    design_minari = build("antmaze-medium-play", size=300, progress=False, ant="d4rl", reference_episodes=1)
    assert design_minari.spec.dataset_id == "sb3-iql/antmaze-d4rl-ant/medium-play-v1"
    env, scores_success = evaluation_env(design_minari)
    ant = env.unwrapped.ant_env
    assert scores_success and ant.dt == pytest.approx(0.1) and ant.model.actuator_gear[0, 0] == 30.0
    assert not env.unwrapped.continuing_task and set(design_minari.observation_space.spaces) == {
        "observation",
        "achieved_goal",
        "desired_goal",
    }


def test_d4rls_navigation_uses_its_cells_and_re_aims_ten_metres_away_at_every_step(medium_env):
    """D4RL's ``create_navigation_policy``: cells ``int(1 + offset / 4)`` from the start's centre, the next cell's jittered
    centre drawn anew each step, the goal from the cell before it, the direction scaled to 10 m."""
    maze = medium_env.unwrapped.maze
    navigation = D4RLNavigation(maze, np.random.default_rng(0))
    start = maze.cell_rowcol_to_xy(np.array([1, 1]))
    assert navigation.cell_of(start) == (1, 1)
    assert navigation.cell_of(start + np.array([3.9, -3.9])) == (
        1,
        1,
    )  # half a cell off the maze's own cells: still D4RL's (1, 1)
    assert navigation.cell_of(start + np.array([4.1, -8.1])) == (3, 2)  # rows run toward -y (the mirror)
    assert maze.cell_xy_to_rowcol(start + np.array([3.9, -3.9])).tolist() == [2, 2]
    goal = maze.cell_rowcol_to_xy(np.array([6, 6]))
    targets = np.array([navigation(start, goal) for _ in range(20)])
    np.testing.assert_allclose(np.linalg.norm(targets - start, axis=1), D4RL_AIM_DISTANCE)
    assert len(np.unique(targets.round(6), axis=0)) == 20  # the waypoint's jitter is drawn at every step
    # From (1, 1) the shortest path to (6, 6) goes through (1, 2) (row 1), or (2, 1): the direction points into one.
    directions = (targets - start) / D4RL_AIM_DISTANCE
    assert np.all((directions[:, 0] > 0.5) | (directions[:, 1] < -0.5))
    next_to_goal = maze.cell_rowcol_to_xy(np.array([6, 5]))
    np.testing.assert_allclose(
        navigation(next_to_goal, goal), next_to_goal + (goal - next_to_goal) / np.linalg.norm(goal - next_to_goal) * 10
    )


def test_d4rls_navigation_from_a_wall_cell_aims_at_its_open_neighbour_nearest_the_goal(medium_env):
    navigation = D4RLNavigation(medium_env.unwrapped.maze, np.random.default_rng(0))
    assert DATA_MAPS["medium"][3][1] == 1 and (3, 1) not in navigation.cells  # open neighbours (2, 1), (4, 1), (3, 2)
    assert navigation.next_cell((3, 1), (6, 6)) == (3, 2)
    assert navigation.next_cell((3, 1), (1, 1)) == (2, 1)
    assert navigation.next_cell((3, 1), (5, 1)) == (4, 1)
    assert navigation.next_cell((6, 6), (6, 6)) == (6, 6)


def test_the_data_versions_and_the_driving_ablation_have_their_own_ids():
    assert dataset_id("medium-play", version=1) == "sb3-iql/antmaze-d4rl/medium-play-v1"
    assert dataset_id("medium-play", version=1, driving="ours") == "sb3-iql/antmaze-d4rl-ours-driving/medium-play-v1"
    assert dataset_id("medium-play", version=0, driving="ours") == "sb3-iql/antmaze-d4rl/medium-play-v0"
    assert VERSIONS[0].driving == "ours" and not VERSIONS[0].sampled
    assert VERSIONS[1].driving == "d4rl" and VERSIONS[1].sampled
    with pytest.raises(ValueError, match="choose one of ours, d4rl"):
        dataset_id("medium-play", version=1, driving="fast")
    with pytest.raises(ValueError, match="v0 only"):
        dataset_id("medium-play", ant="gymnasium", version=1)
    with pytest.raises(ValueError, match="choose one of 0, 1"):
        dataset_id("medium-play", version=2)


def test_v1_data_drive_the_d4rl_ants_controller_d4rls_way_with_its_samples():
    dataset = build("antmaze-d4rl-umaze-v1", size=1200, progress=False, seed=3)
    assert dataset.spec.dataset_id == "sb3-iql/antmaze-d4rl/umaze-v1"
    assert (
        "D4RL's navigation" in dataset.storage.metadata["description"]
        and "samples of its tanh-Gaussian" in dataset.storage.metadata["description"]
    )
    assert sum(int(episode.rewards.sum()) for episode in dataset.iterate_episodes()) > 0  # the task's goal is reached
    ours = build("antmaze-d4rl-umaze-v1", size=300, progress=False, seed=3, driving="ours")
    assert ours.spec.dataset_id == "sb3-iql/antmaze-d4rl-ours-driving/umaze-v1"
    assert "kept until reached" in ours.storage.metadata["description"]
    v0 = build("antmaze-d4rl-umaze", size=300, progress=False, seed=3)
    assert "its mean action" in v0.storage.metadata["description"] and v0.spec.dataset_id.endswith("umaze-v0")
