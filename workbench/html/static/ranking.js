// Sorting and filtering of the call page's ranking, in the browser (no kernel round trip).
(function () {
  var table = document.getElementById("wb-ranking");
  if (!table || table.dataset.ready) { return; }
  table.dataset.ready = "1";
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var count = document.getElementById("wb-shown");
  var heads = table.tHead.rows[0].cells;
  var filters = table.tHead.rows[1].querySelectorAll("input");
  function key(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-sort");
    if (v === null) { return cell.textContent.trim().toLowerCase(); }
    var n = parseFloat(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.dataset.dir === "asc" ? "desc" : "asc";
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
      th.dataset.dir = dir;
      rows.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        var empty = (x === "" || x === "-") - (y === "" || y === "-");
        if (empty) { return empty; }
        if (x < y) { return dir === "asc" ? -1 : 1; }
        if (x > y) { return dir === "asc" ? 1 : -1; }
        return 0;
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r); });
      body.appendChild(frag);
    });
  });
  function applyFilters() {
    var wanted = Array.prototype.map.call(filters, function (f) {
      return f.value.trim().toLowerCase();
    });
    var shown = 0;
    rows.forEach(function (r) {
      var ok = wanted.every(function (w, col) {
        return !w || r.cells[col].textContent.toLowerCase().indexOf(w) !== -1;
      });
      r.style.display = ok ? "" : "none";
      shown += ok;
    });
    count.textContent = shown;
  }
  Array.prototype.forEach.call(filters, function (f) {
    f.addEventListener("input", applyFilters);
  });
})();
