"""The algorithm: what IQL learns (expectiles, the extracted policy), its schedules and presets, SB3 training and evaluation."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import small_iql
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_iql import IQL, IQLEvalCallback
from sb3_iql.iql.iql import expectile_loss


def test_online_learning_starts_from_the_offline_policy(pendulum_dataset):
    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = small_iql(env)
    model.learn_offline(pendulum_dataset, total_timesteps=5)
    assert model.learning_starts == 0
    obs = model.env.reset()
    model._last_obs = obs
    th.manual_seed(0)
    _, buffer_action = model._sample_action(learning_starts=0, n_envs=1)
    th.manual_seed(0)
    expected = model.policy.actor(model.policy.obs_to_tensor(obs)[0], deterministic=False).detach().numpy()
    np.testing.assert_allclose(buffer_action, expected, rtol=1e-6)


def test_works_with_vec_env_and_evaluate_policy(pendulum_dataset):
    make = lambda: gym.make("Pendulum-v1", max_episode_steps=50)  # noqa: E731
    vec_env = DummyVecEnv([make] * 2)
    model = small_iql(vec_env)
    model.learn_offline(pendulum_dataset, total_timesteps=5)
    model.learn(40)
    assert model.replay_buffer.size() == 200 + 20  # SB3 counts rows of n_envs transitions
    vec_env.seed(5)
    returns, lengths = evaluate_policy(model, vec_env, n_eval_episodes=4, return_episode_rewards=True)
    # The same episodes played by hand with predict(): env i is seeded 5 + i, then plays two episodes.
    expected = []
    for index in range(2):
        env = make()
        obs, _ = env.reset(seed=5 + index)
        for _ in range(2):
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
                total, done = total + reward, terminated or truncated
            expected.append(total)
            obs, _ = env.reset()
    assert lengths == [50] * 4
    np.testing.assert_allclose(sorted(returns), sorted(expected), rtol=1e-5)


class SuccessEveryOtherEpisode(gym.Wrapper):
    """Reports ``info["success"]`` on the last step of every second episode: a success rate of exactly 0.5."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.episodes = 0

    def reset(self, **kwargs):
        self.episodes += 1
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["success"] = (terminated or truncated) and self.episodes % 2 == 0
        return obs, reward, terminated, truncated, info


def test_offline_eval_logs_normalized_score_and_success(pointmaze_dataset, tmp_path):
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=40)
    model = small_iql(env, policy="MultiInputPolicy", tensorboard_log=str(tmp_path))
    eval_callback = IQLEvalCallback(
        gym.make("PointMaze_UMaze-v3", max_episode_steps=40), pointmaze_dataset, eval_freq=10, n_eval_episodes=2
    )
    model.learn_offline(pointmaze_dataset, total_timesteps=20, callback=eval_callback)
    assert [e["timesteps"] for e in eval_callback.evaluations] == [10.0, 20.0]
    last = eval_callback.evaluations[-1]
    assert last["normalized_score"] == pytest.approx(100 * last["mean_reward"] / 40.0)
    assert "success_rate" in last  # PointMaze reports success; its value depends on the policy
    assert any(tmp_path.glob("IQL_offline_1/events.out.tfevents.*"))


def test_success_rate_counts_the_episodes_that_succeeded(pendulum_dataset):
    callback = IQLEvalCallback(
        SuccessEveryOtherEpisode(gym.make("Pendulum-v1", max_episode_steps=5)), eval_freq=5, n_eval_episodes=4
    )
    small_iql(None).learn_offline(pendulum_dataset, total_timesteps=5, callback=callback)
    assert callback.evaluations[-1]["success_rate"] == 0.5


