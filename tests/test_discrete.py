"""IQL on Discrete actions: the same update (checked against a plain transcription), the same API, the same checks."""

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch as th
from conftest import small_iql
from minari.data_collector.episode_buffer import EpisodeBuffer
from stable_baselines3 import DQN
from test_update import assert_step_matches_reference, make_model

from sb3_iql import IQL
from sb3_iql.datasets.discrete import build_discrete, cartpole_good


def discrete_q_values(critic, obs, actions) -> list[th.Tensor]:
    """Each critic's Q(s, .) from its layers, read at the dataset action by indexing."""
    all_q = critic.q_networks(obs)
    index = actions.long().squeeze(-1)
    return [all_q[i][th.arange(len(index)), index] for i in range(len(all_q))]


def categorical_log_prob(actor, obs, actions) -> th.Tensor:
    """torch's Categorical log-prob of the dataset action under the actor's logits."""
    return th.distributions.Categorical(logits=actor.logits(actor.latent_pi(obs))).log_prob(actions.long().squeeze(-1))


@pytest.mark.parametrize("compile_update", [False, True], ids=["eager", "compiled"])
def test_the_discrete_update_matches_a_plain_transcription(compile_update):
    model = make_model(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), compile_update, gym.spaces.Discrete(4))
    assert_step_matches_reference(model, discrete_q_values, categorical_log_prob)


@pytest.fixture
def cartpole_dataset() -> minari.MinariDataset:
    return build_discrete("cartpole", n_transitions=2000)


def test_discrete_offline_online_save_load(cartpole_dataset, tmp_path):
    env = gym.make("CartPole-v1")
    model = small_iql(env)
    model.learn_offline(cartpole_dataset, 20)
    assert set(model.replay_buffer.actions[:2000].unique().tolist()) <= {0.0, 1.0}
    model.learn(50)
    observations = np.stack([env.observation_space.sample() for _ in range(8)])
    actions, _ = model.predict(observations, deterministic=True)
    assert actions.shape == (8,) and set(actions.tolist()) <= {0, 1}
    model.save(tmp_path / "iql")
    loaded = IQL.load(tmp_path / "iql", env=env, device="cpu")
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], actions)
    np.testing.assert_array_equal(loaded.predict_value(observations), model.predict_value(observations))


def test_deterministic_prediction_takes_the_most_likely_action(cartpole_dataset):
    model = small_iql(None)
    model.learn_offline(cartpole_dataset, 5)
    observations = th.as_tensor(np.random.default_rng(0).normal(size=(16, 4)), dtype=th.float32)
    with th.no_grad():
        expected = model.actor.log_probs(observations).argmax(-1).numpy()
    np.testing.assert_array_equal(model.predict(observations.numpy(), deterministic=True)[0], expected)


def test_discrete_arrays_and_a_dqn_replay_buffer_load():
    env = gym.make("CartPole-v1", max_episode_steps=30)
    dqn = DQN("MlpPolicy", env, learning_starts=1000, buffer_size=500, device="cpu", policy_kwargs={"net_arch": [16]})
    dqn.learn(120)
    model = small_iql(env)
    model.learn_offline(dqn.replay_buffer, 5)
    arrays = {
        "observations": np.zeros((10, 4), np.float32),
        "actions": np.array([0, 1] * 5),
        "rewards": np.ones(10, np.float32),
        "terminals": np.eye(10)[9] > 0,
        "timeouts": np.zeros(10, bool),
    }
    model.learn_offline(arrays, 2)  # the model's Discrete space is given to the arrays
    assert model.replay_buffer.size() == 120 + 10


def test_a_box_dataset_for_a_discrete_model_and_the_reverse_are_clear_errors(cartpole_dataset):
    box_arrays = {
        "observations": np.zeros((10, 4), np.float32),
        "actions": np.zeros((10, 1), np.float32),
        "rewards": np.ones(10, np.float32),
        "terminals": np.zeros(10, bool),
        "timeouts": np.eye(10)[9] > 0,
    }
    with pytest.raises(ValueError, match=r"has Box actions .* but the model Discrete ones"):
        small_iql(gym.make("CartPole-v1")).learn_offline(box_arrays, 2)
    box_model = small_iql(None)
    box_model.load_dataset(box_arrays)
    with pytest.raises(ValueError, match=r"has Discrete actions .* but the model Box ones"):
        box_model.learn_offline(cartpole_dataset, 2)


def test_actions_that_are_not_indices_are_a_clear_error_before_the_model_changes():
    arrays = {
        "observations": np.zeros((6, 4), np.float32),
        "actions": np.array([0, 1, 2, 1, 0, 1]),  # 2 is no CartPole action
        "rewards": np.ones(6, np.float32),
        "terminals": np.zeros(6, bool),
        "timeouts": np.eye(6)[5] > 0,
    }
    model = small_iql(gym.make("CartPole-v1"))
    before = {name: tensor.clone() for name, tensor in model.policy.state_dict().items()}
    with pytest.raises(ValueError, match=r"not indices of Discrete\(2\) \(first at transition 2"):
        model.learn_offline(arrays, 2)
    assert all(th.equal(tensor, before[name]) for name, tensor in model.policy.state_dict().items())


class TinyImages(gym.Env):
    """A 36x36 grey image whose bright column tells which of 3 actions is rewarded; episodes of 5 steps."""

    observation_space = gym.spaces.Box(0, 255, (1, 36, 36), np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._image(), {}

    def _image(self):
        self.target = int(self.np_random.integers(3))
        image = np.zeros((1, 36, 36), np.uint8)
        image[0, :, 12 * self.target : 12 * self.target + 12] = 255
        return image

    def step(self, action):
        reward = float(action == self.target)
        self.t += 1
        return self._image(), reward, False, self.t >= 5, {}


def test_cnn_policy_trains_end_to_end_on_images():
    env = TinyImages()
    episodes = []
    for seed in range(6):
        observation, _ = env.reset(seed=seed)
        observations, actions, rewards = [observation], [], []
        for _ in range(5):
            action = int(env.np_random.integers(3))
            observation, reward, *_ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
        episodes.append(
            EpisodeBuffer(
                observations=np.stack(observations), actions=np.array(actions), rewards=np.array(rewards),
                terminations=np.zeros(5, bool), truncations=np.eye(5)[4] > 0,
            )
        )  # fmt: skip
    dataset = minari.create_dataset_from_buffers("tests/images-v0", episodes, env=env)
    model = IQL("CnnPolicy", env, batch_size=8, buffer_size=100, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})
    model.learn_offline(dataset, 3)
    model.learn(10)
    assert env.action_space.contains(int(model.predict(env.reset(seed=0)[0], deterministic=True)[0]))


def test_the_cartpole_recipe_mixes_a_good_and_a_bad_controller(cartpole_dataset):
    episodes = list(cartpole_dataset.iterate_episodes())
    assert sum(len(episode.actions) for episode in episodes) == 2000
    # The first half is the good controller's (with 10% random actions): it mostly agrees with the controller.
    first = episodes[0]
    agreement = np.mean([cartpole_good(obs) == action for obs, action in zip(first.observations, first.actions)])
    assert agreement > 0.8
    assert np.mean(episodes[-1].actions == 0) > 0.8  # the bad one pushes left
