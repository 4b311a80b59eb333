"""The dataset builders: small versions of each, checked for shapes, scores, rewards and use by IQL."""

import gymnasium as gym
import h5py
import minari
import numpy as np
import pytest
from conftest import needs_shared, rollout_episodes
from minari.storage import get_dataset_path

from sb3_iql import IQL
from sb3_iql.data.readers import dataset_transitions
from sb3_iql.data.scores import normalized_score
from sb3_iql.datasets import __main__ as cli
from sb3_iql.datasets import build
from sb3_iql.datasets.adroit import (
    D4RL_EPISODE_STEPS,
    D4RL_REF_SCORES,
    DOOR_HUMAN_DEMOS_FILE,
    DOOR_HUMAN_FILE,
    PEN_BINARY_DEMOS_FILE,
    binary_dataset_id,
    dapg_policy_file,
    door_binary_demos,
    door_open_rewards,
    door_replay_error,
    load_expert,
    make_binary_env,
)
from sb3_iql.datasets.maze import MAZES
from sb3_iql.datasets.recording import shared_data_dir, write_dataset


def ref_scores(dataset: minari.MinariDataset) -> tuple[float, float]:
    return dataset.storage.metadata["ref_min_score"], dataset.storage.metadata["ref_max_score"]


def assert_learnable(dataset: minari.MinariDataset, policy: str = "MlpPolicy") -> None:
    model = IQL(policy, None, batch_size=32, device="cpu")
    model.learn_offline(dataset, total_timesteps=3)
    assert model.replay_buffer.size() == dataset.total_steps


def test_door_human_converts_the_d4rl_file():
    needs_shared(DOOR_HUMAN_FILE)
    dataset = build("door-human")
    assert dataset.spec.dataset_id == "sb3-iql/door/human-v0"
    assert (dataset.total_episodes, dataset.total_steps) == (50, 6729)
    assert ref_scores(dataset) == pytest.approx(D4RL_REF_SCORES["door"])
    transitions = dataset_transitions(dataset)
    assert transitions.observations.shape == (6729, 39) and transitions.actions.shape == (6729, 28)
    with h5py.File(shared_data_dir() / DOOR_HUMAN_FILE) as file:
        np.testing.assert_allclose(transitions.rewards, file["rewards"][()])
        assert int((transitions.dones & ~transitions.timeouts).sum()) == int(file["terminals"][()].sum()) == 25
    # Per 300-step demo, the data scores ~29 (README of the shared data).
    per_demo = normalized_score(dataset, np.array([transitions.rewards.sum() / 25]))
    assert per_demo[0] == pytest.approx(29.0, abs=0.1)
    env = dataset.recover_environment(eval_env=True)
    assert env.spec.id == "AdroitHandDoor-v1" and env.spec.max_episode_steps == 200
    assert_learnable(dataset)


def test_door_human_rejects_a_wrong_file(tmp_path):
    wrong = tmp_path / "wrong.hdf5"
    with h5py.File(wrong, "w") as file:
        file["observations"] = np.zeros((10, 45), np.float32)
    with pytest.raises(ValueError, match="lacks"):
        build("door-human", source=wrong)
    with pytest.raises(FileNotFoundError, match="--source"):
        build("door-human", source=tmp_path / "missing.hdf5")
    assert not get_dataset_path("sb3-iql/door/human-v0").exists()


def test_door_replay_stays_close_to_the_demos():
    needs_shared(DOOR_HUMAN_DEMOS_FILE)
    result = door_replay_error(n_demos=2)
    assert result["error_after_1"] < 0.05
    assert result["replay_return"] == pytest.approx(result["demo_return"], rel=0.2)