def test_eval_env_from_dataset_and_progress_bar(pendulum_dataset, capsys):
    model = small_iql(None, verbose=1)
    model.learn_offline(
        pendulum_dataset,
        total_timesteps=20,
        eval_env="dataset",
        eval_freq=20,
        n_eval_episodes=1,
        log_interval=10,
        progress_bar=True,
    )
    out = capsys.readouterr().out
    assert "eval/" in out and "normalized_score" in out and "train/" in out and "value_loss" in out
    assert "20/20" in out  # the progress bar counted every gradient step


def test_cosine_actor_lr_decays_over_the_offline_steps(pendulum_dataset):
    model = small_iql(
        None, **{k: v for k, v in IQL.paper_hyperparameters("antmaze").items() if k not in ("policy_kwargs", "goal_semantics")}
    )
    model.learn_offline(pendulum_dataset, total_timesteps=10)
    # The last of 10 steps ran at 0.5 * (1 + cos(pi * 9 / 10)) of the base lr.
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4 * 0.5 * (1 + np.cos(np.pi * 0.9)))
    assert model.critic.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    constant = small_iql(None, actor_lr_schedule="constant")
    constant.learn_offline(pendulum_dataset, total_timesteps=10)
    assert constant.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)


@pytest.mark.parametrize("compile_update", [False, True])
def test_resumed_run_continues_the_cosine_decay(pendulum_dataset, tmp_path, compile_update):
    model = small_iql(None, compile_update=compile_update)
    model.learn_offline(pendulum_dataset, total_timesteps=4)
    model.save(tmp_path / "half")
    resumed = IQL.load(tmp_path / "half", device="cpu")
    assert resumed.num_timesteps == 4
    resumed.learn_offline(pendulum_dataset, total_timesteps=6, reset_num_timesteps=False)
    # Steps 5..10 of one 10-step run: the last ran at 0.5 * (1 + cos(pi * 9 / 10)) of the base lr.
    assert resumed.num_timesteps == 10
    lr = float(resumed.actor.optimizer.param_groups[0]["lr"])
    assert lr == pytest.approx(3e-4 * 0.5 * (1 + np.cos(np.pi * 0.9)))


def test_reward_preprocessing(pendulum_dataset):
    returns = [ep.rewards.sum() for ep in pendulum_dataset.iterate_episodes()]
    locomotion = small_iql(None, reward_scale="return_range")
    locomotion.learn_offline(pendulum_dataset, total_timesteps=1)
    assert locomotion.reward_scale_factor == pytest.approx(1000.0 / (max(returns) - min(returns)), rel=1e-6)
    antmaze = small_iql(
        None, **{k: v for k, v in IQL.paper_hyperparameters("antmaze").items() if k not in ("policy_kwargs", "goal_semantics")}
    )
    assert (antmaze.reward_scale_factor, antmaze.reward_shift) == (1.0, -1.0)
    # Stored rewards are raw: the transform happens at sample time, for offline and online rows alike.
    antmaze.learn_offline(pendulum_dataset, total_timesteps=1)
    np.testing.assert_allclose(antmaze.replay_buffer.rewards[:50].numpy(), pendulum_dataset[0].rewards, rtol=1e-6)


