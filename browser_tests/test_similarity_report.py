"""The similarity report (make similarity) opened in Chromium: the sample class of 73, a classmate who
copied aoki's backward_pass with other names and comments, one with a hostile name, and a renamed
notebook. Screenshot: build/screenshots/similarity-report.png."""
import re
import shutil

from conftest import screenshot
from coursetools import similarity
from coursetools.common import ROOT

ASSIGNMENT = "73_backprop_scalar"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)<\\script>"
RENAMES = {"node": "n", "nodes": "seen", "stack": "todo", "waiting": "pending", "parent": "p", "ready": "queue",
           "key": "k"}


def _disguised_copy(text: str) -> str:
    """aoki's notebook with backward_pass's variables renamed and its comments rewritten."""
    start, end = text.index("def backward_pass"), text.index("class Exp(Operation)")
    part = re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group(1)], text[start:end])
    part = re.sub(r"# [^\"]*?(\\n)", r"# 自分で考えた\1", part)
    return text[:start] + part + text[end:]


def test_similarity_report_in_the_browser(page, tmp_path):
    sample = ROOT / "examples" / "submitted"
    submitted = tmp_path / "course" / "submitted"
    for student in ("aoki", "baba", "chiba"):
        shutil.copytree(sample / student / ASSIGNMENT, submitted / student / ASSIGNMENT)
    aoki = (sample / "aoki" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text(encoding="utf-8")
    (submitted / "daisuke" / ASSIGNMENT).mkdir(parents=True)
    (submitted / "daisuke" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(_disguised_copy(aoki), encoding="utf-8")
    shutil.copytree(sample / "chiba" / ASSIGNMENT, submitted / HOSTILE / ASSIGNMENT)
    (submitted / "ema" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(sample / "chiba" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                submitted / "ema" / ASSIGNMENT / f"{ASSIGNMENT} (1).ipynb")
    out = tmp_path / "report"
    assert similarity.main(["--course", str(tmp_path / "course"), "--out", str(out), ASSIGNMENT]) == 0

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto((out / "similarity.html").as_uri())
    page.wait_for_selector("h1")
    pair = page.locator("details[open]").first
    assert "aoki ↔ daisuke" in pair.locator("summary").inner_text()
    assert pair.locator(".l.m").count() >= 10, "the copied lines are not highlighted"
    assert page.get_by_text("above independent").count() >= 1
    assert page.locator("td", has_text=HOSTILE).count() >= 1, "the hostile name is not shown as text"
    assert page.locator("td", has_text="compared anyway").count() == 1
    assert dialogs == [] and page.evaluate("document.querySelectorAll('script, img').length") == 0
    page.evaluate("""() => {  // scroll to the heading of the exercise with the open pair
        let el = document.querySelector('details[open]');
        while (el && el.tagName !== 'H3') el = el.previousElementSibling;
        el.scrollIntoView();
    }""")
    screenshot(page, "similarity-report")
