"""Schema parity: how the target's columns differ from the source's, as the transfer maps them."""

from liftshift.connectors.base import Column, Table, Target, TargetColumn
from liftshift.plan import Plan
from liftshift.types import Verdict, target_mapping


def schema_issues(table: Table, target: Target, found: list[TargetColumn]) -> list[str]:
    """Differences between the mapped source columns and the target's columns (found)."""
    if not found:
        return ["table is missing in the target"]
    issues = []
    expected = {c.name: c for c in table.columns}
    actual = {c.name: c for c in found}
    issues += [f"column {n} is missing in the target" for n in expected if n not in actual]
    issues += [f"column {n} is not in the source" for n in actual if n not in expected]
    for name in expected.keys() & actual.keys():
        want = target.expected_type(expected[name])
        if not same_type(target, expected[name], actual[name]):
            issues.append(f"column {name} is {actual[name].type} in the target, expected {want}")
        if actual[name].nullable != expected[name].nullable:
            issues.append(f"column {name} nullability differs")
    return sorted(issues)


def same_type(target: Target, column: Column, found: TargetColumn) -> bool:
    """Whether the target holds a column as the transfer maps it."""
    return found.type.upper() == target.expected_type(column).upper()


def accepted_lossy(plan: Plan, table: Table, dialect: str) -> frozenset[str]:
    """The table's columns the target holds lossily (rounded, reprinted) and the plan accepts as such."""
    return frozenset(
        c.name
        for c in table.columns
        if target_mapping(c.mapping, dialect).verdict is Verdict.LOSSY and plan.accepts(table.name, c.name)
    )