def test_paper_hyperparameters():
    locomotion = IQL.paper_hyperparameters("locomotion")
    assert (locomotion["expectile"], locomotion["beta"], locomotion["reward_scale"]) == (0.7, 3.0, "return_range")
    antmaze = IQL.paper_hyperparameters("antmaze")
    assert (antmaze["expectile"], antmaze["beta"], antmaze["reward_shift"]) == (0.9, 10.0, -1.0)
    for domain in ("kitchen", "adroit"):
        preset = IQL.paper_hyperparameters(domain)
        assert (preset["expectile"], preset["beta"], preset["policy_kwargs"]["actor_dropout"]) == (0.7, 0.5, 0.1)
    preset = IQL.paper_hyperparameters("antmaze_finetune")
    assert (preset["expectile"], preset["beta"], preset["actor_lr_schedule"]) == (0.9, 10.0, "constant")
    # WSRL's IQL on pen/door/relocate-binary: the Kitchen/Adroit config, rewards * 10 + 5, dropout on.
    preset = IQL.paper_hyperparameters("adroit_finetune")
    assert (preset["expectile"], preset["beta"], preset["actor_lr_schedule"]) == (0.7, 0.5, "constant")
    assert (preset["reward_scale"], preset["reward_shift"], preset["policy_kwargs"]["actor_dropout"]) == (10.0, 5.0, 0.1)
    for domain in ("locomotion", "antmaze", "kitchen", "adroit"):
        preset = IQL.paper_hyperparameters(domain)
        assert preset["actor_lr_schedule"] == "cosine"
        assert (preset["learning_rate"], preset["batch_size"], preset["gamma"], preset["tau"], preset["max_weight"]) == (
            3e-4,
            256,
            0.99,
            0.005,
            100.0,
        )
        assert preset["policy_kwargs"]["net_arch"] == [256, 256]
    with pytest.raises(ValueError, match="Unknown domain"):
        IQL.paper_hyperparameters("atari")
    model = IQL("MlpPolicy", gym.make("Pendulum-v1"), **IQL.paper_hyperparameters("adroit"))
    assert any(isinstance(m, th.nn.Dropout) and m.p == 0.1 for m in model.actor.modules())


def expectile_by_bisection(sample: np.ndarray, tau: float) -> float:
    """The tau-expectile solves tau * E[(x - e)+] = (1 - tau) * E[(e - x)+]; bisection finds it directly."""
    low, high = sample.min(), sample.max()
    for _ in range(100):
        e = (low + high) / 2
        excess = tau * np.clip(sample - e, 0, None).sum() - (1 - tau) * np.clip(e - sample, 0, None).sum()
        low, high = (e, high) if excess > 0 else (low, e)
    return e


def minimise_expectile_loss(sample: np.ndarray, tau: float) -> float:
    v = th.zeros(1, dtype=th.float64, requires_grad=True)
    x = th.as_tensor(sample)
    optimizer = th.optim.LBFGS([v], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        optimizer.zero_grad()
        loss = expectile_loss(x - v, tau).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    return v.item()


@pytest.mark.parametrize("tau", [0.1, 0.5, 0.7, 0.9, 0.99])
def test_expectile_loss_minimiser_is_the_expectile(tau):
    sample = np.random.default_rng(0).gamma(2.0, 1.0, size=500)
    expectile = expectile_by_bisection(sample, tau)
    assert minimise_expectile_loss(sample, tau) == pytest.approx(expectile, abs=1e-6)
    if tau == 0.5:
        assert expectile == pytest.approx(sample.mean(), abs=1e-9)


def train_two_step(dataset, expectile: float, n_steps: int = 1500) -> IQL:
    model = IQL(
        "MlpPolicy",
        None,
        expectile=expectile,
        beta=10.0,
        learning_rate=1e-3,
        batch_size=64,
        actor_lr_schedule="constant",
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        device="cpu",
    )
    model.learn_offline(dataset, total_timesteps=n_steps)
    return model


def test_value_approaches_best_in_dataset_return_as_expectile_goes_to_one(two_step_dataset):
    s0, s1 = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    values = {tau: train_two_step(two_step_dataset, tau).predict_value(np.stack([s0, s1])) for tau in (0.5, 0.9, 0.99)}
    # tau = 0.5 is SARSA-style evaluation of the behaviour policy: the average return 0.5.
    assert values[0.5][1] == pytest.approx(0.5, abs=0.1)
    assert values[0.5][0] == pytest.approx(0.99 * 0.5, abs=0.1)
    # As tau -> 1, V(s) approaches the best in-dataset return: 1 at s1, gamma at s0.
    assert values[0.9][1] == pytest.approx(0.9, abs=0.07)
    assert values[0.99][1] > 0.93 and values[0.99][0] > 0.9
    assert values[0.5][1] < values[0.9][1] < values[0.99][1]


def test_extracted_policy_prefers_the_better_logged_action(two_step_dataset):
    model = train_two_step(two_step_dataset, expectile=0.9)
    action, _ = model.predict(np.array([0.0, 1.0], np.float32), deterministic=True)
    # The logged actions are +0.8 (reward 1) and -0.8 (reward 0), half each; BC would output ~0.
    assert action[0] > 0.6


def test_vec_normalize_with_offline_data_is_refused_with_what_to_do(pendulum_dataset):
    normalized = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)]))
    model = small_iql(normalized)
    with pytest.raises(ValueError, match="norm_obs=False"):
        model.load_dataset(pendulum_dataset)
    assert model.replay_buffer.size() == 0
    # Added after offline training, it is refused when online training starts.
    offline = small_iql(gym.make("Pendulum-v1", max_episode_steps=50))
    offline.learn_offline(pendulum_dataset, 2)
    offline.set_env(normalized)
    with pytest.raises(ValueError, match="VecNormalize"):
        offline.learn(10)
    # Without normalisation it is only a pass-through.
    plain = VecNormalize(
        DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)]), norm_obs=False, norm_reward=False
    )
    small_iql(plain).learn_offline(pendulum_dataset, 2).learn(10)


