// The numbered search history (L1, L2, ...), kept in this browser's localStorage and never on the
// server. Each new search on the results page becomes the next set; a query that names sets
// (L3 AND L5) is sent with their queries, which the server expands and runs as one query
// (search/query.py, expand_sets). The search record buttons post the history to be laid out.
(() => {
  const KEY = "allpatents-search-history";
  const panel = document.getElementById("search-history");

  const load = () => {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(saved) ? saved : [];
    } catch {
      return [];
    }
  };
  const save = (history) => localStorage.setItem(KEY, JSON.stringify(history));
  let history = load();

  if (panel) {
    // This page's search, once: not again on a reload, going back, or another page of the same results.
    const recorded = document.getElementById("search-record");
    const navigation = performance.getEntriesByType("navigation")[0];
    const firstPage = (new URLSearchParams(location.search).get("page") || "1") === "1";
    if (recorded && firstPage && (!navigation || navigation.type === "navigate")) {
      const search = JSON.parse(recorded.textContent);
      const last = history[history.length - 1];
      search.number = last ? last.number + 1 : 1;
      history.push(search);
      save(history);
    }

    const cell = (row, text, className) => {
      const td = row.insertCell();
      td.textContent = text;
      if (className) td.className = className;
      return td;
    };

    const render = () => {
      const body = panel.querySelector("tbody");
      body.replaceChildren();
      for (const search of [...history].reverse()) {
        const row = body.insertRow();
        const set = row.insertCell();
        const insert = document.createElement("button");
        insert.type = "button";
        insert.className = "set-number";
        insert.textContent = `L${search.number}`;
        insert.title = `Add L${search.number} to the query`;
        insert.addEventListener("click", () => {
          const box = document.getElementById("id_q");
          box.value = box.value.trim() ? `${box.value.trim()} AND L${search.number}` : `L${search.number}`;
          box.focus();
        });
        set.append(insert);
        const query = cell(row, search.typed, "history-query");
        if (search.expanded !== search.typed) {
          const expanded = document.createElement("small");
          expanded.textContent = `As run: ${search.expanded}`;
          query.append(document.createElement("br"), expanded);
        }
        cell(row, search.mode);
        cell(row, search.filters.length ? search.filters.join("; ") : "—");
        cell(row, search.exact ? search.hits.toLocaleString("en") : `about ${search.hits.toLocaleString("en")}`);
        cell(row, search.time.replace("T", " ").replace("Z", ""));
      }
      panel.hidden = history.length === 0;
    };
    render();

    panel.querySelector(".history-clear").addEventListener("click", () => {
      localStorage.removeItem(KEY);
      history = [];
      render();
    });
    panel.querySelector(".history-actions").addEventListener("submit", (event) => {
      event.target.querySelector("input[name=history]").value = JSON.stringify(history);
    });
  }

  // Send the queries of the sets a query names; quoted text ("L5") is a word, not a set.
  const referenced = (query) => {
    const numbers = new Set();
    query.split('"').forEach((part, index) => {
      if (index % 2 === 1) return;
      for (const match of part.matchAll(/\bL([1-9]\d{0,3})\b/g)) numbers.add(Number(match[1]));
    });
    return numbers;
  };
  for (const form of document.querySelectorAll("form[role=search]")) {
    form.addEventListener("submit", () => {
      form.querySelectorAll("input.set-definition").forEach((input) => input.remove());
      const query = form.querySelector("input[name=q]").value;
      for (const number of referenced(query)) {
        const search = history.find((entry) => entry.number === number);
        if (!search) continue; // the server names the missing set
        const input = document.createElement("input");
        input.type = "hidden";
        input.className = "set-definition";
        input.name = `L${number}`;
        input.value = search.expanded;
        form.append(input);
      }
    });
  }
})();
