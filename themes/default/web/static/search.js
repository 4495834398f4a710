/* The search page: Pagefind's default UI, running the query of ?q= (what the search box of every page sends). */
(function () {
  "use strict";
  var element = document.getElementById("search");
  if (!element) return;
  if (typeof PagefindUI === "undefined") {  // no bundle: a site without a public issue yet
    element.textContent = element.getAttribute("data-empty") || "";
    return;
  }
  // The site may live under a path (https://example.com/news/): results and the bundle are found from this
  // page's own address, not from the host's root.
  var root = new URL(element.getAttribute("data-root") || "../", window.location.href).pathname;
  var ui = new PagefindUI({
    element: "#search",
    bundlePath: new URL(element.getAttribute("data-bundle") || "../pagefind/", window.location.href).pathname,
    baseUrl: root,
    showImages: false,
    showSubResults: true,
    autofocus: true
  });
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) ui.triggerSearch(query);
})();
