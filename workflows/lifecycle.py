"""One customer's lifecycle, from sign-up to churn, one term at a time.

Reads as the business process: the term's agenda (welcome, tutorials, kickoff, nudges,
check-ins, review calls, renewal checkpoints, the renewal conversation) is walked in
date order; tasks for people run alongside with reminders and escalation; a renewal
continues-as-new into the next term, a churn or a cancellation ends the lifecycle.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from workflows import onboarding, renewal, reviews
from workflows.agenda import next_step, term_agenda
from workflows.effects import Mailroom, event, record, wait_for
from workflows.tasks import TaskDesk

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities import contracts
    from activities.contracts import CustomerPlanRecord, LifecycleSnapshot, TaskResultRecord
    from models.lifecycle import (
        CustomerPlanReceipt,
        LifecycleEnd,
        LifecycleInput,
        LifecycleState,
        LifecycleStatus,
        Phase,
        SignupIdentity,
        SignupReceipt,
        Step,
        StepKind,
    )
    from models.scoring import Assessment, Quadrant
    from models.signals import SurveyAnswer
    from models.success_plan import CustomerPlanEdit
    from models.tasks import (
        EmailReviewResult,
        InvalidTaskResult,
        KickoffResult,
        RenewalCheckpointResult,
        RenewalOutcome,
        RenewalResult,
        ReviewCallResult,
        Task,
        TaskCompletion,
        TaskKey,
        TaskReceipt,
        TaskResult,
        TaskStatus,
        check_result,
        describe_validation_error,
    )

PHASE = SearchAttributeKey.for_keyword("TandemPhase")
QUADRANT = SearchAttributeKey.for_keyword("TandemQuadrant")
SEARCH_ATTRIBUTES = [PHASE, QUADRANT]

STEPS = {
    StepKind.welcome: onboarding.welcome,
    StepKind.imported: onboarding.imported,
    StepKind.tutorial_nudge: onboarding.nudge_tutorials,
    StepKind.check_in: reviews.check_in,
    StepKind.review_call: reviews.schedule_review_call,
    StepKind.renewal_checkpoint: renewal.ask_for_rating,
    StepKind.renewal: renewal.open_conversation,
}


@workflow.defn(name="CustomerLifecycle")
class CustomerLifecycle:
    @workflow.init
    def __init__(self, lifecycle: LifecycleInput) -> None:
        self.state = lifecycle.state or self._first_term(lifecycle)
        self.steps_per_run = lifecycle.steps_per_run
        self.mail = Mailroom(self.state)
        self.desk = TaskDesk(self.state, self.mail)
        self.mail.desk = self.desk  # wired in two steps: each sends work to the other
        self._indexed: tuple[str, str] | None = None

    @staticmethod
    def _first_term(lifecycle: LifecycleInput) -> LifecycleState:
        now = workflow.now()
        imported = lifecycle.imported
        if imported is not None:  # an existing account, mid-term: picked up from today
            return LifecycleState(
                customer=lifecycle.customer,
                plan=lifecycle.plan,
                signed_up_at=now,
                term_start=imported.term_start,
                term_end=imported.term_end,
                onboarded=imported.onboarded,
                phase=Phase.adopting if imported.onboarded else Phase.onboarding,
                imported=imported,
                imported_at=now,
            )
        return LifecycleState(
            customer=lifecycle.customer,
            plan=lifecycle.plan,
            signed_up_at=now,
            term_start=now,
            term_end=now + timedelta(days=lifecycle.plan.renewal.term_days),
        )

    @workflow.run
    async def run(self, lifecycle: LifecycleInput) -> LifecycleEnd:
        if not self.state.steps_done:  # a new lifecycle, or a new term
            if self.state.term > 1:  # in the first, the welcome opens the account
                await self.save_snapshot()
            if self.state.history:
                last = self.state.history[-1]
                await event(
                    self.state.customer.customer_id,
                    self.key("term_started"),
                    "term_started",
                    f"Term {self.state.term} started ({last.outcome.value}: {last.reason})",
                )
        self.index_search_attributes()
        self.desk.resume()
        steps_this_run = 0
        for step in term_agenda(self.state):
            if step.key in self.state.steps_done:
                continue
            if not await self.until(step):
                break
            await STEPS[step.kind](self, step)
            self.state.steps_done.append(step.key)
            steps_this_run += 1
            if self.should_continue_as_new(steps_this_run):
                await self.continue_as_new()
        await workflow.wait_condition(self.term_is_decided)
        if self.state.cancel_reason is not None:
            return await renewal.end(self, f"cancelled: {self.state.cancel_reason}")
        decision = self.state.renewal
        assert decision is not None
        if decision.outcome is RenewalOutcome.churned:
            return await renewal.end(self, f"churned at renewal: {decision.reason}")
        # The term runs to its end (check-ins included) before the next one starts.
        if await wait_for(lambda: self.state.cancel_reason is not None, self.state.term_end):
            return await renewal.end(self, f"cancelled: {self.state.cancel_reason}")
        self.state = renewal.next_term(self.state)
        await self.continue_as_new()
        raise AssertionError("unreachable: continue_as_new raises")

    # -- the pace of the process -------------------------------------------------------

    def ended_early(self) -> bool:
        """A cancellation, or a renewal decided as churn, stops the rest of the term."""
        decision = self.state.renewal
        churned = decision is not None and decision.outcome is RenewalOutcome.churned
        return self.state.cancel_reason is not None or churned

    def term_is_decided(self) -> bool:
        return self.state.cancel_reason is not None or self.state.renewal is not None

    async def until(self, step: Step) -> bool:
        """Sleep until the step is due; False when the lifecycle ends first."""
        return not await wait_for(self.ended_early, step.at)

    def should_continue_as_new(self, steps_this_run: int) -> bool:
        if self.steps_per_run is not None and steps_this_run >= self.steps_per_run:
            return True
        return workflow.info().is_continue_as_new_suggested()

    async def continue_as_new(self) -> None:
        """Hand the state to a fresh run, once no handler or email is mid-way."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.mail.drain()
        workflow.continue_as_new(
            LifecycleInput(
                customer=self.state.customer,
                plan=self.state.plan,
                state=self.state,
                steps_per_run=self.steps_per_run,
            )
        )

    async def record_result(self, task: Task, result: TaskResult, receipt: TaskReceipt) -> None:
        """Store the result (the caller reads its own write), then act on it."""
        plan = None
        if isinstance(result, KickoffResult):
            plan = result.success_plan
        elif isinstance(result, ReviewCallResult | RenewalResult):
            plan = result.revised_plan
        version = self.state.success_plan_version + 1 if plan is not None else None
        await record(
            contracts.record_task_result,
            TaskResultRecord(
                task=task,
                result=result.model_dump(mode="json"),
                completed_by=receipt.completed_by,
                completed_at=receipt.completed_at,
                success_plan_version=version,
            ),
        )
        if plan is not None and version is not None:
            self.state.success_plan, self.state.success_plan_version = plan, version
        if isinstance(result, KickoffResult):
            await onboarding.kickoff_held(self, result)
        elif isinstance(result, RenewalCheckpointResult):
            await renewal.compare_rating(self, task, result)
        elif isinstance(result, RenewalResult):
            self.state.renewal = result
        elif isinstance(result, EmailReviewResult) and task.email_key:
            self.mail.decisions[task.email_key] = result

    def key(self, local: str) -> str:
        """A key unique to this customer and term, for emails, events and assessments."""
        return str(TaskKey(self.state.customer.customer_id, self.state.term, local))

    # -- records and visibility --------------------------------------------------------

    def snapshot(self, churn_reason: str | None = None) -> LifecycleSnapshot:
        state = self.state
        return LifecycleSnapshot(
            customer=state.customer,
            plan_name=state.plan.name,
            plan_version=state.plan.version,
            phase=state.phase,
            term=state.term,
            term_start=state.term_start,
            term_end=state.term_end,
            onboarded=state.onboarded,
            churn_reason=churn_reason,
        )

    async def save_snapshot(self, churn_reason: str | None = None) -> None:
        await record(contracts.record_lifecycle, self.snapshot(churn_reason))

    async def enter(self, phase: Phase) -> None:
        if self.state.phase is not phase:
            self.state.phase = phase
            self.index_search_attributes()
            await self.save_snapshot()

    def index_search_attributes(self) -> None:
        last = self.state.last_assessment
        indexed = (self.state.phase.value, (last.quadrant if last else Quadrant.unknown).value)
        if indexed != self._indexed:  # an unchanged upsert would only grow the history
            self._indexed = indexed
            workflow.upsert_search_attributes(
                [PHASE.value_set(indexed[0]), QUADRANT.value_set(indexed[1])]
            )

    # -- what people and systems send --------------------------------------------------

    @workflow.update
    async def acknowledge_signup(self, identity: SignupIdentity | None = None) -> SignupReceipt:
        """Sent with the start (update-with-start): returns once the welcome is composed,
        and tells a repeated sign-up apart from the first."""
        first = not self.state.signup_acknowledged
        self.state.signup_acknowledged = True
        opened = ("welcome", "imported")
        await workflow.wait_condition(
            lambda: (
                any(k in self.state.steps_done for k in opened)
                or self.state.term > 1
                or self.ended_early()
            )
        )
        return SignupReceipt(
            customer_id=self.state.customer.customer_id,
            workflow_id=workflow.info().workflow_id,
            phase=self.state.phase,
            new=first,
            plan=self.state.plan.label,
        )

    @acknowledge_signup.validator
    def validate_signup(self, identity: SignupIdentity | None = None) -> None:
        mine = self.state.customer.external_id
        if identity is not None and identity.external_id != mine:
            customer_id = self.state.customer.customer_id
            theirs = f"external id {mine!r}" if mine else "a sign-up without an external id"
            raise ApplicationError(
                f"customer id {customer_id!r} already belongs to {theirs}; external ids "
                "that differ only in case or punctuation make the same customer id",
                type="SignupConflict",
                non_retryable=True,
            )

    @workflow.update
    async def complete_task(self, completion: TaskCompletion) -> TaskReceipt:
        if (repeated := self.receipt_for_repeat(completion)) is not None:
            return repeated
        task = self.state.tasks.get(completion.task_id)
        try:
            result = check_result(task, completion, completion.task_id)
        except InvalidTaskResult as refused:  # a concurrent completion won the race
            raise ApplicationError(
                str(refused), type="InvalidTaskResult", non_retryable=True
            ) from None
        assert task is not None
        task.status = TaskStatus.done  # claimed before any await: a second completion is refused
        receipt = TaskReceipt(
            task_id=task.task_id,
            kind=task.kind,
            completed_at=workflow.now(),
            completed_by=completion.completed_by,
        )
        if (update := workflow.current_update_info()) is not None:
            self.state.receipts[update.id] = receipt
        await self.record_result(task, result, receipt)
        return receipt

    @complete_task.validator
    def validate_completion(self, completion: TaskCompletion) -> None:
        if self.receipt_for_repeat(completion) is not None:
            return
        try:
            check_result(self.state.tasks.get(completion.task_id), completion, completion.task_id)
        except InvalidTaskResult as refused:
            raise ApplicationError(
                str(refused), type="InvalidTaskResult", non_retryable=True
            ) from None

    def receipt_for_repeat(self, completion: TaskCompletion) -> TaskReceipt | None:
        """The receipt of this very completion, sent again (the same update id, see
        TaskCompletion.update_id) after the run that took it continued as new."""
        update = workflow.current_update_info()
        receipt = self.state.receipts.get(update.id) if update is not None else None
        return receipt if receipt is not None and receipt.task_id == completion.task_id else None

    @workflow.signal
    async def tutorial_completed(self, tutorial_key: str) -> None:
        await onboarding.tutorial_completed(self, tutorial_key)

    @workflow.update
    async def edit_success_plan(self, edit: dict[str, Any]) -> CustomerPlanReceipt:
        """The customer states, in their own words, what success means to them."""
        words = self._check_plan_edit(edit)
        self.state.success_plan_version += 1
        version = self.state.success_plan_version
        plan_record = CustomerPlanRecord(
            customer_id=self.state.customer.customer_id,
            version=version,
            edit=words,
            at=workflow.now(),
        )
        await record(contracts.record_customer_plan, plan_record)
        self.state.customer_definition = words.success_definition
        return CustomerPlanReceipt(
            customer_id=plan_record.customer_id, version=version, recorded_at=plan_record.at
        )

    @edit_success_plan.validator
    def validate_plan_edit(self, edit: dict[str, Any]) -> None:
        self._check_plan_edit(edit)

    def _check_plan_edit(self, edit: dict[str, Any]) -> CustomerPlanEdit:
        if self.state.phase is Phase.churned:
            raise ApplicationError("this lifecycle has ended", type="InvalidPlanEdit")
        try:
            return CustomerPlanEdit.model_validate(edit)
        except ValidationError as error:
            raise ApplicationError(
                describe_validation_error(error), type="InvalidPlanEdit", non_retryable=True
            ) from None

    @workflow.update
    async def reassess(self) -> Assessment:
        """Score the account now, between check-ins (e.g. after importing signals);
        no email goes to the customer, but a move still opens its playbook."""
        if self.state.phase is Phase.churned:
            raise ApplicationError("this lifecycle has ended", type="LifecycleEnded")
        self.state.reassessments += 1
        return await reviews.assess_and_report(
            self, f"reassess-{self.state.reassessments}", email=False
        )

    @workflow.signal
    async def survey_answered(self, answer: SurveyAnswer) -> None:
        """Recorded by the survey page already; the lifecycle keeps it on the timeline,
        once per survey and contact (an answer for the whole account names nobody)."""
        key = f"survey:{answer.survey}:{answer.kind.value}"
        by = ""
        if answer.contact:
            key, by = f"{key}:{answer.contact}", f" by {answer.contact}"
        await event(
            self.state.customer.customer_id,
            key,
            "survey_answered",
            f"Survey answered{by}: {answer.kind.value.upper()} {answer.value:g}",
        )

    @workflow.signal
    async def champion_left(self, email: str) -> None:
        """A champion was removed, marked as left or bounced (the records say so already);
        the lifecycle opens the plan's `champion_left` playbook for them, once."""
        await reviews.champion_left(self, email)

    @workflow.signal
    def cancel(self, reason: str) -> None:
        if self.state.cancel_reason is None:
            self.state.cancel_reason = reason or "no reason given"

    @workflow.query
    def status(self) -> LifecycleStatus:
        state = self.state
        return LifecycleStatus(
            customer_id=state.customer.customer_id,
            company=state.customer.company,
            phase=state.phase,
            term=state.term,
            term_end=state.term_end,
            plan=state.plan.label,
            onboarded=state.onboarded,
            tutorials_done=state.tutorials_done,
            success_plan=state.success_plan,
            customer_definition=state.customer_definition,
            open_tasks=state.open_tasks(),
            last_assessment=state.last_assessment,
            next_step=None if self.ended_early() else next_step(state),
        )
