// Keyboard navigation of result lists: j / k move to the next / previous result, Enter (the browser's
// own) opens it, / returns to the search box. Keys typed into a field are never taken.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const titles = [...document.querySelectorAll("ol.results a.result-title")];
  if (event.key === "/") {
    const box = document.getElementById("id_q") || document.getElementById("masthead-q");
    if (box) {
      event.preventDefault();
      box.focus();
      box.select();
    }
    return;
  }
  if ((event.key !== "j" && event.key !== "k") || titles.length === 0) return;
  event.preventDefault();
  const current = titles.indexOf(document.activeElement);
  const next = event.key === "j" ? Math.min(current + 1, titles.length - 1) : Math.max(current - 1, 0);
  titles[current === -1 ? 0 : next].focus();
});
