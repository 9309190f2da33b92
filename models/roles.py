from enum import StrEnum


class Role(StrEnum):
    """Who someone is on the success team (DOMAIN.md §4): tasks are a rep's or a
    manager's; an API token carries any of the three."""

    rep = "rep"  # success representative: customer contact, tutorials, calls
    manager = "manager"  # success manager: owns the plan, analyses, recommends
    admin = "admin"  # runs Tandem: tokens, plan templates; sees what managers see


TASK_ROLES = (Role.rep, Role.manager)
