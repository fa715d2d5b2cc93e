"""Small helpers for driving JupyterLab 4 from Playwright."""
from __future__ import annotations

WAIT_IDLE = """([minExecuted, wholeNotebook]) => {
    // Judged on the notebook model, not the DOM: JupyterLab 4 does not render cells outside the
    // viewport. Done = kernel idle for 0.7 s, enough cells executed, and (for Run All) every code
    // cell executed or the run stopped at an error.
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    let done = !!kernel && kernel.status === 'idle';
    if (done) {
        const cells = w.content.model.cells;
        let total = 0, executed = 0, errored = false;
        for (let i = 0; i < cells.length; i++) {
            const cell = cells.get(i);
            if (cell.type !== 'code') continue;
            total += 1;
            if (cell.executionCount) executed += 1;
            if (cell.outputs.toJSON().some(o => o.output_type === 'error')) errored = true;
        }
        done = executed >= minExecuted && (!wholeNotebook || executed === total || errored);
    }
    if (!done) { window.__idleSince = null; return false; }
    window.__idleSince = window.__idleSince || Date.now();
    return Date.now() - window.__idleSince > 700;
}"""


def command(page, name: str, args: dict | None = None):
    """Execute a JupyterLab command (what a menu item or a shortcut does)."""
    page.evaluate("([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}])


def open_menu(page, menu: str, item: str):
    """Click a menu of JupyterLab's menu bar, then one of its items."""
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(".lm-Menu .lm-Menu-item", has_text=item).first.click()


def open_notebook(page, lab, name: str):
    page.goto(lab.url(f"/lab/tree/{name}"))
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="visible", timeout=60_000)
    page.wait_for_function(WAIT_IDLE, arg=[0, False], timeout=60_000)


def code_cell_count(page) -> int:
    return page.evaluate("""() => {
        const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
        let n = 0;
        for (let i = 0; i < cells.length; i++) if (cells.get(i).type === 'code') n += 1;
        return n;
    }""")


STARTED = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    if (kernel && kernel.status === 'busy') return true;
    const cells = w ? w.content.model.cells : null;
    for (let i = 0; cells && i < cells.length; i++) if (cells.get(i).executionCount) return true;
    return false;
}"""


def run_all(page, min_executed: int = 1, timeout_s: int = 120):
    command(page, "notebook:run-all-cells")
    page.wait_for_timeout(500)
    try:
        page.wait_for_function(STARTED, timeout=20_000)
    except Exception:  # noqa: BLE001 - once (make test-browser, 70 after 73) the run had not finished after 120 s: retry if nothing started
        command(page, "notebook:run-all-cells")
    page.wait_for_function(WAIT_IDLE, arg=[min_executed, True], timeout=timeout_s * 1000)


def replace_cell_source(page, containing: str, code: str):
    """Click into the code cell that contains `containing`, select all and type `code`."""
    cell = page.locator(".jp-NotebookPanel .jp-CodeCell", has_text=containing).first
    cell.scroll_into_view_if_needed()
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)
    return cell


def run_cells_from_editor(page, count: int):
    """Shift+Enter `count` times from the cell being edited (run and move on)."""
    for _ in range(count):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(200)
    page.wait_for_function(WAIT_IDLE, arg=[1, False], timeout=60_000)


def validate(page) -> str:
    """Press nbgrader's Validate button; return 'success', 'failed' or the error dialog's text."""
    button = page.locator(".validate-button button, button.validate-button").first
    try:
        button.wait_for(state="visible", timeout=20_000)
    except Exception:
        raise AssertionError("nbgrader's Validate button is missing from the notebook toolbar: "
                             "is the @jupyter/nbgrader:validate-assignment Lab plugin enabled?") from None
    button.click()
    dialog = page.locator(".jp-Dialog").last
    dialog.wait_for(state="visible", timeout=120_000)
    message = page.locator("#validation-message")
    try:
        message.wait_for(state="attached", timeout=120_000)
    except Exception:
        return "error: " + dialog.inner_text()
    classes = message.get_attribute("class") or ""
    if "validation-success" in classes:
        return "success"
    if "validation-failed" in classes:
        return "failed"
    return "other: " + (classes or dialog.inner_text())


def close_dialog(page):
    page.locator(".jp-Dialog .jp-mod-accept").first.click()
    page.locator(".jp-Dialog").wait_for(state="detached")


def image_output_count(page) -> int:
    """PNG outputs in the open notebook's model (cells outside the viewport are not in the DOM)."""
    return page.evaluate("""() => {
        const model = window.jupyterapp.shell.currentWidget.content.model;
        let n = 0;
        for (let i = 0; i < model.cells.length; i++) {
            const cell = model.cells.get(i);
            if (cell.type !== 'code') continue;
            for (const out of cell.outputs.toJSON()) {
                if (out.data && out.data['image/png']) n += 1;
            }
        }
        return n;
    }""")