def test_sb3_eval_callback_works_offline_on_an_env_less_model(pendulum_dataset, tmp_path):
    callback = EvalCallback(
        gym.make("Pendulum-v1", max_episode_steps=5), eval_freq=10, n_eval_episodes=2, log_path=str(tmp_path), verbose=0
    )
    small_iql(None).learn_offline(pendulum_dataset, 20, callback=callback)
    evaluations = np.load(tmp_path / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [10, 20] and evaluations["results"].shape == (2, 2)


@pytest.mark.parametrize("steps", [0, -3])
def test_non_positive_step_counts_are_refused(pendulum_dataset, steps):
    model = small_iql(None)
    with pytest.raises(ValueError, match="total_timesteps > 0"):
        model.learn_offline(pendulum_dataset, steps)
    assert model.replay_buffer is None


def test_same_seed_same_model(pendulum_dataset):
    def train(seed: int) -> IQL:
        model = small_iql(gym.make("Pendulum-v1", max_episode_steps=20), seed=seed)
        return model.learn_offline(pendulum_dataset, 20).learn(30)

    first, second, other = train(3), train(3), train(4)
    for a, b in zip(first.policy.state_dict().values(), second.policy.state_dict().values()):
        assert th.equal(a, b)
    assert any(not th.equal(a, b) for a, b in zip(first.policy.state_dict().values(), other.policy.state_dict().values()))


def test_the_old_step_count_name_still_works_with_a_warning(pendulum_dataset):
    model = small_iql(None)
    with pytest.warns(FutureWarning, match="total_timesteps"):
        model.learn_offline(pendulum_dataset, n_steps=3)
    assert model.num_timesteps == 3


@pytest.mark.parametrize("reduction", ["min", "mean"])
def test_the_target_critics_are_combined_by_their_min_or_when_asked_their_mean(pendulum_dataset, reduction):
    model = small_iql(None, critic_reduction=reduction)
    model.learn_offline(pendulum_dataset, 5)  # the two critics differ after a few steps
    batch = model.replay_buffer.sample(32)
    with th.no_grad():
        target_qs = model.critic_target(batch.observations, batch.actions)
        combined = target_qs.min(dim=0).values if reduction == "min" else target_qs.mean(dim=0)
        expected = expectile_loss(combined - model.value(batch.observations), model.expectile).mean()
    assert not th.allclose(target_qs.min(dim=0).values, target_qs.mean(dim=0))
    assert model._update(batch).value_loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_an_unknown_critic_reduction_is_refused():
    with pytest.raises(ValueError, match="critic_reduction must be 'min' or 'mean'"):
        IQL("MlpPolicy", None, critic_reduction="max")
