"""Sign-up's home: a customer's account opened, with its kickoff task, and the welcome
and the success manager's notice sent; and, later, each task's change with the notice
to its owner, and each check-in's assessment with its report to the customer.

Each is one activity and one transaction, records and emails together, so a retry
finds all of it or none; the emails then get one delivery attempt each, through the
outbox (activities/email.py), which goes on retrying what that could not send.
"""

from __future__ import annotations

from sqlmodel import Session
from temporalio import activity

from activities import events
from activities.assessment import Assessed, AssessmentActivities
from activities.contracts import (
    AccountOpened,
    AccountOpening,
    CheckedIn,
    CheckIn,
    EmailReceipt,
    TaskNotice,
)
from activities.email import EmailActivities, Written
from activities.records import add_event_once, new_customer, new_task, save_lifecycle, save_task
from db.contacts import contact_row, upsert_contact
from db.engine import insert_rows
from models.contacts import SIGNUP_ROLES
from models.tables import Customer


class AccountActivities:
    def __init__(self, email: EmailActivities, assessments: AssessmentActivities) -> None:
        self._email = email
        self._assessments = assessments

    @activity.defn(name="open_account")
    def open_account(self, opening: AccountOpening) -> AccountOpened:
        """The customer's record, its timeline entry and the kickoff task, then the
        welcome and the manager's notice. A retry finds it all there and changes nothing."""

        def record_account(session: Session) -> Written:
            if session.get(Customer, opening.snapshot.customer.customer_id) is None:
                return open_new_account(session, opening)
            # A retry must not undo what the lifecycle recorded since the first attempt
            # (a kickoff held at once moves the phase on); a row left by an earlier,
            # ended lifecycle of the same customer is this one's to take over.
            customer = save_lifecycle(session, opening.snapshot, opening=True)
            add_event_once(session, opening.entry)
            save_task(session, opening.kickoff.update)
            first = (customer.id, customer.contact_name, customer.email, SIGNUP_ROLES, "signup")
            upsert_contact(session, *first)
            return Written()

        welcome, notice = self._email.store_and_send(
            [opening.welcome, opening.kickoff.notice], record_account
        )
        return AccountOpened(welcome=welcome, kickoff_notice=notice)

    @activity.defn(name="announce_task")
    def announce_task(self, announcement: TaskNotice) -> EmailReceipt:
        """A task's change (opened, due soon, overdue) and the notice to its owner."""

        def record_task(session: Session) -> Written:
            # Read first and held: saving the task and writing the notice both use it.
            customer = session.get(Customer, announcement.update.task.customer_id)
            return Written(customer=customer, task=save_task(session, announcement.update))

        [receipt] = self._email.store_and_send([announcement.notice], record_task)
        return receipt

    @activity.defn(name="check_in")
    def check_in(self, check_in: CheckIn) -> CheckedIn:
        """The account reassessed and the report telling the customer where they stand:
        one activity, where two would each take their own turn through the workflow
        and read the account again."""
        assessed: list[Assessed] = []

        def assess(session: Session) -> Written:
            # A replayed transaction (write_once) finds the first try's assessment.
            done = self._assessments.assess_in(session, check_in.assessment)
            assessed[:] = [done]
            return Written(customer=done.customer, known=done.known, first_attempt=done.stored_now)

        [report] = self._email.store_and_send([check_in.report], assess)
        return CheckedIn(assessment=assessed[0].assessment, report=report)


def open_new_account(session: Session, opening: AccountOpening) -> Written:
    """A customer new to the records: the account, its kickoff task and its first
    contact (the person who signed up) are all new rows, written as plain INSERTs
    (insert_rows), the account's first; then their timeline entries and events."""
    customer = new_customer(session, opening.snapshot)
    update = opening.kickoff.update
    task = new_task(update.task, customer)
    first = contact_row(customer.id, customer.contact_name, customer.email, SIGNUP_ROLES, "signup")
    insert_rows(session, customer, task, first)
    events.signed_up(session, customer)
    add_event_once(session, opening.entry)
    add_event_once(session, update.event)
    events.task_changed(session, customer, task, update.event.kind)
    return Written(new_customer=customer, task=task)
