"""Train IQL offline on a small Pendulum dataset, then finetune it online with plain SB3 learn().

python examples/finetune.py --offline-steps 5000 --online-steps 5000
"""

import argparse

from pendulum_data import data_score, make_dataset

from sb3_iql import IQL, IQLEvalCallback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offline-steps", type=int, default=5000, help="offline gradient steps")
    parser.add_argument("--online-steps", type=int, default=5000, help="online env steps (one gradient step each)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = make_dataset()
    env = dataset.recover_environment()
    # The paper's finetuning settings: expectile 0.9, beta 10, no lr decay, a buffer for dataset + online data.
    model = IQL("MlpPolicy", env, seed=args.seed, **IQL.paper_hyperparameters("adroit_finetune"))

    offline_eval = IQLEvalCallback(dataset.recover_environment(), dataset, eval_freq=0, n_eval_episodes=args.eval_episodes)
    model.learn_offline(dataset, total_timesteps=args.offline_steps, callback=offline_eval, progress_bar=True)
    offline = offline_eval.evaluate()

    online_eval = IQLEvalCallback(
        dataset.recover_environment(), dataset, eval_freq=max(args.online_steps // 5, 1), n_eval_episodes=args.eval_episodes
    )
    model.learn(args.online_steps, callback=online_eval, progress_bar=True)
    for result in online_eval.evaluations:
        print(
            f"online step {int(result['timesteps']):>7}: return {result['mean_reward']:8.1f}, normalized score {result['normalized_score']:6.1f}"
        )
    online = online_eval.evaluations[-1] if online_eval.evaluations else online_eval.evaluate()
    dataset_score = data_score(dataset)
    print(
        f"IQL normalized score: offline {offline['normalized_score']:.1f} -> online {online['normalized_score']:.1f} "
        f"(data {dataset_score:.1f}; buffer holds {model.replay_buffer.size()} transitions)"
    )
    model.save("iql_pendulum_finetuned")


if __name__ == "__main__":
    main()
