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
from sb3_iql.datasets.antmaze_d4rl import TASKS, dataset_id, make_collection_env, relabel_goal
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
