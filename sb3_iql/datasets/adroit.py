"""
Adroit datasets: D4RL's door-human, the DAPG-expert sets, and AWAC's binary-reward tasks.

Sources (real files, read from ``shared_data_dir()``; see ``../shared/data/README.md``):
``d4rl-door-human-v0/door-v0_demos_clipped.hdf5`` (D4RL door-human-v0),
``dapg-policies/{door,hammer,pen,relocate}-v0.pickle`` (the DAPG expert policies D4RL rolled out),
``dapg-policies/door-v0_demos.pickle`` (the raw human door demos, with initial states),
``awac-pen-binary-demos/pen2_sparse.npy`` (AWAC's 25 pen demos with binary reward); door-binary's demos
are the door-human file's, as AWAC's were.
Evaluation uses Gymnasium-Robotics ``AdroitHand*-v1``, a port of the ``mj_envs`` v0 tasks with the
same observation and action layouts.
"""

import pickle
import tempfile
from pathlib import Path

import gymnasium as gym
import h5py
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer

from sb3_iql.common.wrappers import BinaryReward
from sb3_iql.data.episodes import Policy, cut_episode, episode_buffer, rollout_episodes, split_episodes
from sb3_iql.datasets.dapg import DapgPolicy
from sb3_iql.datasets.recording import minari_root, source_file, write_dataset
from sb3_iql.iql import IQL

TASKS = ("pen", "door", "hammer", "relocate")
ENV_IDS = {
    "pen": "AdroitHandPen-v1",
    "door": "AdroitHandDoor-v1",
    "hammer": "AdroitHandHammer-v1",
    "relocate": "AdroitHandRelocate-v1",
}
# d4rl/hand_manipulation_suite/__init__.py: the v0 episode lengths and the reference returns
# (random policy, DAPG expert) behind every Adroit normalized score.
D4RL_EPISODE_STEPS = {"pen": 100, "door": 200, "hammer": 200, "relocate": 200}
D4RL_REF_SCORES = {
    "pen": (96.262799, 3076.8331017826877),
    "door": (-56.512833, 2880.5693087298737),
    "hammer": (-274.856578, 12794.134825156867),
    "relocate": (-6.425911, 4233.877797728884),
}
# D4RL's *-expert-v0 sets: 5,000 episodes of the DAPG policy (pen: 100 steps, others 200).
D4RL_EXPERT_EPISODES = 5000
DOOR_HUMAN_FILE = "d4rl-door-human-v0/door-v0_demos_clipped.hdf5"
DOOR_HUMAN_DEMOS_FILE = "dapg-policies/door-v0_demos.pickle"
PEN_BINARY_DEMOS_FILE = "awac-pen-binary-demos/pen2_sparse.npy"
BINARY_TASKS = ("pen", "door", "relocate")
# The binary tasks as later work on exactly AWAC's data registers them (Cal-QL and WSRL: ``pen-binary-v0``
# with max_episode_steps=100, ``door-binary-v0`` / ``relocate-binary-v0`` with 200, D4RL's v0 lengths); their
# code reports a success rate (goal_achieved_rate). Our reference scores are ref_min_score = -T (never solved)
# and ref_max_score = 0 (solved at every step), so a return x normalizes to 100 * (x + T) / T, the share of the
# episode spent solved: a scale of ours, shown beside the success rate.
# Success is mj_envs' goal_achieved, which Gymnasium-Robotics reports as info["success"].
BINARY_EPISODE_STEPS = {"pen": 100, "door": 200, "relocate": 200}
# Dataset versions: door-binary-v1 took its demos from the DAPG expert (its BC rollouts then solved the task, unlike
# AWAC's); v2 takes D4RL's 25 human demos, as AWAC did. relocate's human demos are not available.
BINARY_DATASET_VERSIONS = {"pen": 1, "door": 2, "relocate": 1}
# AdroitHandDoor's observation holds the door hinge angle at index 28; the task is solved (mj_envs' goal_achieved,
# Gymnasium-Robotics' info["success"]) once the angle reaches 1.35 rad.
DOOR_HINGE_OBSERVATION = 28
DOOR_OPEN_ANGLE = 1.35
# AWAC: 25 demonstrations + 500 rollouts of a BC policy trained on them.
AWAC_BC_EPISODES = 500
AWAC_DEMOS = 25


