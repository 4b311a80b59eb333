"""AntMaze data built here: the shipped goal-reaching ant, and datasets in Minari's D4RL/antmaze-v1 format."""

import gymnasium as gym
import numpy as np
import pytest

from sb3_iql import IQL, IQLEvalCallback
from sb3_iql.data.goals import goal_segments
from sb3_iql.data.readers import dataset_transitions
from sb3_iql.datasets.ant_controller import (
    DATA_ACTION_GAIN,
    DATA_ACTION_NOISE,
    PPO_OPTIONS,
    SAC_CONTROLLER,
    AntController,
    controller_features,
    export_controller,
    fell_over,
    finetune_controller,
    heading,
    make_maze_training_env,
    make_training_env,
    train_controller,
)
from sb3_iql.datasets.antmaze import WaypointAnt, build_antmaze, planner_success
from sb3_iql.tasks.antmaze import EVAL_MAPS, UMAZE_DATA_MAP, evaluation_goal, paper_eval_env


def quaternion_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def test_controller_features_do_not_depend_on_the_heading():
    rng = np.random.default_rng(0)
    tilt = np.array([0.98, 0.1, -0.15, 0.0]) / np.linalg.norm([0.98, 0.1, -0.15, 0.0])
    state, position, offset = rng.normal(size=27), np.array([1.0, 2.0]), np.array([2.0, -3.0])
    features = []
    for yaw in (0.0, 1.0, 2.5, -2.0):
        rotation = np.array([[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]])
        turned = state.copy()
        turned[1:5] = quaternion_product(np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]), tilt)
        turned[13:15] = rotation @ state[13:15]
        assert heading(turned[1:5]) == pytest.approx(heading(tilt) + yaw)
        features.append(controller_features(turned, position, position + rotation @ offset))
    np.testing.assert_allclose(features, [features[0]] * 4, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_shipped_controller_walks_to_a_nearby_target(seed):
    controller = AntController.load()
    env = make_training_env(max_episode_steps=200, target_distance=(2.0, 3.0), continuing=False)
    features, _ = env.reset(seed=seed)
    start = np.linalg.norm(env.unwrapped.ant_env.data.qpos[:2] - env.target())
    for _ in range(200):
        features, _, terminated, truncated, info = env.step(controller(features))
        if terminated or truncated:
            break
    final = np.linalg.norm(env.unwrapped.ant_env.data.qpos[:2] - env.target())
    assert start >= 2.0 and final < 0.5 and info["reached"]


def test_training_noise_moves_the_ant_off_its_commanded_path():
    paths = {}
    for noise in (0.0, 0.2):
        env = make_training_env(max_episode_steps=50, action_noise=noise)
        env.reset(seed=0)
        for _ in range(20):
            env.step(np.zeros(8, dtype=np.float32))
        paths[noise] = env.unwrapped.ant_env.data.qpos.copy()
    repeat = make_training_env(max_episode_steps=50, action_noise=0.0)
    repeat.reset(seed=0)
    for _ in range(20):
        repeat.step(np.zeros(8, dtype=np.float32))
    np.testing.assert_array_equal(repeat.unwrapped.ant_env.data.qpos, paths[0.0])
    assert np.abs(paths[0.2] - paths[0.0]).max() > 1e-3


def test_a_fall_ends_the_episode_and_costs_the_penalty():
    rewards = {}
    for fall_penalty in (0.0, 100.0):
        env = make_training_env(max_episode_steps=50, fall_penalty=fall_penalty)
        env.reset(seed=0)
        ant = env.unwrapped.ant_env
        upside_down = ant.data.qpos.copy()
        upside_down[3:7] = [0.0, 1.0, 0.0, 0.0]  # a half turn about x: on its back
        ant.set_state(upside_down, np.zeros_like(ant.data.qvel))
        _, reward, terminated, _, _ = env.step(np.zeros(8, dtype=np.float32))
        assert terminated and fell_over(env.unwrapped.ant_env.state_vector()[2:29])
        rewards[fall_penalty] = reward
    assert rewards[100.0] == pytest.approx(rewards[0.0] - 100.0)


def test_planner_success_measures_the_paper_task_with_the_data_noise():
    result = planner_success("umaze", AntController.load(), n_episodes=2, noise=0.0)
    assert set(result) == {"success_rate", "fell_over", "mean_steps", "median_steps"}
    # Noise-free, the shipped ant walks these two episodes from the evaluation start to the goal.
    assert result["success_rate"] == 1.0 and result["fell_over"] == 0.0 and result["mean_steps"] < 700


def test_a_missing_controller_file_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-ant"):
        AntController.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize(("name", "episode_steps", "maze"), [("umaze", 700, "umaze"), ("medium-diverse", 1000, "medium")])
def test_a_small_antmaze_dataset_has_minaris_format(name, episode_steps, maze):
    n_transitions = episode_steps + 150
    dataset = build_antmaze(name, n_transitions=n_transitions, reference_episodes=1, progress=False)
    assert dataset.spec.dataset_id == f"sb3-iql/antmaze/{name}-v1"
    space = dataset.observation_space
    assert {key: space[key].shape for key in space.spaces} == {
        "observation": (27,),
        "achieved_goal": (2,),
        "desired_goal": (2,),
    }
    assert all(space[key].dtype == np.float64 for key in space.spaces) and dataset.action_space.shape == (8,)
    episodes = list(dataset.iterate_episodes())
    assert [len(episode.actions) for episode in episodes] == [episode_steps, 150]
    for episode in episodes:
        assert not episode.terminations.any() and episode.truncations[-1] and not episode.truncations[:-1].any()
        assert set(episode.infos) == {"success", "qpos", "qvel", "goal"}
        assert episode.infos["qpos"].shape == (len(episode.actions) + 1, 15)
        assert episode.infos["qvel"].shape == (len(episode.actions) + 1, 14)
        # Continuing task, sparse reward: 1 within 0.45 of the (kept) goal, whatever came before.
        distance = np.linalg.norm(episode.observations["achieved_goal"][1:] - episode.observations["desired_goal"][1:], axis=1)
        np.testing.assert_array_equal(episode.rewards, (distance <= 0.45).astype(float))
        assert np.all(episode.observations["desired_goal"] == episode.observations["desired_goal"][0])
    metadata = dataset.storage.metadata
    assert metadata["ref_min_score"] <= metadata["ref_max_score"]
    collection = dataset.recover_environment()
    assert collection.spec.kwargs["continuing_task"] and not collection.spec.kwargs["reset_target"]
    evaluation = dataset.recover_environment(eval_env=True)
    assert evaluation.spec.kwargs["maze_map"] == EVAL_MAPS[maze] and evaluation.spec.max_episode_steps == episode_steps
    model = IQL("MultiInputPolicy", None, batch_size=32, policy_kwargs={"net_arch": [32]}, device="cpu")
    model.learn_offline(dataset, 2)
    assert set(model.observation_space.spaces) == {"observation", "achieved_goal", "desired_goal"}


def test_an_unknown_antmaze_name_is_a_clear_error():
    with pytest.raises(ValueError, match="umaze-diverse"):
        build_antmaze("umaze-hard", n_transitions=10)
    assert gym.spec("AntMaze_UMaze-v4") is not None


# -- the paper's task semantics on continuing AntMaze data ----------------------------------------
@pytest.mark.parametrize(
    ("reached", "segments"),
    [
        ([0, 0, 0, 0], [(0, 3, False)]),  # never reaches: untouched
        ([0, 0, 1, 1, 1, 1], [(0, 2, True)]),  # reaches at step 2 and stays: the rest is dropped
        ([0, 1, 1, 0, 0, 0, 1, 1], [(0, 1, True), (4, 6, True)]),  # leaves again: a new episode from outside
        ([1, 0, 0], [(0, 0, True), (2, 2, False)]),
    ],
)
def test_goal_segments_cut_at_each_reach(reached, segments):
    assert goal_segments(np.array(reached, dtype=bool)) == segments


def test_paper_semantics_terminate_at_the_goal_and_drop_the_rest(umaze_dataset):
    recorded = dataset_transitions(umaze_dataset)
    transitions = dataset_transitions(umaze_dataset, "evaluation")
    assert recorded.rewards.sum() > 100  # as recorded, the ant collects reward 1 at the goal step after step
    ends = np.flatnonzero(transitions.dones)
    terminal = transitions.dones & ~transitions.timeouts
    # Reward 1 exactly at the terminal transitions, which end within the goal radius; nothing after them.
    np.testing.assert_array_equal(transitions.rewards == 1.0, terminal)
    distance = np.linalg.norm(
        transitions.next_observations["achieved_goal"] - transitions.next_observations["desired_goal"], axis=1
    )
    assert np.all(distance[terminal] <= 0.45) and np.all(distance[~terminal] > 0.45)
    assert terminal.sum() >= 1 and len(transitions) < len(recorded)
    assert ends[-1] == len(transitions) - 1
    # The evaluation goal is umaze's goal cell, written into every desired_goal.
    np.testing.assert_allclose(
        transitions.observations["desired_goal"], np.broadcast_to(evaluation_goal(umaze_dataset), (len(transitions), 2))
    )


def test_the_paper_eval_env_ends_at_the_goal_and_scores_success(umaze_dataset):
    env = paper_eval_env(umaze_dataset)
    assert env.spec.max_episode_steps == 700 and not env.spec.kwargs["continuing_task"]
    # The paper's umaze: the data's maze, from its start to its goal (Minari's recorded map is the mirror image).
    assert env.unwrapped.maze.maze_map == UMAZE_DATA_MAP
    driver = WaypointAnt(env, AntController.load(), noise=0.0, rng=np.random.default_rng(0))
    observation, _ = env.reset(seed=0)
    total, steps = 0.0, 0
    while True:
        observation, reward, terminated, truncated, info = env.step(driver(observation))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            break
    # The planner walks the ant to the goal, where the episode ends: return 1, the success that scores 100.
    assert terminated and info["success"] and total == 1.0 and steps < 700


def test_a_tiny_antmaze_run_offline_online_save_load(umaze_dataset, tmp_path):
    hyperparameters = IQL.paper_hyperparameters("antmaze_finetune")
    hyperparameters.update(batch_size=32, policy_kwargs={"net_arch": [32, 32]}, buffer_size=5000)
    model = IQL(
        "MultiInputPolicy", paper_eval_env(umaze_dataset, max_episode_steps=30), seed=0, device="cpu", **hyperparameters
    )
    evaluations = IQLEvalCallback(
        paper_eval_env(umaze_dataset, max_episode_steps=20), n_eval_episodes=2, eval_freq=20, score_success=True
    )
    model.learn_offline(umaze_dataset, 20, callback=evaluations)
    assert evaluations.evaluations[-1]["normalized_score"] == 100 * evaluations.evaluations[-1]["success_rate"]
    n_offline = model.replay_buffer.size()
    model.learn(60)
    assert model.replay_buffer.size() == n_offline + 60
    # Online rows come from the terminating maze: the time limit is a truncation there, never a termination.
    online = slice(n_offline, n_offline + 60)
    assert model.replay_buffer.dones[online].sum() == model.replay_buffer.timeouts[online].sum() == 2
    model.save(tmp_path / "iql")
    loaded = IQL.load(tmp_path / "iql", device="cpu")
    observation, _ = paper_eval_env(umaze_dataset).reset(seed=3)
    np.testing.assert_array_equal(
        model.predict(observation, deterministic=True)[0], loaded.predict(observation, deterministic=True)[0]
    )
    assert loaded.goal_semantics == "episode"


def test_train_ant_from_the_shell_builds_its_training_env_and_exports(tmp_path, capsys):
    from sb3_iql.datasets.__main__ import main

    output = tmp_path / "controller.npz"
    main(["train-ant", "--steps", "0", "--workdir", str(tmp_path / "run"), "--noise", "0.1", "--output", str(output)])
    assert "controller written to" in capsys.readouterr().out
    assert AntController.load(output)(np.zeros(30, dtype=np.float32)).shape == (8,)


def test_the_exported_controller_keeps_sacs_gaussian_head_and_samples_as_sac_acts(tmp_path):
    import torch as th
    from stable_baselines3 import SAC

    model = SAC("MlpPolicy", make_training_env(ant="d4rl", action_noise=0.0, fall_penalty=0.0), seed=0, device="cpu")
    export_controller(model, tmp_path / "controller.npz")
    controller = AntController.load(tmp_path / "controller.npz")
    assert controller.stochastic
    features = np.random.default_rng(0).normal(size=(4, 30)).astype(np.float32)
    with th.no_grad():
        mean, log_std, _ = model.actor.get_action_dist_params(th.as_tensor(features))
    noise = np.random.default_rng(1).standard_normal((4, 8))
    expected = np.tanh(mean.numpy() + np.exp(log_std.numpy()) * noise)
    np.testing.assert_allclose(controller.sample(features, np.random.default_rng(1)), expected, atol=1e-5)
    np.testing.assert_allclose(controller(features), np.tanh(mean.numpy()), atol=1e-5)
    assert not np.allclose(controller.sample(features, np.random.default_rng(2)), controller(features), atol=1e-3)
    with pytest.raises(ValueError, match="no log_std head"):
        AntController.load(SAC_CONTROLLER).sample(features, np.random.default_rng(0))


def test_the_maze_training_env_walks_the_planners_waypoints_and_ends_on_a_tilt():
    env = make_maze_training_env("AntMaze_UMaze-v4", max_episode_steps=50, min_torso_up=0.5, fall_penalty=100.0)
    env.reset(seed=3)
    position, goal = env.unwrapped.ant_env.data.qpos[:2], env.unwrapped.goal
    planner = env.waypoints
    goal_cell, cell = planner.cell_of(goal), planner.cell_of(position)
    expected = planner.next_cell_toward(goal_cell).get(cell, goal_cell)
    if expected != goal_cell:  # the target is the next cell's (jittered) centre on the shortest path
        assert np.linalg.norm(env.target() - planner.maze.cell_rowcol_to_xy(np.array(expected))) <= 0.3
    ant = env.unwrapped.ant_env
    tilted = ant.data.qpos.copy()
    tilted[3:7] = [np.cos(0.72), np.sin(0.72), 0.0, 0.0]  # 82 degrees about x: upright by fell_over, a fall here
    ant.set_state(tilted, np.zeros_like(ant.data.qvel))
    _, reward, terminated, _, _ = env.step(np.zeros(8, dtype=np.float32))
    assert terminated and reward < -50.0
    assert not fell_over(ant.state_vector()[2:29])


def test_a_warm_start_copies_the_controller_into_sac_and_freezes_its_actor(tmp_path):
    main = __import__("sb3_iql.datasets.__main__", fromlist=["main"]).main
    main(
        ["train-ant", "--steps", "300", "--checkpoint-every", "300", "--workdir", str(tmp_path / "run"), "--maze",
         "AntMaze_UMaze-v4", "--warm-start", str(SAC_CONTROLLER), "--output", str(tmp_path / "out.npz")]
    )  # fmt: skip
    features = np.random.default_rng(0).normal(size=(5, 30)).astype(np.float32)
    np.testing.assert_allclose(
        AntController.load(tmp_path / "out.npz")(features), AntController.load(SAC_CONTROLLER)(features), atol=1e-6
    )


def test_the_action_gain_scales_the_controllers_actions_and_the_recipe_uses_the_datas():
    features = np.random.default_rng(0).normal(size=(4, 30)).astype(np.float32)
    np.testing.assert_allclose(AntController.load(gain=0.5)(features), 0.5 * AntController.load()(features), rtol=1e-6)
    with pytest.raises(ValueError, match=r"gain must be in \(0, 1\]"):
        AntController.load(gain=1.5)
    dataset = build_antmaze("umaze", n_transitions=30, reference_episodes=1, progress=False)
    assert f"scaled by {DATA_ACTION_GAIN})" in dataset.storage.metadata["description"]


def test_the_shipped_controller_is_the_ppo_stage_on_top_of_the_shipped_sac_stage():
    shipped, sac_stage = AntController.load(), AntController.load(SAC_CONTROLLER)
    assert shipped.action_scale == pytest.approx(PPO_OPTIONS["action_scale"])
    assert sac_stage.action_scale == 1.0
    assert [weight.shape for weight, _ in shipped.layers] == [weight.shape for weight, _ in sac_stage.layers]


def test_ppo_finetuning_starts_from_the_controller_acts_with_the_datas_noise_and_resumes(tmp_path):
    from stable_baselines3 import PPO

    options = {"mazes": ("AntMaze_UMaze-v4",), "envs_per_maze": 2, "n_steps": 32, "checkpoint_every": 64, "action_scale": 0.6}
    output = tmp_path / "out.npz"
    finetune_controller(tmp_path / "run", total_steps=64, output=output, actor_frozen_steps=128, **options)
    features = np.random.default_rng(0).normal(size=(5, 30)).astype(np.float32)
    gentle = AntController.load(SAC_CONTROLLER, gain=0.6)(features)  # the default warm start, at the run's scale
    # Frozen actor: the exported controller is the warm start at the action scale, exactly, and says its scale.
    np.testing.assert_allclose(AntController.load(output)(features), gentle, atol=1e-6)
    assert AntController.load(output).action_scale == pytest.approx(0.6)
    model = PPO.load(tmp_path / "run" / "ppo_64_steps.zip", device="cpu")
    distribution = model.policy.get_distribution(model.policy.obs_to_tensor(features)[0])
    np.testing.assert_allclose(distribution.distribution.mean.detach().numpy(), gentle, atol=1e-5)
    np.testing.assert_allclose(distribution.distribution.stddev.detach().numpy(), DATA_ACTION_NOISE, rtol=1e-5)
    # Resumed past the frozen steps, the actor moves.
    finetune_controller(tmp_path / "run", total_steps=192, output=output, actor_frozen_steps=128, **options)
    assert (tmp_path / "run" / "ppo_192_steps.zip").is_file()
    # Every checkpoint's actor stays as a controller file; the last one is the output.
    np.testing.assert_array_equal(
        AntController.load(tmp_path / "run" / "controller_192.npz")(features), AntController.load(output)(features)
    )
    assert not np.allclose(AntController.load(output)(features), gentle, atol=1e-6)
    # SAC cannot take a scaled controller as its warm start.
    with pytest.raises(ValueError, match="--ppo"):
        train_controller(tmp_path / "sac", total_steps=0, warm_start=output, maze_env_id="AntMaze_UMaze-v4")
