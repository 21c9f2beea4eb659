// Artifacts: the little behaviour htmx does not cover. Loaded with defer; no inline handlers.
