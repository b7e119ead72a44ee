// Drag-and-drop and a preview for the upload form. Without JavaScript the plain form still works.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  const input = document.getElementById("image-input");
  const zone = document.getElementById("dropzone");
  const preview = document.getElementById("dropzone-preview");
  const text = document.getElementById("dropzone-text");
  const button = document.getElementById("classify-button");
  if (!form || !input || !zone) return;

  function showChosenFile() {
    const file = input.files && input.files[0];
    if (!file) return;
    text.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KiB)";
    if (file.type.startsWith("image/")) {
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
    } else {
      preview.hidden = true;
    }
  }

  input.addEventListener("change", showChosenFile);

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("is-dragover");
    });
  });
  ["dragleave", "dragend", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("is-dragover"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (!event.dataTransfer || event.dataTransfer.files.length === 0) return;
    // Put the dropped file into the form's own input, so the normal form post sends it.
    input.files = event.dataTransfer.files;
    showChosenFile();
  });

  form.addEventListener("submit", function () {
    button.disabled = true;
    button.textContent = "Classifying…";
  });
})();
