"""Starting `mixmoe serve` for the scripts that drive it (load_test.py, web_page_check.py)."""
import re, subprocess, sys, threading, time, urllib.error, urllib.request


def start_server(binary, model, args):
    """Starts `BINARY serve --model MODEL --port 0 ARGS...`, reads the port it chose from its
    "listening on" line, keeps its stderr drained, and waits (up to 60 s) until /health answers
    200. Returns (process, port); exits when the server does not start."""
    srv = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", *args], stderr=subprocess.PIPE, text=True)
    port = None
    for line in srv.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        sys.exit("the server did not start")
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    return srv, port
