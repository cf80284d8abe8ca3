"""Checks every page of a browser walk passes: it fits the window (nothing scrolls
sideways), and axe-core finds no WCAG A/AA violation (contrast, labels, names, ...).

axe-core is vendored under tests/e2e/vendor/axe-core/ (see its README) and evaluated in the
page through the browser's DevTools protocol, which the pages' Content-Security-Policy does
not apply to: no network, and the pages under test are not changed to allow it.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
#: The WCAG 2.1 A and AA rules: colour contrast, form labels, names of buttons and links,
#: and the rest of what a machine can tell.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source() + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        """async (tags) => {
            // Messages fade away after a while: judge them as they are read, not mid-fade.
            document.getAnimations().forEach((a) => a.cancel());
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags},
                                               resultTypes: ["violations"]});
            return {violations: r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(" "),
                                         summary: n.failureSummary}))}))};
        }""",
        WCAG_TAGS,
    )
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {node['target']}: {node['summary']}")
    return "\n".join(lines)


def sideways_overflow(page: Page) -> tuple[int, int]:
    """The page's scroll width and the window's width."""
    sizes: list[int] = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return sizes[0], sizes[1]


def check_page(page: Page, where: str) -> None:
    """The page fits the window and has no WCAG A/AA violation axe can find."""
    scroll, client = sideways_overflow(page)
    assert scroll <= client, f"{where}: the page is {scroll}px wide in a {client}px window"
    violations = axe_violations(page)
    assert not violations, f"{where} ({page.url}): accessibility violations\n" + describe(
        violations
    )


_CONTRAST_JS = """(el) => {
    const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
        const f = (c) => {
            c /= 255;
            return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
        };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bg = el, colour = getComputedStyle(el).backgroundColor;
    while (bg && /rgba\\(.*,\\s*0\\)|transparent/.test(colour)) {
        bg = bg.parentElement;
        colour = bg ? getComputedStyle(bg).backgroundColor : "rgb(255, 255, 255)";
    }
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(colour))].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
}"""


def contrast_of(page: Page, selector: str) -> float:
    """The contrast of an element's text on its background: for text axe leaves alone
    (it does not judge a single character, such as the cart badge's "0")."""
    return float(page.locator(selector).first.evaluate(_CONTRAST_JS))
