// The drawing pad: strokes with mouse, pen or touch (pointer events), then the drawing as a PNG
// (dark strokes on a transparent background; the model composites transparency over white)
// through the JSON API, the same path as any program's upload.
"use strict";

(function () {
  const pad = document.getElementById("pad");
  const classify = document.getElementById("pad-classify");
  const clear = document.getElementById("pad-clear");
  const result = document.getElementById("pad-result");
  if (!pad || !pad.getContext) return;
  const context = pad.getContext("2d");
  let drawing = false;
  let strokes = 0;

  function point(event) {
    const box = pad.getBoundingClientRect();
    return {
      x: (event.clientX - box.left) * (pad.width / box.width),
      y: (event.clientY - box.top) * (pad.height / box.height),
    };
  }

  function reset() {
    context.clearRect(0, 0, pad.width, pad.height);
    context.lineWidth = pad.width / 10;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#000";
    strokes = 0;
    result.textContent = "";
  }

  pad.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    try {
      pad.setPointerCapture(event.pointerId); // keep the stroke when the pointer leaves the pad
    } catch (error) {
      // a pointer the browser no longer tracks: draw without capture
    }
    drawing = true;
    strokes += 1;
    const at = point(event);
    context.beginPath();
    context.moveTo(at.x, at.y);
    context.lineTo(at.x + 0.01, at.y);
    context.stroke();
  });
  pad.addEventListener("pointermove", function (event) {
    if (!drawing) return;
    const at = point(event);
    context.lineTo(at.x, at.y);
    context.stroke();
  });
  ["pointerup", "pointercancel"].forEach(function (name) {
    pad.addEventListener(name, function () { drawing = false; });
  });

  function show(text, isError) {
    result.textContent = "";
    const line = document.createElement(isError ? "p" : "div");
    if (isError) {
      line.className = "banner banner-error";
      line.textContent = text;
    } else {
      const label = document.createElement("span");
      label.textContent = "Predicted class ";
      const value = document.createElement("span");
      value.className = "pad-class";
      value.id = "pad-class";
      value.textContent = text;
      line.append(label, value);
    }
    result.append(line);
  }

  clear.addEventListener("click", reset);
  classify.addEventListener("click", function () {
    if (strokes === 0) {
      show("Draw a digit first.", true);
      return;
    }
    classify.disabled = true;
    pad.toBlob(function (blob) {
      const body = new FormData();
      body.append("image", blob, "drawing.png");
      const model = document.getElementById("model-select");
      if (model) body.append("model", model.value);
      fetch(pad.dataset.predictUrl, { method: "POST", body: body, credentials: "omit" })
        .then(function (response) {
          return response.json().then(function (answer) {
            if (!response.ok) throw new Error(answer.error || "HTTP " + response.status);
            show(String(answer.class_id), false);
          });
        })
        .catch(function (error) { show(error.message, true); })
        .finally(function () { classify.disabled = false; });
    }, "image/png");
  });

  reset();
})();
