"""The benches' closing print: a markdown table of the rows they printed one by one."""
from __future__ import annotations

__all__ = ["print_table"]


def print_table(header: str, rows: list[str]) -> None:
    """header: the table's first line ("| a | b |"); rows: lines of the same columns."""
    print()
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    print("\n".join(rows))
