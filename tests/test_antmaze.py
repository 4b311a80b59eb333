"""AntMaze data built here: the shipped goal-reaching ant, and datasets in Minari's D4RL/antmaze-v1 format."""

import gymnasium as gym
import numpy as np
import pytest

from sb3_iql import IQL
from sb3_iql.datasets.ant_controller import AntController, controller_features, heading, make_training_env
from sb3_iql.datasets.antmaze import EVAL_MAPS, build_antmaze


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
    start = np.linalg.norm(env.unwrapped.ant_env.data.qpos[:2] - env.target)
    for _ in range(200):
        features, _, terminated, truncated, info = env.step(controller(features))
        if terminated or truncated:
            break
    final = np.linalg.norm(env.unwrapped.ant_env.data.qpos[:2] - env.target)
    assert start >= 2.0 and final < 0.5 and info["reached"]


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
