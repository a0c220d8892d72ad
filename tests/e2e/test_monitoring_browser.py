"""End-to-end: IT staff watch a switch go down on the live dashboard (refreshed by htmx, no reload),
open its device page with the latency chart drawn by the vendored Chart.js, and follow its incident
ticket. No console errors and no Content-Security-Policy violations (checked by the console fixture)."""
import socket
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring import poll, services

pytestmark = pytest.mark.e2e


def _cycle(now):
    poll.run_cycle(now=now)
    db.session.commit()


def test_it_staff_watch_a_switch_go_down_and_follow_its_incident(page: Page, session_for, make_user, make_asset):
    tess = make_user("it_staff", "tess", display_name="Tess Tech")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    switch = make_asset("switch", name="core-sw1", management_address="127.0.0.1", location="HQ, rack 3")
    server = make_asset("router", name="edge-r1", management_address="127.0.0.1")
    for asset in (switch, server):
        services.add_check(asset.id, "tcp", params={"port": port}, interval_seconds=60, timeout_seconds=1, by=tess)
    db.session.commit()
    now = utcnow()
    _cycle(now)

    session_for(tess)
    page.goto("/monitoring/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Monitoring")
    board = page.locator("#board")
    expect(board.get_by_role("link", name="core-sw1")).to_be_visible()
    expect(board.locator(".health-row-up")).to_have_count(2)

    # The switch stops answering; three failed polls later it is down, and the board shows it by itself.
    listener.close()
    for step in range(1, 4):
        _cycle(now + timedelta(seconds=61 * step))
    with page.expect_response(lambda response: "/monitoring/board" in response.url, timeout=20_000):
        pass
    expect(board.locator(".health-row-down")).to_have_count(2)
    expect(board.get_by_role("link", name="#", exact=False).first).to_be_visible()
    page.screenshot(path="test-artifacts/screenshots/monitoring-dashboard.png", full_page=True)

    board.get_by_role("link", name=f"{switch.tag} · core-sw1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{switch.tag} · core-sw1")
    expect(page.get_by_text("Down", exact=True).first).to_be_visible()
    chart = page.locator("canvas.health-chart").first
    page.wait_for_function("(c) => window.Chart && Chart.getChart(c) !== undefined", arg=chart.element_handle())
    page.get_by_role("button", name="1h").click()
    page.screenshot(path="test-artifacts/screenshots/monitoring-device.png", full_page=True)

    page.get_by_role("link", name="#", exact=False).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("core-sw1 is down")