def dapg_policy_file(task: str) -> str:
    return f"dapg-policies/{task}-v0.pickle"


def _check_task(task: str, tasks: tuple[str, ...] = TASKS) -> None:
    if task not in tasks:
        raise ValueError(f"Unknown Adroit task '{task}': choose one of {', '.join(tasks)}.")


def make_env(task: str, max_episode_steps: int | None = None, binary: bool = False) -> gym.Env:
    """
    :param task: pen, door, hammer or relocate
    :param max_episode_steps: Episode length (default: D4RL's for the task)
    :param binary: Reward 0 on success and -1 otherwise (AWAC's binary tasks)
    :return: The Gymnasium-Robotics Adroit env
    """
    _check_task(task)
    env = gym.make(ENV_IDS[task], max_episode_steps=max_episode_steps or D4RL_EPISODE_STEPS[task])
    return BinaryReward(env) if binary else env


def load_expert(task: str, source: str | Path | None = None, deterministic: bool = False, seed: int = 0) -> DapgPolicy:
    """Load the DAPG expert of ``task`` and check it fits the Gymnasium-Robotics env."""
    _check_task(task)
    policy = DapgPolicy(source_file(source, dapg_policy_file(task)), deterministic=deterministic, seed=seed)
    env = make_env(task)
    expected = (env.observation_space.shape[0], env.action_space.shape[0])
    if (policy.observation_dim, policy.action_dim) != expected:
        raise ValueError(
            f"The policy in {source or dapg_policy_file(task)} maps {policy.observation_dim} -> {policy.action_dim} "
            f"but {ENV_IDS[task]} needs {expected[0]} -> {expected[1]}: is it the {task} policy?"
        )
    return policy


