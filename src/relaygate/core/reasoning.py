"""Reasoning effort words and thinking-token budgets, one in terms of the other.

OpenAI speaks in effort words, Anthropic and Gemini in token budgets. The table is ours (no provider
publishes an equivalence); it is documented in ``docs/translation.md``.
"""

from __future__ import annotations

EFFORT_BUDGETS: dict[str, int] = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
DYNAMIC_BUDGET = -1


def budget_for_effort(effort: str) -> int | None:
    """The budget for an effort word; ``none`` means no thinking (0); unknown words give None."""
    if effort == "none":
        return 0
    return EFFORT_BUDGETS.get(effort)


def budget_within(effort: str, max_tokens: int | None) -> int | None:
    """The budget for an effort word, cut to half of ``max_tokens`` (which counts thinking too, in every
    dialect) so that the answer keeps room."""
    budget = budget_for_effort(effort)
    if budget is None or max_tokens is None:
        return budget
    return min(budget, max_tokens // 2)


def effort_for_budget(budget: int) -> str | None:
    """The smallest effort whose budget covers ``budget``; None for 0 (thinking off). A dynamic
    budget (-1) counts as ``medium``."""
    if budget == 0:
        return None
    if budget == DYNAMIC_BUDGET:
        return "medium"
    for effort in ("low", "medium"):
        if budget <= EFFORT_BUDGETS[effort]:
            return effort
    return "high"
