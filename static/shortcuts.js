// Artifacts: keyboard shortcuts. In the list, j and k move between runs and Enter opens one (the
// focused row's link); on a run's page, [ and ] select the previous and next step; / goes to the
// search box; ? lists them in a dialog. None acts while someone types in a field, or with Ctrl,
// Meta or Alt held (those belong to the browser). Loaded with defer; no inline handlers.
(function () {
  "use strict";

  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])")) return true;
    return target instanceof HTMLElement && target.isContentEditable;
  }

  // ---- j / k: the list's rows (each row's link is what takes focus; Enter then opens it natively)

  function rowLinks() {
    return Array.from(document.querySelectorAll("tr.run-row a.row-link"));
  }

  function moveRow(step) {
    const links = rowLinks();
    if (!links.length) return false;
    const row = document.activeElement instanceof Element ? document.activeElement.closest("tr.run-row") : null;
    const current = row ? links.indexOf(row.querySelector("a.row-link")) : -1;
    const next = current === -1 ? 0 : Math.min(Math.max(current + step, 0), links.length - 1);
    links[next].focus({ preventScroll: true });
    links[next].closest("tr").scrollIntoView({ block: "nearest" });
    return true;
  }

  // ---- [ / ]: the page's tabs (the run's steps), through the same click a pointer would make

  function moveTab(step) {
    const tablist = document.querySelector("[role=tablist]");
    if (!tablist) return false;
    const tabs = Array.from(tablist.querySelectorAll("[role=tab]")).filter(function (tab) {
      return tab.getAttribute("aria-disabled") !== "true" && !tab.hidden;
    });
    if (!tabs.length) return false;
    const selected = tabs.findIndex(function (tab) { return tab.getAttribute("aria-selected") === "true"; });
    const next = Math.min(Math.max((selected === -1 ? 0 : selected) + step, 0), tabs.length - 1);
    if (next === selected) return true;  // at the first or last step already
    tabs[next].click();
    tabs[next].focus({ preventScroll: true });
    return true;
  }

  // ---- /: the search box

  function focusSearch() {
    const box = document.querySelector("[role=search] input, input[type=search]");
    if (!box) return false;
    box.focus();
    box.select();
    return true;
  }

  // ---- ?: the dialog that lists them; Escape closes it, and focus goes back where it was

  let returnFocus = null;

  function dialog() {
    return document.getElementById("shortcuts");
  }

  function openHelp() {
    const help = dialog();
    if (!help || typeof help.showModal !== "function") return false;
    if (help.open) return true;
    returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    help.showModal();
    return true;
  }

  document.addEventListener("close", function (event) {
    if (event.target !== dialog()) return;
    const back = returnFocus;
    returnFocus = null;
    if (back && back.isConnected) back.focus({ preventScroll: true });
  }, true);

  document.addEventListener("click", function (event) {
    const button = event.target instanceof Element ? event.target.closest("#shortcuts-button") : null;
    if (button) openHelp();
  });

  document.addEventListener("DOMContentLoaded", function () {
    const button = document.getElementById("shortcuts-button");
    if (button && dialog() && typeof dialog().showModal === "function") button.hidden = false;
  });

  const ACTIONS = {
    j: function () { return moveRow(1); },
    k: function () { return moveRow(-1); },
    "[": function () { return moveTab(-1); },
    "]": function () { return moveTab(1); },
    "/": focusSearch,
    "?": openHelp,
  };

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (!Object.prototype.hasOwnProperty.call(ACTIONS, event.key)) return;
    const help = dialog();
    if (help && help.open) return;  // the dialog is modal: only its own keys (Tab, Escape) apply
    if (typing(event.target)) return;
    if (ACTIONS[event.key]()) event.preventDefault();
  });
})();
