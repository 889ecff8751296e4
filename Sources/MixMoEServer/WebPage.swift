import MixMoE

/// The page served at `/`: one file, no external assets (it is part of the binary, so a copied
/// binary serves it too). It posts to `/v1/translate` and shows the result and the time taken.
enum WebPage {
    static var languageOptions: String {
        Languages.names.sorted { $0.value < $1.value }.map { "<option value=\"\($0.key)\">\($0.value) (\($0.key))</option>" }.joined()
    }

    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>MixMoE translate</title>
        <style>
          body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
          h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
          .sub { color: #666; margin-top: 0; }
          .row { display: flex; gap: 0.6rem; align-items: center; margin: 0.8rem 0; flex-wrap: wrap; }
          textarea { width: 100%; min-height: 7rem; font: inherit; padding: 0.5rem; box-sizing: border-box; }
          #result { white-space: pre-wrap; min-height: 7rem; padding: 0.5rem; border: 1px solid #ccc; background: #f7f7f7; }
          button { font: inherit; padding: 0.4rem 1.2rem; }
          #time { color: #666; }
          .error { color: #b00020; }
        </style>
        </head>
        <body>
        <h1>MixMoE translate</h1>
        <p class="sub">Model: <span id="model">…</span></p>
        <div class="row">
          <label>From <select id="from">\(languageOptions)</select></label>
          <label>To <select id="to">\(languageOptions)</select></label>
          <label>Beam <select id="beam"><option>1</option><option>2</option><option>4</option><option>5</option></select></label>
        </div>
        <textarea id="source" placeholder="Text to translate, one segment per line"></textarea>
        <div class="row"><button id="translate">Translate</button><span id="time"></span></div>
        <div id="result" aria-live="polite"></div>
        <script>
        const $ = (id) => document.getElementById(id);
        $("from").value = "de"; $("to").value = "en";
        fetch("/v1/models").then(r => r.json()).then(j => { $("model").textContent = j.data[0].id; })
          .catch(() => { $("model").textContent = "(loading)"; });
        $("translate").addEventListener("click", async () => {
          const lines = $("source").value.split("\\n").filter(l => l.trim() !== "");
          if (lines.length === 0) { return; }
          $("translate").disabled = true; $("time").textContent = "translating…"; $("result").className = "";
          const t0 = performance.now();
          try {
            const r = await fetch("/v1/translate", { method: "POST", headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ source_lang: $("from").value, target_lang: $("to").value, text: lines, beam: Number($("beam").value) }) });
            const j = await r.json();
            if (!r.ok) { throw new Error(j.error ? j.error.message : r.statusText); }
            $("result").textContent = j.translations.join("\\n");
            $("time").textContent = `${((performance.now() - t0) / 1000).toFixed(2)} s, ${j.usage.completion_tokens} tokens generated`;
          } catch (e) {
            $("result").textContent = String(e.message || e); $("result").className = "error"; $("time").textContent = "";
          } finally { $("translate").disabled = false; }
        });
        </script>
        </body>
        </html>
        """
}
