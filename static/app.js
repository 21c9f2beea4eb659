// Artifacts: the little behaviour htmx does not cover. Loaded with defer; no inline handlers.
(function () {
  "use strict";

  function tabsOf(tab) {
    return Array.from(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
  }

  function panelOf(tab) {
    return document.getElementById(tab.getAttribute("aria-controls"));
  }

  // Select a tab and show its panel (WAI-ARIA tabs pattern).
  function activate(tab) {
    for (const other of tabsOf(tab)) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      const panel = panelOf(other);
      if (panel) panel.hidden = !selected;
    }
  }

  function tabFromEvent(event) {
    const target = event.target;
    return target instanceof Element ? target.closest("[role=tab]") : null;
  }

  // A panel holds one view of its output, rendered or raw (the server sends only that one); the
  // address says which: ?view=raw, or nothing for rendered.
  function viewOf(panel) {
    const views = panel.querySelector(".view-switch");
    return views ? views.dataset.view : null;
  }

  function viewIn(url) {
    return url.searchParams.get("view") === "raw" ? "raw" : "rendered";
  }

  function addressOf(tab) {
    const url = new URL(tab.href);
    if (viewOf(panelOf(tab)) === "raw") url.searchParams.set("view", "raw");
    return url.href;
  }

  // A panel already loaded is shown again, in the view it was left in, without asking the server
  // a second time; the view it already shows is not asked for again either.
  document.addEventListener("htmx:confirm", function (event) {
    const target = event.target;
    if (target instanceof Element && target.matches(".view-switch a[aria-current=true]")) {
      event.preventDefault();
      return;
    }
    const tab = tabFromEvent(event);
    if (!tab) return;
    const panel = panelOf(tab);
    if (panel && panel.classList.contains("loaded")) {
      event.preventDefault();
      if (tab.getAttribute("aria-selected") !== "true") {
        activate(tab);
        history.replaceState({ htmx: true }, "", location.href);
        history.pushState({ htmx: true }, "", addressOf(tab));
      }
      return;
    }
    activate(tab);
  });

  // A panel that arrives is said aloud by name ("Step 3 · Reviewer loaded"), not read out whole.
  function announce(text) {
    const status = document.getElementById("live-status");
    if (status) status.textContent = text;
  }

  // A view switched to keeps the keyboard where it was: on the switch, now at the view shown.
  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail && event.detail.target;
    if (!target || target.getAttribute("role") !== "tabpanel") return;
    target.classList.add("loaded");
    const tab = document.getElementById(target.getAttribute("aria-labelledby"));
    const title = tab && tab.querySelector(".step-title");
    const name = tab && tab.dataset.name ? tab.dataset.name
      : title ? (tab.id === "tab-final" ? "" : "Step ") + title.textContent : "";
    const config = event.detail.requestConfig;
    const source = config && config.elt;
    if (source instanceof Element && source.matches(".view-switch a")) {
      const current = target.querySelector(".view-switch a[aria-current=true]");
      if (current) current.focus();
      if (name) announce(name + (viewOf(target) === "raw" ? " loaded as raw text" : " loaded as rendered markdown"));
    } else if (name) {
      announce(name + " loaded");
    }
  });

  // Back and forward between tabs and views of this page: switch locally when the panel is loaded,
  // and fetch only the panel when it shows the other view.
  document.addEventListener("htmx:historyCacheMiss", function (event) {
    const url = new URL(event.detail.path, location.origin);
    const tablist = document.querySelector("[role=tablist]");
    if (!tablist || url.pathname !== location.pathname) return;
    const key = url.searchParams.get("tab") || "final";
    const tab = document.getElementById("tab-" + key);
    const panel = tab && panelOf(tab);
    if (panel && panel.classList.contains("loaded")) {
      event.preventDefault();
      activate(tab);
      // Only a panel with views (a run's output, not a comparison's diff) can show the other one.
      const shown = viewOf(panel);
      if (shown && shown !== viewIn(url)) {
        htmx.ajax("GET", url.pathname + url.search, { source: panel, target: panel, swap: "innerHTML" });
      }
    }
  });

  // Arrows, Home and End move between tabs (Up/Down too: the navigator is vertical on wide screens);
  // moving selects (automatic activation).
  document.addEventListener("keydown", function (event) {
    const tab = tabFromEvent(event);
    if (!tab) return;
    const tabs = tabsOf(tab);
    const index = tabs.indexOf(tab);
    const moves = {
      ArrowRight: (index + 1) % tabs.length,
      ArrowDown: (index + 1) % tabs.length,
      ArrowLeft: (index - 1 + tabs.length) % tabs.length,
      ArrowUp: (index - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[moves[event.key]];
    next.focus();
    next.click();
    next.scrollIntoView({ block: "nearest", inline: "nearest" });
  });

  // A page opened on a tab far along its navigator (?tab=step-30, or a comparison's late pair)
  // shows that tab: the navigator scrolls, not the page.
  document.addEventListener("DOMContentLoaded", function () {
    for (const tab of document.querySelectorAll("[role=tablist] [role=tab][aria-selected=true]")) {
      const list = tab.closest("[role=tablist]");
      const box = list.getBoundingClientRect();
      const place = tab.getBoundingClientRect();
      list.scrollTop += place.top - box.top - (box.height - place.height) / 2;
      list.scrollLeft += place.left - box.left - (box.width - place.width) / 2;
    }
  });

  // A tab whose request failed says so in its panel, with a Retry button, instead of "Loading…":
  // the server's own message when it answered (its error fragment is swapped in), ours when not.
  // A view's request fails the same way, inside its panel.
  document.addEventListener("htmx:afterRequest", function (event) {
    const config = event.detail.requestConfig;
    const elt = config ? config.elt : event.detail.elt;
    if (!(elt instanceof Element)) return;
    const panel = elt.getAttribute("role") === "tab" ? panelOf(elt) : elt.closest("[role=tabpanel]");
    if (!panel) return;
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    // A request that never got an answer has no "failed" flag, only status 0.
    if (!(event.detail.failed || status === 0 || status >= 400)) return;
    const tab = document.getElementById(panel.getAttribute("aria-labelledby"));
    const box = document.createElement("div");
    box.className = "panel-failed";
    box.setAttribute("role", "alert");
    const text = document.createElement("p");
    text.textContent = status
      ? "This output could not be loaded (the server answered " + status + ")."
      : "This output could not be loaded: the server did not answer.";
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry-button";
    retry.textContent = "Retry";
    retry.dataset.tab = tab ? tab.id : "";
    retry.dataset.url = config ? config.path : tab.getAttribute("hx-get");
    box.append(text, retry);
    panel.prepend(box);
    for (const loading of panel.querySelectorAll(".panel-loading")) loading.remove();
    panel.classList.remove("loaded");
  });
  document.addEventListener("click", function (event) {
    const retry = event.target instanceof Element ? event.target.closest(".retry-button") : null;
    const tab = retry && document.getElementById(retry.dataset.tab);
    if (!tab) return;
    const panel = panelOf(tab);
    panel.replaceChildren(Object.assign(document.createElement("p"), { className: "panel-loading", textContent: "Loading…" }));
    htmx.ajax("GET", retry.dataset.url || tab.getAttribute("hx-get"), { source: tab, target: panel, swap: "innerHTML" });
  });

  // Copy buttons need JavaScript, so they stay hidden without it.
  function revealCopyButtons(root) {
    for (const button of root.querySelectorAll(".copy-button[hidden]")) button.hidden = false;
  }
  document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt instanceof Element) revealCopyButtons(event.detail.elt);
  });

  // Copy copies the whole output, always fetched from its plain-text download: the page holds
  // only the view shown, and of a long output only its start. The button says what it is doing.
  function say(button, label, restore) {
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = label;
    if (restore) setTimeout(function () { button.textContent = original; button.disabled = false; }, 2000);
  }

  function wholeText(button) {
    return fetch(button.dataset.full, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("status " + response.status);
      return response.text();
    });
  }

  document.addEventListener("click", function (event) {
    const button = event.target instanceof Element ? event.target.closest(".copy-button") : null;
    if (!button || button.disabled || !navigator.clipboard) return;
    button.disabled = true;
    say(button, "truncated" in button.dataset ? "Copying the whole output…" : "Copying…", false);
    const text = wholeText(button);
    // A ClipboardItem takes the text while it is still on its way, so the copy keeps the click's
    // permission however long the download takes; writeText is the fallback where it is missing.
    const written = typeof ClipboardItem === "function"
      ? navigator.clipboard.write([new ClipboardItem({
          "text/plain": text.then(function (value) { return new Blob([value], { type: "text/plain" }); }),
        })])
      : text.then(function (value) { return navigator.clipboard.writeText(value); });
    written.then(
      function () { say(button, "Copied", true); },
      function () { say(button, "Copy failed", true); }
    );
  });

  // ---- The run list

  // With JavaScript a filter applies as soon as it changes, so the Apply button can step aside
  // (a class, not an inline style: the CSP allows neither).
  document.documentElement.classList.add("js");

  // Empty fields ("any status", a cleared date) stay out of the request and the pushed address.
  document.addEventListener("htmx:configRequest", function (event) {
    const detail = event.detail;
    if (detail.verb !== "get" || !detail.formData) return;
    const data = detail.formData;
    for (const name of Array.from(new Set(data.keys()))) {
      const values = data.getAll(name).filter(function (value) { return value !== ""; });
      data.delete(name);
      for (const value of values) data.append(name, value);
    }
  });

  // A date preset fills in both dates and applies them like any other change; without
  // JavaScript it is a plain link to the same list.
  document.addEventListener("click", function (event) {
    const preset = event.target instanceof Element ? event.target.closest("a.preset") : null;
    if (!preset) return;
    const form = document.getElementById("filters");
    if (!form) return;
    event.preventDefault();
    form.elements.namedItem("from").value = preset.dataset.from;
    form.elements.namedItem("to").value = preset.dataset.to;
    for (const other of form.querySelectorAll("a.preset")) other.removeAttribute("aria-current");
    preset.setAttribute("aria-current", "true");
    form.elements.namedItem("to").dispatchEvent(new Event("change", { bubbles: true }));
  });

  // A menu's summary says how many of its values are chosen.
  document.addEventListener("change", function (event) {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
    const menu = box.closest("details.menu");
    const count = menu && menu.querySelector(".menu-count");
    if (!count) return;
    const chosen = menu.querySelectorAll("input[type=checkbox]:checked").length;
    count.textContent = chosen ? "· " + chosen : "";
  });

  // An open menu closes when the person clicks elsewhere or presses Escape.
  document.addEventListener("click", function (event) {
    for (const menu of document.querySelectorAll("details.menu[open]")) {
      if (!(event.target instanceof Node) || !menu.contains(event.target)) menu.open = false;
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const menu = event.target instanceof Element ? event.target.closest("details.menu[open]") : null;
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });

  // A run that refreshes itself and is gone (deleted elsewhere) leaves the list instead of
  // turning into an error message in the middle of the table.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const elt = event.detail.elt;
    if (elt instanceof Element && elt.matches("tr.run-row") && event.detail.xhr.status === 404) {
      event.detail.shouldSwap = false;
      elt.remove();
    }
  });

  // Keep my place: the address says how many rows were loaded (shown=N, set by the server), and
  // the run last opened from the list is scrolled back into view and focused on Back or reload.
  const LAST_RUN = "artifacts:last-run";

  // The list a row was opened from, however far it had been loaded (more rows may arrive and
  // move shown=N on while the run's page opens).
  function listKey(href) {
    const url = new URL(href, location.origin);
    url.searchParams.delete("shown");
    return url.pathname + "?" + url.searchParams.toString();
  }

  document.addEventListener("click", function (event) {
    const link = event.target instanceof Element ? event.target.closest("tr.run-row a.row-link") : null;
    if (!link) return;
    try {
      sessionStorage.setItem(LAST_RUN, JSON.stringify({
        page: listKey(location.href), row: link.closest("tr").id,
      }));
    } catch (error) { /* storage refused (private mode): nothing to restore, nothing broken */ }
  });

  function returning() {
    const entry = performance.getEntriesByType("navigation")[0];
    return !entry || entry.type === "back_forward" || entry.type === "reload";
  }

  function restorePlace() {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(LAST_RUN) || "null"); } catch (error) { return; }
    if (!saved || saved.page !== listKey(location.href) || !returning()) return;
    const row = document.getElementById(saved.row);
    const link = row && row.querySelector("a.row-link");
    if (!link) return;
    row.scrollIntoView({ block: "center" });
    link.focus({ preventScroll: true });
  }
  document.addEventListener("DOMContentLoaded", restorePlace);
  window.addEventListener("pageshow", function (event) { if (event.persisted) restorePlace(); });


  // Ticking runs in the list: say how many, offer Delete only when some are ticked and Compare
  // when two are.
  function countSelected() {
    const form = document.getElementById("selection");
    if (!form) return;
    const ticked = document.querySelectorAll("input[form=selection][name=id]:checked").length;
    form.querySelector(".selected-count").textContent = ticked ? ticked + " selected" : "";
    form.querySelector(".delete-selected").disabled = ticked === 0;
    form.querySelector(".compare-selected").disabled = ticked !== 2;
  }
  document.addEventListener("change", function (event) {
    if (event.target instanceof Element && event.target.matches("input[form=selection]")) countSelected();
  });
  document.addEventListener("DOMContentLoaded", countSelected);
  document.addEventListener("htmx:afterSettle", countSelected);

  // The confirmation above the list: Cancel closes it and focus goes back to the button; when it
  // opens, focus moves to its Delete button.
  document.addEventListener("click", function (event) {
    const cancel = event.target instanceof Element ? event.target.closest("#confirm-area .cancel-delete") : null;
    if (!cancel) return;
    event.preventDefault();
    document.getElementById("confirm-area").replaceChildren();
    const button = document.querySelector("#selection .delete-selected");
    if (button) button.focus();
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "confirm-area") {
      const confirm = event.detail.target.querySelector("button.danger");
      if (confirm) confirm.focus();
    }
  });
})();
