"""The dashboard and the customer's pages in a real browser (Debian's chromium through
Playwright), against real lifecycles on the time-skipping server.

Screenshots of every page land in tests/artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from api.main import create_app
from links import LinkSigner
from models.plan import PlanTemplate
from settings import Settings
from tests.api_support import staff_tokens
from tests.browser_support import CHROMIUM_ARGS, ConsoleErrors, chromium_path, serve
from tests.conftest import Harness, Lifecycle
from tests.test_contacts import sign_up
from tests.test_dashboard import SCRIPT, build_app, seed_portfolio, tokens

SHOTS = Path(__file__).parent / "artifacts" / "screenshots"
# How far the page scrolls sideways, and which elements stick out (for the message).
WIDER_THAN_THE_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 0.5)
    .map((el) => `${el.tagName.toLowerCase()}.${el.className.baseVal ?? el.className}`);
  return [document.documentElement.scrollWidth - width, wide.slice(0, 10)];
}"""


class Visit:
    """One browser tab: every page it shows is screenshotted and must log no errors."""

    def __init__(self, page: Any, base: str, console: ConsoleErrors) -> None:
        self.page, self.base, self.console = page, base, console
        console.watch(page)

    async def goto(self, path: str) -> None:
        url = path if path.startswith("http") else self.base + path
        response = await self.page.goto(url)
        assert response is not None and response.ok, f"{url}: {response and response.status}"

    async def check(self, shot: str, status: int | None = None) -> None:
        """Screenshot, and no console errors. A page deliberately answered with an error
        status (a refused form is a 422) is the one line chromium logs for it, no more."""
        await self.page.wait_for_load_state("load")
        await self.page.screenshot(path=str(SHOTS / f"{shot}.png"), full_page=True)
        errors = self.console.take()
        if status is not None:
            expected = (
                f"{self.page.url}: Failed to load resource: "
                f"the server responded with a status of {status}"
            )
            errors = [e for e in errors if not e.startswith(expected)]
        assert errors == [], f"console errors on {shot}"

    async def login(self, token: str) -> None:
        await self.goto("/")
        assert self.page.url.startswith(self.base + "/login")
        await self.page.get_by_label("API token").fill(token)
        await self.page.get_by_role("button", name="Log in").click()
        await self.page.wait_for_url(self.base + "/")


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the browser adds no SQL
async def test_the_dashboard_in_a_browser(
    harness: Harness, default_plan: PlanTemplate, acme: Lifecycle
) -> None:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    SHOTS.mkdir(parents=True, exist_ok=True)
    customers = await seed_portfolio(harness, default_plan)
    await acme.sign_up()
    await acme.advance(hours=1)
    manager = tokens(harness)["manager"]
    # The served app runs on its own thread and event loop: it gets its own Temporal
    # client (to the same test server) rather than sharing the test loop's.
    address = harness.client.service_client.config.target_host
    app = build_app(harness, temporal_address=address)
    console = ConsoleErrors()

    with serve(app) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS
            )
            laptop = Visit(
                await browser.new_page(viewport={"width": 1280, "height": 900}), base, console
            )
            page = laptop.page

            await laptop.goto("/")
            focused = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert focused == "solid"  # the token field has focus, and it shows
            await laptop.check("login")
            await laptop.login(manager)
            assert await page.locator("circle.dot").count() == 4
            await laptop.check("portfolio")

            # A dot is a link to its customer; the name is shown as text, not run.
            happy = customers["happy_profitable"].customer_id
            await page.locator(f'circle.dot[data-customer="{happy}"]').click()
            await page.wait_for_url(f"{base}/app/customers/{happy}")
            assert await page.locator("h1").inner_text() == SCRIPT
            await laptop.check("customer")

            # The kickoff, by keyboard: Enter completes (it does not add a goal), the
            # refusal shows beside the field, then a valid plan goes through.
            await laptop.goto("/app/tasks")
            await laptop.check("tasks")
            kickoff = acme.task_id("kickoff")
            await page.locator(f'a[href="/app/tasks/{kickoff}"]').click()
            await page.get_by_label("What does success look like, in their words?").fill(
                "Every rep logs their calls in Tandem instead of spreadsheets"
            )
            await page.get_by_label("How do they mean to use the product?").fill("Track deals")
            goal = {
                "key": "active_reps",
                "metric": "reps logging calls",
                "baseline": "2",
                "target": "lots",
                "target_date": "2030-06-30",
            }
            for name, value in goal.items():
                await page.locator(f"#goals-0-{name}").fill(value)
            await page.locator("#goals-0-target").press("Enter")
            error = page.locator("#goals-0-target-error")
            await error.wait_for()
            assert "valid number" in await error.inner_text()
            target = page.locator("#goals-0-target")
            assert await target.get_attribute("aria-invalid") == "true"
            # A phone shows its number keys: the attribute as the browser parsed it.
            assert await target.get_attribute("inputmode") == "decimal"
            await laptop.check("kickoff-refused", status=422)
            await page.locator("#goals-0-target").fill("12")
            await page.get_by_role("button", name="Add another goal").click()
            await page.locator("#goals-1-key").wait_for()
            assert await page.locator("#goals-1-key").evaluate("e => e === document.activeElement")
            await laptop.check("kickoff-two-goals")
            await page.get_by_role("button", name="Complete task").click()
            await page.wait_for_url(f"{base}/app/tasks")
            assert "Done:" in await page.locator(".notice").inner_text()
            assert await page.locator(f'a[href="/app/tasks/{kickoff}"]').count() == 0
            assert acme.task_row(kickoff).status == "done"
            await laptop.check("tasks-after-kickoff")

            # Every account is a click away from the navigation, scored or not.
            await page.get_by_role("link", name="Customers").click()
            await page.wait_for_url(f"{base}/app/customers")
            await laptop.check("customers")
            await page.locator(f'a[href="/app/customers/{acme.customer_id}"]').click()
            await page.wait_for_url(f"{base}/app/customers/{acme.customer_id}")

            for path, shot in (
                (f"/app/customers/{acme.customer_id}", "customer-with-plan"),
                ("/app/renewals", "renewals"),
                ("/app/team", "team"),
            ):
                await laptop.goto(path)
                await laptop.check(shot)

            # The customer's side: a one-click survey answer and their own plan page.
            signer = LinkSigner(harness.settings.secret_key, base)
            survey = signer.survey_links(acme.customer_id, "nps", "browser-test")
            await laptop.goto(next(link["url"] for link in survey if link["value"] == 9))
            assert await page.get_by_label("9", exact=True).is_checked()
            await laptop.check("survey-confirm")
            await page.get_by_role("button", name="Send my answer").click()
            await page.locator("h1", has_text="Thank you!").wait_for()
            await laptop.check("survey-thanks")
            await laptop.goto(signer.plan_link(acme.customer_id))
            await page.get_by_label("In your words: what does success with us look like?").fill(
                "All twelve reps log calls daily, and we never open the spreadsheet again"
            )
            await page.get_by_role("button", name="Save in my words").click()
            await page.wait_for_url("**/p/*?saved=true")
            assert "Thank you" in await page.locator(".notice").inner_text()
            await laptop.check("plan-page-saved")
            await laptop.goto(f"/app/customers/{acme.customer_id}")
            assert (
                "never open the spreadsheet again"
                in await page.locator("blockquote").first.inner_text()
            )

            await page.get_by_role("button", name="Log out").click()
            await page.wait_for_url(f"{base}/login")
            await laptop.check("logged-out")

            # A phone: the portfolio wraps instead of scrolling sideways.
            phone = Visit(
                await browser.new_page(viewport={"width": 390, "height": 844}), base, console
            )
            await phone.login(manager)
            assert await phone.page.locator("circle.dot").count() == 4
            overflow, wide = await phone.page.evaluate(WIDER_THAN_THE_SCREEN)
            assert overflow <= 0, f"the portfolio scrolls sideways by {overflow}px: {wide}"
            await phone.check("portfolio-390")
            open_kickoff = customers["unhappy_profitable"].task_id("kickoff")
            phone_pages = {
                f"/app/tasks/{open_kickoff}": "task-390",
                f"/app/customers/{happy}": "customer-390",
                "/app/team": "team-390",
            }
            for path, shot in phone_pages.items():
                await phone.goto(path)
                await phone.check(shot)
            await browser.close()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_adding_a_contact_in_a_browser(engine: Engine, settings: Settings) -> None:
    """The customer page's add form, as a person uses it: an address already on the
    account is refused beside its field, then the contact is added and listed (no
    JavaScript involved)."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    SHOTS.mkdir(parents=True, exist_ok=True)
    sign_up(engine)  # Acme, with Dana
    manager = staff_tokens(engine)["manager"]
    # Adding a contact needs no lifecycle: no Temporal to reach.
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:9"}), engine)
    with serve(app) as base:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS
            )
            visit = Visit(await browser.new_page(), base, ConsoleErrors())
            page = visit.page
            await visit.login(manager)
            await visit.goto("/app/customers/acme")
            await page.get_by_label("Name", exact=True).fill("Walt Kowalski")
            await page.get_by_label("Email", exact=True).fill("Dana@acme.test")
            await page.get_by_label("executive sponsor").last.check()
            await page.get_by_role("button", name="Add contact").click()
            error = page.locator("#contact-email-error")
            await error.wait_for()
            assert "already a contact" in await error.inner_text()  # Dana's address
            await visit.check("contact-refused", status=422)
            await page.get_by_label("Email", exact=True).fill("walt@acme.test")
            await page.get_by_role("button", name="Add contact").click()
            await page.wait_for_url(f"{base}/app/customers/acme#contacts-heading")
            assert "Added Walt Kowalski" in await page.locator(".notice").inner_text()
            listed = page.locator("ul.contacts > li", has_text="walt@acme.test")
            assert "executive sponsor" in await listed.inner_text()
            await visit.check("contact-added")
            # Their own opt-out, from the form folded under their name.
            await listed.locator("summary").click()
            await listed.get_by_role("button", name="Opt out of automated email").click()
            # The same address as before: the new page is known by its notice.
            await page.locator(".notice", has_text="Saved: Walt Kowalski").wait_for()
            listed = page.locator("ul.contacts > li", has_text="walt@acme.test")
            assert "unsubscribed" in await listed.locator("small").inner_text()
            await visit.check("contact-opted-out")
            await browser.close()
