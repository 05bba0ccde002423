// The dashboard's charts, each drawn once with the plotly.js this page loads in its head.
// A chart output is a placeholder carrying the figure's JSON and a call to `wbPlot`.
window.wbPlot = function (element) {
  var figure = JSON.parse(element.getAttribute("data-figure"));
  window.Plotly.newPlot(element, figure.data || [], figure.layout || {}, { responsive: true });
};

// Moving between the dashboard's pages inside one kernel. A dashboard link (one with
// `data-wb-page`) is not loaded: its query string goes into the page's hidden `wb-nav`
// field, a widget whose change the kernel receives and answers by drawing that page in
// the `wb-view` output (the first page, the cell's own outputs, is removed).
// The address follows (`pushState`), so a copied link still opens that page directly,
// and the back button redraws the previous page the same way.
(function () {
  var visits = 0;
  function send(search) {
    var input = document.querySelector(".wb-nav input");
    if (!input) { return false; }
    if (visits === 0) {  // the first page is the cell's own outputs: the view replaces it
      document.querySelectorAll(".jp-OutputArea-child").forEach(function (output) {
        if (!output.closest(".wb-view") && !output.querySelector(".wb-view, .wb-nav")) {
          output.remove();
        }
      });
    }
    visits += 1;
    input.value = visits + "|" + search;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey) { return; }
    var link = event.target.closest && event.target.closest("a[data-wb-page]");
    if (!link) { return; }
    var url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin || url.pathname !== window.location.pathname) {
      return;
    }
    event.preventDefault();
    // The first page arrives before its widgets: a click that early waits for the view
    // (a few seconds at most), then falls back to an ordinary page load.
    var waited = 0;
    (function attempt() {
      if (send(url.search)) {
        window.history.pushState({ wbSearch: url.search }, "", url.search);
        window.scrollTo(0, 0);
      } else if (waited < 5000) {
        waited += 50;
        window.setTimeout(attempt, 50);
      } else {
        window.location.href = url.href;
      }
    })();
  });
  window.addEventListener("popstate", function () {
    if (!send(window.location.search)) { window.location.reload(); }
  });
})();
