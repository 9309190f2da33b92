from enum import StrEnum


class Role(StrEnum):
    """Who does a task (DOMAIN.md §4)."""

    rep = "rep"  # success representative: customer contact, tutorials, calls
    manager = "manager"  # success manager: owns the plan, analyses, recommends