def assert_binary(dataset: minari.MinariDataset, task: str, episode_steps: int, n_episodes: int) -> None:
    assert dataset.spec.dataset_id == binary_dataset_id(task)
    assert dataset.total_episodes == n_episodes
    episodes = list(dataset.iterate_episodes())
    assert max(len(episode.actions) for episode in episodes) == episode_steps
    assert all(episode.truncations[-1] for episode in episodes)
    rewards = np.concatenate([episode.rewards for episode in episodes])
    assert set(np.unique(rewards)) <= {-1.0, 0.0}
    # The published scale: 100 * (return + T) / T.
    assert ref_scores(dataset) == (-episode_steps, 0.0)
    hand_made_returns = np.array([-episode_steps, -episode_steps + 37, 0.0])
    np.testing.assert_allclose(
        normalized_score(dataset, hand_made_returns), 100 * (hand_made_returns + episode_steps) / episode_steps
    )
    env = dataset.recover_environment(eval_env=True)
    assert env.spec.max_episode_steps == episode_steps
    env.reset(seed=0)
    steps = 0
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert reward == (0.0 if info["success"] else -1.0)
        if terminated or truncated:
            break
    assert steps == episode_steps and truncated, "the env stops at the published limit"
    assert_learnable(dataset)


def test_pen_binary_follows_awac():
    needs_shared(PEN_BINARY_DEMOS_FILE)
    dataset = build("pen-binary", size=2, bc_steps=20, n_demos=25)
    # The 25 demonstrations of 199 steps are cut at pen-binary's 100-step limit: 50 pieces, every step kept.
    assert_binary(dataset, "pen", episode_steps=100, n_episodes=52)
    assert sum(len(episode.actions) for episode in list(dataset.iterate_episodes())[:50]) == 25 * 199


def test_relocate_binary_from_the_dapg_expert():
    needs_shared(dapg_policy_file("relocate"))
    dataset = build("relocate-binary", size=1, bc_steps=20, n_demos=2)
    assert_binary(dataset, "relocate", episode_steps=200, n_episodes=3)
    # The expert demonstrations succeed, so they reach reward 0.
    assert max(episode.rewards.max() for episode in list(dataset.iterate_episodes())[:2]) == 0.0


def test_door_binary_takes_the_human_demos_awac_took():
    needs_shared(DOOR_HUMAN_FILE)
    demos = door_binary_demos()
    # door-human's 25 demos of 223-300 steps, cut at the 200-step limit: 50 pieces, all 6,729 steps.
    assert len(demos) == 50 and sum(len(piece.actions) for piece in demos) == 6729
    assert not any(piece.terminations.any() for piece in demos) and all(piece.truncations[-1] for piece in demos)
    # Only 8 of the 25 people opened the door to the solved angle: the data AWAC's BC rollouts learned from.
    solved = [piece.rewards.max() == 0.0 for piece in demos]
    assert sum(first or rest for first, rest in zip(solved[0::2], solved[1::2])) == 8
    dataset = build("door-binary", size=1, bc_steps=20, n_demos=2)
    assert_binary(dataset, "door", episode_steps=200, n_episodes=5)
    assert [len(episode.actions) for episode in list(dataset.iterate_episodes())[:4]] == [len(p.actions) for p in demos[:4]]


def test_door_success_rule_on_observations_is_the_envs():
    needs_shared(dapg_policy_file("door"))
    env = make_binary_env("door")
    [episode] = rollout_episodes(env, 1, load_expert("door", deterministic=True))
    np.testing.assert_array_equal(episode.rewards, door_open_rewards(np.asarray(episode.observations)[1:]))
    assert episode.rewards.max() == 0.0 and episode.rewards.min() == -1.0  # the expert opens the door, not at once


@pytest.mark.parametrize("task", ["pen", "door", "hammer", "relocate"])
def test_expert_rollouts_score_like_the_expert(task):
    needs_shared(dapg_policy_file(task))
    dataset = build(f"{task}-expert", size=2)
    assert (dataset.total_episodes, dataset.total_steps) == (2, 2 * D4RL_EPISODE_STEPS[task])
    assert ref_scores(dataset) == pytest.approx(D4RL_REF_SCORES[task])
    assert dataset.recover_environment(eval_env=True).spec.max_episode_steps == D4RL_EPISODE_STEPS[task]
    # D4RL's expert sets score about 100; two sampled episodes stay well above a random policy's 0.
    assert normalized_score(dataset, dataset_transitions(dataset).episode_returns).mean() > 50
    assert_learnable(dataset)


