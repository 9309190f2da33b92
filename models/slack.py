"""Events as Slack Block Kit messages, for an incoming-webhook URL.

A message says which account, what changed, who owns the work, and links to the
dashboard: a header, a section with the change, fields, and a button. `text` is the
fallback Slack shows in notifications.
"""

from __future__ import annotations

from typing import Any

from models.events import TEST_EVENT, EventType

_HEADLINES: dict[str, str] = {
    EventType.customer_signed_up: "New customer signed up",
    EventType.customer_imported: "Customer imported",
    EventType.assessment_completed: "Account assessed",
    EventType.quadrant_changed: "Account moved quadrant",
    EventType.risk_flagged: "Account at risk",
    EventType.task_opened: "Task opened",
    EventType.task_overdue: "Task overdue",
    EventType.task_escalated: "Task escalated",
    EventType.task_completed: "Task completed",
    EventType.renewal_opened: "Renewal conversation opened",
    EventType.renewal_decided: "Renewal decided",
    EventType.customer_churned: "Customer churned",
    TEST_EVENT: "Test message from Tandem",
}


def _change(event_type: str, data: dict[str, Any]) -> str:
    """What changed, in one line of Slack mrkdwn."""
    task = data.get("task") or {}
    if event_type == EventType.quadrant_changed:
        before = data.get("previous_quadrant") or "no assessment"
        return f"Moved from *{before}* to *{data['quadrant']}*"
    if event_type == EventType.risk_flagged:
        risks = ", ".join(data.get("risks") or []) or "an unhappy quadrant"
        return f"At risk in *{data['quadrant']}*: {risks}"
    if event_type == EventType.assessment_completed:
        return f"Quadrant *{data['quadrant']}*, level {data.get('level')}"
    if event_type == EventType.renewal_decided:
        return f"*{data['outcome']}*: {data['reason']}"
    if event_type == EventType.customer_churned:
        return f"Lifecycle ended: {data['reason']}"
    if event_type == EventType.task_completed:
        return f"*{task['title']}* completed by {data['completed_by']}"
    if task:
        return f"*{task['title']}* (due {str(task['due_at'])[:10]})"
    if event_type == EventType.customer_signed_up:
        return f"Signed up on the *{data.get('plan')}* plan"
    return data.get("message", "")


def slack_message(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    customer = data.get("customer") or {}
    task = data.get("task") or {}
    headline = _HEADLINES.get(event_type, event_type)
    company = customer.get("company", "")
    change = _change(event_type, data)
    owner = task.get("owner") or task.get("owner_role") or customer.get("owner") or "unassigned"
    link = task.get("link") or customer.get("link")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{headline}: {company}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": change or headline}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Account*\n{company or '-'}"},
                {"type": "mrkdwn", "text": f"*Owner*\n{owner}"},
            ],
        },
    ]
    if link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Tandem"},
                        "url": link,
                    }
                ],
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{event_type}`"}]})
    return {"text": f"{headline}: {company} - {change}".strip(" -:"), "blocks": blocks}
