// The dashboard's charts, each drawn once with the plotly.js this page loads in its head.
// A chart output is a placeholder carrying the figure's JSON and a call to `wbPlot`.
window.wbPlot = function (element) {
  var figure = JSON.parse(element.getAttribute("data-figure"));
  window.Plotly.newPlot(element, figure.data || [], figure.layout || {}, { responsive: true });
};
