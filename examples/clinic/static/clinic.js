// medseal clinic: progressive enhancement only (every form also works without it).
// Served from the portal itself under a Content-Security-Policy without inline script.
"use strict";

// Suggestions from the ICD-10-CM list for inputs with data-suggest (the last
// comma-separated part of the field is what is completed).
function setupSuggestions(input) {
  const list = document.getElementById(input.getAttribute("list"));
  if (!list) return;
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const parts = input.value.split(",");
      const last = parts[parts.length - 1].trim();
      if (last.length < 2) { list.replaceChildren(); return; }
      const url = input.dataset.suggest + "?q=" + encodeURIComponent(last);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      const found = await response.json();
      const prefix = parts.slice(0, -1).map((p) => p.trim()).filter((p) => p).join(", ");
      list.replaceChildren(...found.map((s) => {
        const option = document.createElement("option");
        option.value = prefix ? prefix + ", " + s.value : s.value;
        option.label = s.label;
        return option;
      }));
    }, 150);
  });
}

// The policy builder: ticked values of one kind are alternatives, kinds are all required;
// or, with a number k, any k of the ticked values ("k of (...)").
function setupBuilder(form) {
  const policy = form.querySelector("#policy");
  const boxes = form.querySelectorAll("input[data-builder]");
  const threshold = form.querySelector("#threshold");
  const write = () => {
    const ticked = [...boxes].filter((b) => b.checked).map((b) => b.value);
    const k = Number(threshold.value);
    if (threshold.value !== "" && Number.isInteger(k) && k >= 1 && ticked.length >= 2 && k <= ticked.length) {
      policy.value = k === ticked.length ? ticked.join(" and ") : k + " of (" + ticked.join(", ") + ")";
      return;
    }
    const kinds = new Map();
    for (const box of boxes) {
      if (!box.checked) continue;
      const kind = box.value.split(":")[0];
      if (!kinds.has(kind)) kinds.set(kind, []);
      kinds.get(kind).push(box.value);
    }
    const clauses = [...kinds.values()].map((values) =>
      values.length === 1 ? values[0] : "(" + values.join(" or ") + ")");
    if (clauses.length) policy.value = clauses.join(" and ");
  };
  for (const box of boxes) box.addEventListener("change", write);
  threshold.addEventListener("input", write);
  threshold.addEventListener("change", write);
}

// Drag and drop onto the attachments, and an upload with a progress bar.
function setupUpload(form) {
  const drop = form.querySelector("#drop");
  const input = form.querySelector("#files");
  const bar = form.querySelector("#progress");
  const text = form.querySelector("#progress-text");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const all = new DataTransfer();
    for (const f of input.files) all.items.add(f);
    for (const f of e.dataTransfer.files) all.items.add(f);
    input.files = all.files;
    text.textContent = input.files.length + " file(s) chosen";
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form); // in document order: the CSRF token first
    let total = 0;
    for (const f of input.files) total += f.size;
    if (total > Number(form.dataset.maxUpload)) {
      text.textContent = "The files are larger than this portal accepts.";
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    bar.hidden = false;
    xhr.upload.addEventListener("progress", (p) => {
      if (!p.lengthComputable) return;
      bar.value = Math.round((100 * p.loaded) / p.total);
      text.textContent = "Uploading and encrypting: " + bar.value + "%";
    });
    xhr.addEventListener("load", () => {
      if (xhr.status < 400 && xhr.responseURL) {
        window.location.assign(xhr.responseURL);
        return;
      }
      const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const failure = page.querySelector("section.failure");
      text.replaceChildren(failure ? failure.cloneNode(true) : document.createTextNode("The record was not stored."));
      bar.hidden = true;
    });
    xhr.addEventListener("error", () => {
      text.textContent = "The upload failed (connection lost). Nothing was stored; try again.";
      bar.hidden = true;
    });
    xhr.send(data);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-suggest]")) setupSuggestions(input);
  const form = document.getElementById("new-record");
  if (form) { setupBuilder(form); setupUpload(form); }
});
