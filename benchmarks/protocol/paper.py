"""The paper's numbers (``paper_numbers.json``) and where a dataset stands in its tables."""

import json
from pathlib import Path

PAPER = json.loads((Path(__file__).resolve().parents[1] / "paper_numbers.json").read_text())


def paper_name(dataset_id: str) -> str | None:
    """:return: The paper's name for the dataset a Minari id stands for, if it is one of the paper's."""
    return PAPER["aliases"].get(dataset_id)


def paper_domain(name: str | None) -> str | None:
    """:return: The Table 1 domain of a paper dataset name (e.g. ``antmaze-v0``)."""
    return next((domain for domain, scores in PAPER["table1"].items() if name in scores), None)


TABLE2_ONLY = "Table 2 tasks (offline phase)"
NOT_IN_PAPER = "not in the paper"


def table_group(name: str | None) -> str:
    """:return: The block a dataset goes in: its Table 1 domain, Table 2's tasks, or not in the paper."""
    return paper_domain(name) or (TABLE2_ONLY if name in PAPER["table2"] else NOT_IN_PAPER)


def paper_offline_score(name: str | None) -> float | None:
    """:return: The paper's offline IQL score: Table 1, else the offline half of Table 2."""
    domain = paper_domain(name)
    if domain is not None:
        return PAPER["table1"][domain][name]
    return PAPER["table2"][name][0] if name in PAPER["table2"] else None
