// papers-kb: make the content tables sortable (vendored tablesort, no network).
// Material re-emits document$ on every page load; without instant navigation that is once.
(function () {
  "use strict";

  function sortable(root) {
    var tables = root.querySelectorAll("article table:not([class])");
    for (var i = 0; i < tables.length; i++) {
      var table = tables[i];
      // A one-row table (a fact sheet) has nothing to sort.
      if (table.tBodies.length && table.tBodies[0].rows.length > 1 && !table.hasAttribute("data-kb-sortable")) {
        table.setAttribute("data-kb-sortable", "");
        new Tablesort(table);
      }
    }
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(function () { sortable(document); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { sortable(document); });
  }
})();
