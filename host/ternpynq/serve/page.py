"""The small upload page served at / (no external assets: works offline on a board)."""

UPLOAD_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ternpynq {{ model }}</title>
<style>
 body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
 #result li { margin: .2rem 0; } .bar { background: #4a7; height: .6rem; display: inline-block; }
 .error { color: #b00; }
</style></head>
<body>
<h1>ternpynq</h1>
<p>{% if model %}Model <code>{{ model }}</code>. {% endif %}Choose an image to classify.</p>
<form id="form"><input type="file" id="file" name="image" accept="image/*" required>
{% if token %}<input type="password" id="token" placeholder="token" required>{% endif %}
<button type="submit">Classify</button></form>
<ol id="result"></ol>
<p><a href="openapi.json">API description (OpenAPI)</a></p>
<script>
document.getElementById("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = document.getElementById("result");
  out.textContent = "…";
  const body = new FormData();
  body.append("image", document.getElementById("file").files[0]);
  const token = document.getElementById("token");
  const headers = token ? { Authorization: `Bearer ${token.value}` } : {};
  const reply = await fetch("v1/classify?top=5", { method: "POST", body, headers });
  const data = await reply.json();
  out.textContent = "";
  if (!reply.ok) {
    out.innerHTML = '<li class="error"></li>';
    out.firstChild.textContent = data.detail;
    return;
  }
  for (const p of data.results[0].top) {
    const li = document.createElement("li");
    li.textContent = `${p.label} ${(100 * p.probability).toFixed(1)}% `;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(200 * p.probability)}px`;
    li.appendChild(bar);
    out.appendChild(li);
  }
});
</script>
</body></html>
"""
