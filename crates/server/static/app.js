// SafeGPT admin: progressive enhancement only. Every page works without this file.
"use strict";

// The eye next to the Client Secret shows what is being typed. The stored secret never
// reaches the browser, so there is nothing else it could show.
document.querySelectorAll("[data-reveal]").forEach((button) => {
  const input = document.getElementById(button.dataset.reveal);
  button.addEventListener("click", () => {
    const hidden = input.type === "password";
    input.type = hidden ? "text" : "password";
    button.setAttribute("aria-pressed", String(hidden));
  });
});

// Live progress of a running sync: poll the run until it finishes, then reload the page
// to show its result and changes.
const progress = document.querySelector("[data-run-progress]");
if (progress) {
  const url = progress.dataset.runProgress;
  const labels = JSON.parse(progress.dataset.labels);
  const tick = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) {
        const detail = await response.json();
        if (detail.run.status !== "running") {
          window.location.reload();
          return;
        }
        const p = detail.progress;
        if (p) {
          progress.textContent = `${labels[p.phase] || p.phase} · ${labels.pages}: ${p.pages_read} · ${labels.users}: ${p.users_read}`;
        }
      }
    } catch (_) {
      // A failed poll is retried on the next tick.
    }
    setTimeout(tick, 700);
  };
  tick();
}
