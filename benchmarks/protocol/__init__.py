"""
What the Table 1 (offline.py) and Table 2 (finetune.py) runners share, one concern a module:

- ``paper``: the paper's numbers (``paper_numbers.json``) and where a dataset stands in its tables;
- ``runs``: a run is one (algorithm, dataset, seed). It lives in ``<out>/runs/<algo>/<dataset>/seed<k>/``:
  ``model.zip`` (+ ``replay_buffer.pkl`` online) saved at every evaluation, ``evaluations.csv``, and
  ``done.json`` once finished; a finished run is read back, an unfinished one resumes from its last
  checkpoint. Runs go to a process pool or Ray;
- ``reports``: CSV, markdown and PNG outputs;
- ``cli``: the runners' shared arguments.
"""

from protocol.cli import common_arguments, default_eval_episodes, dispatch
from protocol.paper import NOT_IN_PAPER, PAPER, TABLE2_ONLY, paper_domain, paper_name, paper_offline_score, table_group
from protocol.reports import (
    ALGO_TITLES,
    ALGOS,
    collect_rows,
    column_table,
    final_scores,
    mean_std,
    planner_cell,
    plot_curves,
    typed_rows,
    write_csv,
    write_markdown,
)
from protocol.runs import (
    EVAL_FIELDS,
    CheckpointingEval,
    RunProgress,
    RunSpec,
    new_model,
    read_rows,
    resume_or_start,
    run,
    run_all,
    run_together,
    save_checkpoint,
    top_episodes,
)
from sb3_iql.data.scores import data_score, episode_scores
from sb3_iql.iql.hyperparameters import infer_domain

__all__ = [
    "ALGOS",
    "ALGO_TITLES",
    "EVAL_FIELDS",
    "NOT_IN_PAPER",
    "PAPER",
    "TABLE2_ONLY",
    "CheckpointingEval",
    "RunProgress",
    "RunSpec",
    "collect_rows",
    "column_table",
    "common_arguments",
    "data_score",
    "default_eval_episodes",
    "dispatch",
    "episode_scores",
    "final_scores",
    "infer_domain",
    "mean_std",
    "new_model",
    "paper_domain",
    "paper_name",
    "paper_offline_score",
    "planner_cell",
    "plot_curves",
    "read_rows",
    "resume_or_start",
    "run",
    "run_all",
    "run_together",
    "save_checkpoint",
    "table_group",
    "top_episodes",
    "typed_rows",
    "write_csv",
    "write_markdown",
]
