"""Survey links: opening one (as a mail scanner does) records nothing; the page it
opens has the clicked answer chosen, and only its button records it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import Session, select

from links import LinkSigner
from models.tables import SignalRecord
from tests.api_support import Api, api_for
from tests.browser_support import CHROMIUM_ARGS, ConsoleErrors, chromium_path, serve
from tests.conftest import Harness, Lifecycle
from tests.test_dashboard import build_app


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with api_for(harness) as api:
        yield api


def answers(harness: Harness) -> list[tuple[str, float, str | None]]:
    with Session(harness.engine) as session:
        found = session.exec(select(SignalRecord).where(SignalRecord.source == "survey"))
        return [(s.kind, s.value, s.client_id) for s in found]


async def test_opening_the_link_records_nothing_and_the_page_may_change_it(
    api: Api, acme: Lifecycle
) -> None:
    await acme.sign_up()
    signer = LinkSigner(api.settings.secret_key, "http://test")
    [*_, four, five] = signer.survey_links(acme.customer_id, "csat", "s1")
    path = five["url"].removeprefix("http://test")
    for _ in range(3):  # a scanner, a preview, the customer
        page = await api.http.get(path)
        assert page.status_code == 200 and answers(acme.h) == []
    assert 'value="5" checked' in page.text and 'method="post"' in page.text

    # The customer thinks again and picks 4 on the page before sending.
    sent = await api.http.post(path, data={"value": "4"})
    assert sent.status_code == 200 and "(4)" in sent.text
    assert answers(acme.h) == [("csat", 4.0, "survey:s1:csat")]
    off_scale = signer.survey_links(acme.customer_id, "nps", "s2")[0]["url"]
    refused = await api.http.post(off_scale.removeprefix("http://test"), data={"value": "11"})
    assert refused.status_code == 400 and len(answers(acme.h)) == 1
    assert four  # every answer on the scale has its own link


async def test_the_scale_shares_one_token_and_links_signed_per_answer_still_work(
    api: Api, acme: Lifecycle
) -> None:
    await acme.sign_up()
    signer = LinkSigner(api.settings.secret_key, "http://test")
    links = signer.survey_links(acme.customer_id, "nps", "s3", "ann@acme.test")
    tokens = {link["url"].split("?")[0] for link in links}
    assert len(tokens) == 1  # signed once for the survey and contact, not once per answer
    assert [link["url"].split("?")[1] for link in links] == [f"answer={v}" for v in range(11)]
    token = tokens.pop().removeprefix("http://test")
    unchosen = await api.http.get(token)  # no answer beside it: nothing chosen yet
    assert unchosen.status_code == 200 and "checked" not in unchosen.text
    for bad in ("11", "-1", "seven", "9" * 5000):  # mangled on the way: nothing chosen
        page = await api.http.get(f"{token}?answer={bad}")
        assert page.status_code == 200 and "checked" not in page.text
        refused = await api.http.post(f"{token}?answer={bad}")
        assert refused.status_code == 400 and "not on the scale" in refused.text
    unanswered = await api.http.post(token)
    assert unanswered.status_code == 400 and "No answer was chosen" in unanswered.text
    assert answers(acme.h) == []

    # A link from an email sent before: its answer is signed into its token.
    old = signer._survey.dumps(
        {"customer_id": acme.customer_id, "kind": "csat", "value": 2, "survey": "s0"}
    )
    shown = await api.http.get(f"/s/{old}?answer=5")  # the signed answer wins
    assert shown.status_code == 200 and 'value="2" checked' in shown.text
    assert (await api.http.post(f"/s/{old}")).status_code == 200
    assert answers(acme.h) == [("csat", 2.0, "survey:s0:csat")]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the browser adds no SQL
async def test_in_a_browser_the_answer_is_recorded_only_when_confirmed(
    harness: Harness, acme: Lifecycle
) -> None:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    await acme.sign_up()
    address = harness.client.service_client.config.target_host
    app = build_app(harness, temporal_address=address)
    console = ConsoleErrors()
    with serve(app) as base:
        signer = LinkSigner(harness.settings.secret_key, base)
        url = signer.survey_links(acme.customer_id, "nps", "browser-survey")[7]["url"]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS
            )
            page = await browser.new_page()
            console.watch(page)
            response = await page.goto(url)
            assert response is not None and response.ok
            seven = page.get_by_label("7", exact=True)
            assert await seven.is_checked()
            assert answers(harness) == []  # the page is shown; nothing is recorded

            await page.reload()  # and again: still nothing
            assert answers(harness) == []

            await page.get_by_role("button", name="Send my answer").click()
            await page.locator("h1", has_text="Thank you!").wait_for()
            assert answers(harness) == [("nps", 7.0, "survey:browser-survey:nps")]
            await browser.close()
    assert console.take() == []
