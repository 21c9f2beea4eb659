// Artifacts: times in the reader's own time zone. The server writes every moment in UTC,
//   <time datetime="2025-11-30T12:00:00+00:00" title="2025-11-30 12:00:00 UTC">2025-11-30 12:00 UTC</time>
// and this rewrites the text to local time ("2025-11-30 13:00 CET"), keeping the UTC time in the title,
// for hover. A relative time ("3 hours ago") keeps its words; its title gains the local time.
// Without JavaScript the UTC text stays, which is still right. Loaded with defer; no inline handlers.
(function () {
  "use strict";

  // The server's own layout of an absolute time: to the minute or to the second, then " UTC".
  const UTC_TEXT = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})? UTC$/;

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  // The zone's short name ("CET", "GMT+5:30", "UTC") at that moment, so summer time reads right.
  function zoneName(moment) {
    const parts = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(moment);
    const zone = parts.find(function (part) { return part.type === "timeZoneName"; });
    return zone ? zone.value : "";
  }

  // Local time in the same layout as the server's UTC text.
  function localText(moment, seconds) {
    const text = moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
      " " + pad(moment.getHours()) + ":" + pad(moment.getMinutes()) + (seconds ? ":" + pad(moment.getSeconds()) : "");
    return text + " " + zoneName(moment);
  }

  function utcText(moment) {
    return moment.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function localize(element) {
    if (element.hasAttribute("data-local-done")) return;
    const iso = element.getAttribute("datetime");
    // Only a full moment with its offset: a bare date ("2025-11-30") is a day, not a time to convert.
    if (!iso || !/T\d{2}:\d{2}/.test(iso) || !/(Z|[+-]\d{2}:?\d{2})$/.test(iso)) return;
    const moment = new Date(iso);
    if (isNaN(moment.getTime())) return;
    element.setAttribute("data-local-done", "");
    const shown = element.textContent.trim();
    if (!element.title) element.title = utcText(moment);
    if (UTC_TEXT.test(shown)) {
      element.textContent = localText(moment, shown.length > "2025-11-30 12:00 UTC".length);
    } else if (!/ UTC$/.test(shown)) {
      // Words such as "3 hours ago": the hover says when that was here, and in UTC.
      element.title = localText(moment, true) + " (" + element.title + ")";
    }
  }

  function localizeWithin(root) {
    if (root instanceof Element && root.matches("time[datetime]")) localize(root);
    for (const element of root.querySelectorAll("time[datetime]")) localize(element);
  }

  document.addEventListener("DOMContentLoaded", function () { localizeWithin(document); });
  // Content htmx swaps in (list pages, refreshed rows, tab panels) arrives in UTC like the page did.
  document.addEventListener("htmx:load", function (event) {
    if (event.detail && event.detail.elt instanceof Element) localizeWithin(event.detail.elt);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    const target = event.detail && event.detail.target;
    localizeWithin(target instanceof Element && target.isConnected ? target : document);
  });
})();