# -- door-human ---------------------------------------------------------------------------------
def door_human_episodes(source: str | Path | None = None, progress: bool = False) -> list[EpisodeBuffer]:
    """
    Split D4RL's door-human file into episodes at its terminals and timeouts.

    The 25 human demos are up to 300 steps long, with ``terminals`` on each demo's last step and
    ``timeouts`` where door-v0's 200-step limit falls, so there are 50 episodes. An episode that ends
    at a timeout continues in the file, so its last next observation is the demo's next one. An
    episode that ends at a terminal has no next observation in the file; its last observation is
    repeated, which the terminal masks out of every TD target. All 6,729 steps are kept
    (``d4rl.qlearning_dataset`` drops the 25 timeout steps and the file's last step).
    """
    path = source_file(source, DOOR_HUMAN_FILE)
    with h5py.File(path, "r") as file:
        missing = {"observations", "actions", "rewards", "terminals", "timeouts"} - set(file)
        if missing:
            raise ValueError(f"{path} is not a D4RL dataset file: it lacks {sorted(missing)}.")
        data = {key: file[key][()] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
    env = make_env("door")
    n_steps = len(data["rewards"])
    expected = {"observations": env.observation_space.shape, "actions": env.action_space.shape}
    for key, shape in expected.items():
        if data[key].shape != (n_steps, *shape):
            raise ValueError(f"{path}: '{key}' has shape {data[key].shape}; door-human needs ({n_steps}, {shape[0]}).")
    ends = np.flatnonzero(data["terminals"] | data["timeouts"])
    if len(ends) == 0 or ends[-1] != n_steps - 1:
        raise ValueError(f"{path}: the last episode has no terminal or timeout; is the file truncated?")
    # The next observation is the file's next row, except after a demo's end, where there is none.
    next_observations = np.concatenate([data["observations"][1:], data["observations"][-1:]])
    terminal_ends = ends[data["terminals"][ends]]
    next_observations[terminal_ends] = data["observations"][terminal_ends]
    return split_episodes(data["observations"], next_observations, data["actions"], data["rewards"], data["terminals"], ends)


def build_door_human(source: str | Path | None = None, overwrite: bool = False, progress: bool = True) -> minari.MinariDataset:
    """Convert D4RL's door-human-v0 into the Minari dataset ``sb3-iql/door/human-v0``."""
    episodes = door_human_episodes(source, progress)
    return write_dataset(
        "sb3-iql/door/human-v0",
        episodes,
        make_env("door"),
        *D4RL_REF_SCORES["door"],
        description=(
            "D4RL door-human-v0 (25 human demonstrations, door-v0_demos_clipped.hdf5), all 6,729 steps, "
            "split into 50 episodes at the file's terminals (demo ends) and timeouts (door-v0's 200-step "
            "limit); a terminal episode repeats its last observation as the final one. D4RL reference scores. "
            "Evaluated in Gymnasium-Robotics AdroitHandDoor-v1 (200 steps), whose dynamics differ slightly "
            "from mj_envs door-v0: see sb3_iql.datasets.adroit.door_replay_error."
        ),
        algorithm_name="human teleoperation (D4RL door-human-v0)",
        overwrite=overwrite,
    )


def door_replay_error(source: str | Path | None = None, n_demos: int = 25, horizons: tuple[int, ...] = (1, 10, 50)) -> dict:
    """
    Replay the human door demos' actions from their recorded initial states in ``AdroitHandDoor-v1``.

    :param source: The raw ``door-v0_demos.pickle`` (with ``init_state_dict``)
    :param n_demos: How many demos to replay
    :param horizons: Steps after which to report the error
    :return: Mean absolute observation error (averaged over dimensions and demos) after each horizon
        and over whole episodes, the max error, and the demos' and replays' mean returns
    """
    path = source_file(source, DOOR_HUMAN_DEMOS_FILE)
    with open(path, "rb") as file:
        demos = pickle.load(file)
    env = make_env("door", max_episode_steps=1000)
    errors, demo_returns, replay_returns = [], [], []
    for demo in demos[:n_demos]:
        env.reset(seed=0)
        env.unwrapped.set_env_state(demo["init_state_dict"])
        replayed, total = [], 0.0
        for action in demo["actions"][:-1]:
            observation, reward, *_ = env.step(np.clip(action, -1.0, 1.0).astype(np.float32))
            replayed.append(observation)
            total += float(reward)
        errors.append(np.abs(np.array(replayed) - demo["observations"][1:]).mean(axis=1))
        demo_returns.append(float(np.sum(demo["rewards"][:-1])))
        replay_returns.append(total)
    result = {f"error_after_{h}": float(np.mean([e[h - 1] for e in errors if len(e) >= h])) for h in horizons}
    result.update(
        error_mean=float(np.mean(np.concatenate(errors))),
        error_max=float(np.max(np.concatenate(errors))),
        demo_return=float(np.mean(demo_returns)),
        replay_return=float(np.mean(replay_returns)),
    )
    return result


# -- expert sets -------------------------------------------------------------------------------
def build_expert(
    task: str,
    n_episodes: int = D4RL_EXPERT_EPISODES,
    source: str | Path | None = None,
    deterministic: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> minari.MinariDataset:
    """
    Roll out a DAPG expert as D4RL made ``{task}-expert-v0``: ``sb3-iql/{task}/expert-v0``.

    :param task: pen, door, hammer or relocate
    :param n_episodes: Episodes (D4RL: 5,000)
    :param source: The policy pickle (default: ``dapg-policies/{task}-v0.pickle`` in the shared data)
    :param deterministic: Act with the policy mean instead of sampling its Gaussian
    :param seed: Seed of resets and action noise
    """
    policy = load_expert(task, source, deterministic=deterministic, seed=seed)
    env = make_env(task)
    episodes = rollout_episodes(env, policy, n_episodes, seed=seed, description=f"{task}-expert", progress=progress)
    return write_dataset(
        f"sb3-iql/{task}/expert-v0",
        episodes,
        env,
        *D4RL_REF_SCORES[task],
        description=(
            f"{n_episodes} episodes of the DAPG {task} expert ({'mean action' if deterministic else 'sampled actions'}), "
            f"{D4RL_EPISODE_STEPS[task]} steps each, in Gymnasium-Robotics {ENV_IDS[task]}, as D4RL made "
            f"{task}-expert-v0. D4RL reference scores."
        ),
        algorithm_name="DAPG expert policy (hand_dapg)",
        overwrite=overwrite,
    )


# -- AWAC binary tasks ---------------------------------------------------------------------------
def pen_binary_demos(source: str | Path | None = None) -> list[EpisodeBuffer]:
    """:return: AWAC's 25 pen demos with their stored binary rewards (the first one per step)."""
    path = source_file(source, PEN_BINARY_DEMOS_FILE)
    demos = np.load(path, allow_pickle=True)
    env = make_env("pen")
    episodes = []
    for index, demo in enumerate(demos):
        try:
            observations = [step["observation"] for step in demo["observations"]] + [
                demo["next_observations"][-1]["observation"]
            ]
            actions, n_steps = np.asarray(demo["actions"], dtype=np.float32), len(demo["actions"])
        except (KeyError, TypeError, IndexError) as error:
            raise ValueError(f"{path}: demo {index} is not an AWAC path dict ({error!r}).") from error
        if np.shape(observations)[1:] != env.observation_space.shape or actions.shape[1:] != env.action_space.shape:
            raise ValueError(
                f"{path}: demo {index} has observations {np.shape(observations)[1:]} and actions {actions.shape[1:]}; "
                f"{ENV_IDS['pen']} needs {env.observation_space.shape} and {env.action_space.shape}."
            )
        rewards = np.asarray(demo["rewards"][:n_steps], dtype=np.float64)
        episodes.append(
            episode_buffer(observations, actions, rewards, np.zeros(n_steps, bool), np.arange(n_steps) == n_steps - 1)
        )
    return episodes


def behaviour_cloning_policy(episodes: list[EpisodeBuffer], env: gym.Env, n_steps: int, seed: int = 0) -> Policy:
    """
    Fit a Gaussian policy to ``episodes`` by maximum likelihood: IQL's actor with every advantage
    weight equal to 1 (``beta=0``).

    :return: A policy that samples from the fitted Gaussian (AWAC rolled out its BC policy stochastically)
    """
    with tempfile.TemporaryDirectory() as root, minari_root(Path(root)):
        demos = minari.create_dataset_from_buffers(
            "bc/demos-v0", episodes, env=env, eval_env=env, description="the demonstrations, for behaviour cloning"
        )
        model = IQL("MlpPolicy", env, beta=0.0, actor_lr_schedule="constant", seed=seed, device="cpu")
        model.learn_offline(demos, n_steps)
    return lambda observation: model.predict(observation, deterministic=False)[0]


def binary_reference_scores(task: str) -> tuple[float, float]:
    """:return: ``(ref_min_score, ref_max_score)`` of a binary task: ``(-T, 0)`` for its episode limit ``T``."""
    _check_task(task, BINARY_TASKS)
    return -float(BINARY_EPISODE_STEPS[task]), 0.0


def binary_dataset_id(task: str) -> str:
    """:return: The Minari id of ``{task}-binary`` (see ``BINARY_DATASET_VERSIONS``)."""
    _check_task(task, BINARY_TASKS)
    return f"sb3-iql/{task}/binary-v{BINARY_DATASET_VERSIONS[task]}"


def make_binary_env(task: str) -> gym.Env:
    """:return: The binary task as published: reward 0 when solved, else -1; ``BINARY_EPISODE_STEPS`` steps."""
    _check_task(task, BINARY_TASKS)
    return make_env(task, max_episode_steps=BINARY_EPISODE_STEPS[task], binary=True)


def door_open_rewards(next_observations: np.ndarray) -> np.ndarray:
    """:return: door-binary's reward for steps that end in ``next_observations``: 0 where the door is open, else -1."""
    return np.where(np.asarray(next_observations)[:, DOOR_HINGE_OBSERVATION] >= DOOR_OPEN_ANGLE, 0.0, -1.0)


def door_binary_demos(source: str | Path | None = None, n_demos: int = AWAC_DEMOS) -> list[EpisodeBuffer]:
    """
    D4RL's human door demos as AWAC's door-binary used them: the door-human file's episodes of the first ``n_demos``
    demos (each cut at the 200-step limit), reward 0 on steps that leave the door open (the recorded hinge angle at
    least ``DOOR_OPEN_ANGLE``, the env's success rule) and -1 otherwise. Each piece ends in a truncation, as the
    binary env's episodes do: the task never terminates.
    """
    pieces, demos_taken = [], 0
    for episode in door_human_episodes(source):
        if demos_taken == n_demos:
            break
        demos_taken += bool(episode.terminations[-1])  # the file marks each demo's last step terminal
        observations, n_steps = np.asarray(episode.observations), len(episode.actions)
        rewards = door_open_rewards(observations[1:])
        pieces.append(
            episode_buffer(observations, episode.actions, rewards, np.zeros(n_steps, bool), np.arange(n_steps) == n_steps - 1)
        )
    return pieces


def binary_demos(task: str, n_demos: int, source: str | Path | None, seed: int, progress: bool) -> list[EpisodeBuffer]:
    """
    The demonstrations of a binary task, in episodes of the task's limit: AWAC's real ones for pen
    (199 steps each, so each is cut in two), D4RL's human demos for door (AWAC's source), DAPG expert
    rollouts for relocate (its human demos are not available).
    """
    if task == "pen":
        demos = pen_binary_demos(source)[:n_demos]
        return [piece for demo in demos for piece in cut_episode(demo, BINARY_EPISODE_STEPS[task])]
    if task == "door":
        return door_binary_demos(source, n_demos)
    expert = load_expert(task, source, seed=seed)
    env = make_binary_env(task)
    return rollout_episodes(env, expert, n_demos, seed=seed, description=f"{task} expert demos", progress=progress)


def build_binary(
    task: str,
    n_bc_episodes: int = AWAC_BC_EPISODES,
    n_demos: int = AWAC_DEMOS,
    bc_steps: int = 20_000,
    source: str | Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> minari.MinariDataset:
    """
    AWAC's recipe for ``{task}-binary``: demonstrations plus rollouts of a BC policy trained on them,
    with reward 0 on success and -1 otherwise: ``binary_dataset_id(task)``.

    Episodes last the published limit (pen 100 steps, door and relocate 200) and the reference scores
    are ``-T`` and ``0``, so the normalized score is the share of the episode spent solved (see
    ``BINARY_EPISODE_STEPS``; Cal-QL and WSRL report a success rate on these tasks instead).

    :param task: pen, door or relocate
    :param n_bc_episodes: Rollouts of the BC policy (AWAC: 500)
    :param n_demos: Demonstrations (AWAC: 25)
    :param bc_steps: Gradient steps of behaviour cloning
    :param source: For pen, AWAC's ``pen2_sparse.npy``; for door, D4RL's door-human file; for relocate, the DAPG
        policy pickle
    :param seed: Seed of BC, resets and action noise
    """
    _check_task(task, BINARY_TASKS)
    demos = binary_demos(task, n_demos, source, seed, progress)
    episode_steps = BINARY_EPISODE_STEPS[task]
    env = make_binary_env(task)
    bc_policy = behaviour_cloning_policy(demos, env, bc_steps, seed=seed)
    rollouts = rollout_episodes(
        env, bc_policy, n_bc_episodes, seed=seed + 10_000, description=f"{task}-binary BC", progress=progress
    )
    demo_origin = {
        "pen": "AWAC's 25 expert demonstrations (pen2_sparse.npy) with their stored rewards",
        "door": f"D4RL's {n_demos} human door demonstrations (door-human-v0, AWAC's source), rewards from the recorded "
        f"hinge angle (solved at {DOOR_OPEN_ANGLE} rad), cut at the 200-step limit",
        "relocate": f"{n_demos} rollouts of the DAPG relocate expert (the human demonstrations AWAC used are not available)",
    }[task]
    return write_dataset(
        binary_dataset_id(task),
        demos + rollouts,
        env,
        *binary_reference_scores(task),
        description=(
            f"AWAC's {task}-binary recipe: {demo_origin}, then {n_bc_episodes} rollouts of a Gaussian BC policy "
            f"({bc_steps} steps of maximum likelihood on the demonstrations), {episode_steps} steps each, reward 0 "
            f"on success and -1 otherwise, in {ENV_IDS[task]} with sb3_iql BinaryReward"
            f"{' (the 199-step demonstrations cut into pieces of at most 100 steps)' if task == 'pen' else ''}. "
            f"Normalized score 100 * (return + {episode_steps}) / {episode_steps}: the share of the episode spent "
            "solved (Cal-QL and WSRL report the success rate on pen/door/relocate-binary-v0 instead)."
        ),
        algorithm_name="demonstrations + behaviour cloning rollouts (AWAC)",
        overwrite=overwrite,
    )
