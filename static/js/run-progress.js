// Live progress of a generation run: polls the run's JSON every two seconds while it is active.
// The page is complete without it; this only keeps the numbers fresh.
(function () {
  const root = document.getElementById("progress");
  if (!root || root.dataset.active !== "true") return;
  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const number = (value, digits) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

  async function refresh() {
    const response = await fetch(root.dataset.url, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const run = await response.json();
    field("status").textContent = run.status;
    field("bar").value = run.generated;
    field("generated").textContent = run.generated;
    field("accepted").textContent = run.accepted;
    field("rejected").textContent = run.rejected;
    field("tokens_per_second").textContent = number(run.tokens_per_second, 1);
    field("eta_seconds").textContent = run.eta_seconds ? `${number(run.eta_seconds, 0)} s` : "–";
    field("cpu_seconds_per_published").textContent = number(run.cpu_seconds_per_published, 1);
    const reasons = Object.entries(run.rejections);
    field("rejections").replaceChildren(
      ...(reasons.length ? reasons : [["none yet", ""]]).map(([reason, count]) => {
        const item = document.createElement("li");
        item.textContent = count === "" ? reason : `${reason}: ${count}`;
        return item;
      }),
    );
    if (run.status === "queued" || run.status === "running") setTimeout(refresh, 2000);
    else window.location.reload(); // finished: show the final samples
  }
  setTimeout(refresh, 2000);
})();
