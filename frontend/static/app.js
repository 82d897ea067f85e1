// Progressive enhancements of the server-rendered pages (no inline scripts: CSP).
// Each page's module is loaded by its template; this file holds what every page shares.

document.addEventListener("click", (event) => {
  const remove = event.target.closest("[data-remove-row]");
  if (remove) {
    event.preventDefault();
    const row = remove.closest("[data-row]");
    const form = remove.closest("form");
    if (row && row.parentElement.querySelectorAll("[data-row]").length > 1) {
      row.remove();
      if (form) form.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }
});

// After htmx swaps in new content, move focus to an element that asks for it (errors).
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target.querySelector("[data-focus]");
  if (target) target.focus();
});
