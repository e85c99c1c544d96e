// facewatch's web page: the only script (no inline script, so the page's Content-Security-Policy allows none).
// On the Live page it refreshes, once a second, who is in view of each camera; every other page works without it.
"use strict";

// A face the daemon replaced by a better one of the same view between the page and its picture answers 404: its
// card goes, rather than a broken picture (errors do not bubble: caught on the way down).
function dropBroken(img) {
  if (img.getAttribute("src").startsWith("/ui/img/")) {
    (img.closest(".card") || img).remove();
  }
}
document.addEventListener("error", (e) => {
  if (e.target instanceof HTMLImageElement) {
    dropBroken(e.target);
  }
}, true);

function refreshInView() {
  const lists = document.querySelectorAll("[data-in-view]");
  if (lists.length === 0) {
    return;
  }
  fetch("/ui/live.json", { credentials: "same-origin", cache: "no-store" })
    .then((r) => (r.ok ? r.json() : null))
    .then((live) => {
      if (!live) {
        return;
      }
      for (const list of lists) {
        const camera = list.getAttribute("data-in-view");
        const people = (live.cameras[camera] || { in_view: [] }).in_view;
        list.replaceChildren();
        if (people.length === 0) {
          const li = document.createElement("li");
          li.className = "muted";
          li.textContent = "nobody in view";
          list.appendChild(li);
        }
        for (const p of people) {
          const li = document.createElement("li");
          const name = document.createElement("span");
          name.className = p.known ? "known" : "unknown";
          name.textContent = p.name || "…";
          li.appendChild(name);
          li.appendChild(document.createTextNode(" (track " + p.track + ", score " + p.score.toFixed(2) + ")"));
          list.appendChild(li);
        }
      }
    })
    .catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  // Pictures that failed before this script ran.
  for (const img of document.querySelectorAll("img")) {
    if (img.complete && img.naturalWidth === 0) {
      dropBroken(img);
    }
  }
  refreshInView();
  setInterval(refreshInView, 1000);
  // Buttons that ask first (forgetting, removing): the form says what, the browser asks.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        e.preventDefault();
      }
    });
  }
});
