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

  // A panel already loaded is shown again without asking the server a second time.
  document.addEventListener("htmx:confirm", function (event) {
    const tab = tabFromEvent(event);
    if (!tab) return;
    const panel = panelOf(tab);
    if (panel && panel.classList.contains("loaded")) {
      event.preventDefault();
      if (tab.getAttribute("aria-selected") !== "true") {
        activate(tab);
        history.replaceState({ htmx: true }, "", location.href);
        history.pushState({ htmx: true }, "", tab.href);
      }
      return;
    }
    activate(tab);
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail && event.detail.target;
    if (target && target.getAttribute("role") === "tabpanel") target.classList.add("loaded");
  });

  // Back and forward between tabs of this page: switch locally when the panel is loaded.
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
    }
  });

  // Left/Right/Home/End move between tabs; moving selects (automatic activation).
  document.addEventListener("keydown", function (event) {
    const tab = tabFromEvent(event);
    if (!tab) return;
    const tabs = tabsOf(tab);
    const index = tabs.indexOf(tab);
    const moves = {
      ArrowRight: (index + 1) % tabs.length,
      ArrowLeft: (index - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[moves[event.key]];
    next.focus();
    next.click();
  });

  // Copy buttons need JavaScript, so they stay hidden without it.
  function revealCopyButtons(root) {
    for (const button of root.querySelectorAll(".copy-button[hidden]")) button.hidden = false;
  }
  document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  document.addEventListener("htmx:load", function (event) {
    if (event.detail.elt instanceof Element) revealCopyButtons(event.detail.elt);
  });

  document.addEventListener("click", function (event) {
    const button = event.target instanceof Element ? event.target.closest(".copy-button") : null;
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
})();
