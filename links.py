"""Links in emails. Signed ones for customers: one-click survey answers, the customer's
own success-plan page, and unsubscribing. A link carries its claims signed with the secret
key and a timestamp, so a tampered link is refused and an expired one is recognised.
An unsubscribe link never expires: a years-old email must still let its reader stop
the mail, and it only ever turns mail off. Turning it back on takes a resubscribe link of
its own, shown only to whoever just unsubscribed and valid for RESUBSCRIBE_LINK_DAYS: an
unsubscribe link travels in every email (forwarded, quoted, in a mail program's header),
and whoever holds one must not be able to sign the customer up again.

Each contact's copy of an email carries links naming them (`contact`, their address):
their answers and their opt-out are theirs. A link without one (mail from before
per-contact copies, an account without contacts) is for the account as a whole."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from pydantic import BaseModel, ValidationError

SurveyKind = Literal["nps", "csat"]
SCALES: dict[str, range] = {"nps": range(0, 11), "csat": range(1, 6)}
RESUBSCRIBE_LINK_DAYS = 30


class LinkError(ValueError):
    def __init__(self, reason: Literal["invalid", "expired"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SurveyClaim(BaseModel):
    customer_id: str
    kind: SurveyKind
    survey: str  # the check-in it belongs to: an answer is recorded once per survey
    contact: str | None = None  # the contact answering (once each per survey)
    # Only in links from emails signed with one token per answer; links now share one
    # token per survey and carry the answer beside it (LinkSigner.survey_links).
    value: int | None = None


class PlanClaim(BaseModel):
    customer_id: str


class UnsubscribeClaim(BaseModel):
    customer_id: str
    contact: str | None = None  # only this contact opts out; None: the whole account


class ResubscribeClaim(BaseModel):
    customer_id: str
    contact: str | None = None


def _claims(model: BaseModel) -> dict[str, Any]:
    # Claims left unset stay out of the token: an unsubscribe link without a contact is
    # the token it was before contacts, and a survey link carries no answer.
    return model.model_dump(exclude_none=True)


class LinkSigner:
    def __init__(self, secret: str, public_url: str) -> None:
        self._survey = URLSafeTimedSerializer(secret, salt="tandem.survey")
        self._plan = URLSafeTimedSerializer(secret, salt="tandem.plan")
        # Untimed: no expiry to check, and a shorter token in the List-Unsubscribe header.
        self._unsubscribe = URLSafeSerializer(secret, salt="tandem.unsubscribe")
        self._resubscribe = URLSafeTimedSerializer(secret, salt="tandem.resubscribe")
        self.public_url = public_url.rstrip("/")

    def survey_links(
        self, customer_id: str, kind: SurveyKind, survey: str, contact: str | None = None
    ) -> list[dict[str, Any]]:
        """One link per answer on the scale, for a one-click survey in an email. They
        share one signed token (whose survey, and who answers it) and carry their answer
        beside it, unsigned, as the survey page's first choice: the customer may change
        it on the page anyway, and only the page's button records an answer."""
        claim = SurveyClaim(customer_id=customer_id, kind=kind, survey=survey, contact=contact)
        url = f"{self.public_url}/s/{self._survey.dumps(_claims(claim))}"
        return [{"value": value, "url": f"{url}?answer={value}"} for value in SCALES[kind]]

    def plan_link(self, customer_id: str) -> str:
        token = self._plan.dumps(PlanClaim(customer_id=customer_id).model_dump())
        return f"{self.public_url}/p/{token}"

    def unsubscribe_link(self, customer_id: str, contact: str | None = None) -> str:
        token = self._unsubscribe.dumps(
            _claims(UnsubscribeClaim(customer_id=customer_id, contact=contact))
        )
        return f"{self.public_url}/u/{token}"

    def resubscribe_link(self, customer_id: str, contact: str | None = None) -> str:
        token = self._resubscribe.dumps(
            _claims(ResubscribeClaim(customer_id=customer_id, contact=contact))
        )
        return f"{self.public_url}/r/{token}"

    def read_resubscribe(self, token: str) -> ResubscribeClaim:
        claim = _read(self._resubscribe, token, RESUBSCRIBE_LINK_DAYS, ResubscribeClaim)
        return claim  # type: ignore[return-value]

    def read_survey(self, token: str, max_age_days: int) -> SurveyClaim:
        return _read(self._survey, token, max_age_days, SurveyClaim)  # type: ignore[return-value]

    def read_plan(self, token: str, max_age_days: int) -> PlanClaim:
        return _read(self._plan, token, max_age_days, PlanClaim)  # type: ignore[return-value]

    def read_unsubscribe(self, token: str) -> UnsubscribeClaim:
        try:
            return UnsubscribeClaim.model_validate(self._unsubscribe.loads(token))
        except (BadSignature, ValidationError):
            raise LinkError("invalid", "This link is not valid.") from None


def _read(
    serializer: URLSafeTimedSerializer, token: str, max_age_days: int, model: type[BaseModel]
) -> BaseModel:
    try:
        data = serializer.loads(token, max_age=max_age_days * 86400)
        return model.model_validate(data)
    except SignatureExpired:
        raise LinkError("expired", "This link has expired.") from None
    except (BadSignature, ValidationError):
        raise LinkError("invalid", "This link is not valid.") from None


def dashboard_links(public_url: str, task_id: str | None) -> dict[str, str]:
    """Plain links for staff mail: the dashboard asks them to sign in, so nothing here
    needs signing."""
    if not task_id:
        return {}
    return {"task": f"{public_url.rstrip('/')}/app/tasks/{quote(task_id, safe=':')}"}