def test_expert_rejects_another_tasks_policy():
    needs_shared(dapg_policy_file("pen"))
    with pytest.raises(ValueError, match="is it the door policy"):
        build("door-expert", size=1, source=shared_data_dir() / dapg_policy_file("pen"))


def test_pointmaze_stitching_data():
    dataset = build("pointmaze-umaze-diverse", size=3000)
    assert dataset.spec.dataset_id == "sb3-iql/pointmaze/umaze-diverse-v0"
    assert dataset.total_steps == 3000
    assert ref_scores(dataset) == (0.0, 1.0)
    goal = dataset.recover_environment().unwrapped.maze.cell_rowcol_to_xy(np.array(MAZES["umaze"]["goal"]))
    for episode in dataset.iterate_episodes():
        assert episode.observations["observation"].shape == (len(episode.actions) + 1, 4)
        assert set(np.unique(episode.rewards)) <= {0.0, 1.0}
        # Sparse reward at the fixed goal, which ends the episode.
        np.testing.assert_array_equal(episode.rewards > 0, episode.terminations)
        assert np.ptp(episode.observations["desired_goal"], axis=0).max() == 0
        assert np.linalg.norm(episode.observations["desired_goal"][0] - goal) < 0.5
    env = dataset.recover_environment(eval_env=True)
    assert env.spec.max_episode_steps == 300 and not env.unwrapped.continuing_task
    assert_learnable(dataset, "MultiInputPolicy")


def test_locomotion_levels():
    datasets = build("hopper", size=200, train_steps=200)
    assert set(datasets) == {"random", "medium", "medium-replay", "expert", "medium-expert"}
    for dataset in datasets.values():
        assert ref_scores(dataset) == pytest.approx((-20.272305, 3234.3))
        assert dataset.observation_space.shape == (11,)
    assert datasets["medium-expert"].total_steps == datasets["medium"].total_steps + datasets["expert"].total_steps == 400
    assert 0 < datasets["medium-replay"].total_steps <= 200
    assert_learnable(datasets["medium-expert"])


def test_writes_check_episodes_and_leave_nothing_half_done(pendulum_dataset):
    episodes = rollout_episodes(gym.make("Pendulum-v1", max_episode_steps=5), 2)
    with pytest.raises(ValueError, match="observations have shape"):
        # 3-d Pendulum observations against MountainCar's 2-d space
        write_dataset("tests/broken-v0", episodes, gym.make("MountainCarContinuous-v0"), 0.0, 1.0, "broken", "none")
    assert not get_dataset_path("tests/broken-v0").exists()
    with pytest.raises(FileExistsError, match="overwrite"):
        write_dataset("tests/pendulum/random-v0", episodes, gym.make("Pendulum-v1"), 0.0, 1.0, "again", "none")
    assert pendulum_dataset.total_episodes == minari.load_dataset("tests/pendulum/random-v0").total_episodes == 8
    write_dataset("tests/pendulum/random-v0", episodes, gym.make("Pendulum-v1"), 0.0, 1.0, "again", "none", overwrite=True)
    assert minari.load_dataset("tests/pendulum/random-v0").total_episodes == 2
    assert not any(path.name.startswith(".sb3-iql-build") for path in get_dataset_path().iterdir())


def test_cli_builds_and_rejects_bad_arguments(capsys):
    cli.main(["build", "pointmaze-medium-play", "--size", "500"])
    assert "sb3-iql/pointmaze/medium-play-v0: " in capsys.readouterr().out
    assert minari.load_dataset("sb3-iql/pointmaze/medium-play-v0").total_steps == 500
    with pytest.raises(ValueError, match="takes no size"):
        build("door-human", size=3)
    with pytest.raises(TypeError, match="does not take"):
        build("pointmaze-umaze-play", bc_steps=3)
    with pytest.raises(KeyError, match="Unknown dataset recipe"):
        build("antmaze-hard")


def test_console_entry_point_dispatches_and_explains(capsys):
    from sb3_iql import cli

    cli.main(["datasets", "list"])
    out = capsys.readouterr().out
    assert "antmaze-umaze" in out and "sb3-iql/antmaze/umaze-v1" in out
    cli.main([])
    assert "sb3-iql finetune" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown command 'train'"):
        cli.main(["train"])
