#!/usr/bin/env python3
"""Load test of `mixmoe serve` on loopback, bounded in requests and time.

  python3 scripts/serve/load_test.py [--binary .build/release/mixmoe] [--model models/base]
      [--test data/demo/parallel/test.de-en.tsv] [--from de --to en]
      [--clients 32] [--requests 20] [--sequential 64] [--max-batch 32] [--threads 2]

1. Translates every test sentence the load will use offline, with `mixmoe translate` (greedy,
   default batch): the reference outputs.
2. Starts `mixmoe serve` on a free loopback port and waits for /health.
3. One request at a time: the first --sequential requests of the load, one after another
   (the throughput a server without batching would give).
4. The load (3 and 4 alternate for --rounds rounds; the round with the median load throughput
   is reported, failures and differences are counted over all rounds): --clients threads, each sending --requests requests (one sentence each, sentence
   (client * requests + k) mod N) back to back; every request has a 300 s timeout and the whole
   load a deadline of 30 min.
5. Reports failed and lost requests (a lost one: no answer), translations that differ from the
   offline output, throughput (requests/s and generated tokens/s) against one-at-a-time, and
   p50/p95 latency; prints Markdown and writes --json.
Stdlib only (urllib, threading); the server is stopped with SIGTERM at the end.
"""
import argparse, json, signal, statistics, subprocess, sys, threading, time, urllib.request

from serve_util import start_server


def read_sources(path, src, n=None):
    """Source segments of a corpus TSV (English in column 1, the other language in column 2)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2:
                out.append(cols[0] if src == "en" else cols[1])
    return out[:n] if n else out


def post(port, path, body, timeout=300):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        data = json.loads(r.read())
    return data, time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/mixmoe")
    ap.add_argument("--model", default="models/base")
    ap.add_argument("--test", default="data/demo/parallel/test.de-en.tsv")
    ap.add_argument("--from", dest="src", default="de")
    ap.add_argument("--to", dest="tgt", default="en")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--sequential", type=int, default=128, help="requests sent one at a time for the baseline, per round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of (one at a time, load); the median round is reported")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the figures here")
    a = ap.parse_args()

    sources = read_sources(a.test, a.src)
    total = a.clients * a.requests
    which = [(c * a.requests + k) % len(sources) for c in range(a.clients) for k in range(a.requests)]
    used = sorted(set(which))

    # 1. offline reference
    t0 = time.perf_counter()
    p = subprocess.run([a.binary, "translate", "--model", a.model, "--from", a.src, "--to", a.tgt, "--threads", str(a.threads)],
                       input="\n".join(sources[i] for i in used) + "\n", capture_output=True, text=True, check=True)
    offline = dict(zip(used, p.stdout.split("\n")))
    print(f"offline: {len(used)} sentences in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    # 2. the server
    srv, port = start_server(a.binary, a.model, ["--max-batch", str(a.max_batch), "--max-queue", str(total), "--threads", str(a.threads)])

    def body(i):
        return {"source_lang": a.src, "target_lang": a.tgt, "text": sources[i]}

    def sequential():
        lat, tokens = [], 0
        t0 = time.perf_counter()
        for i in which[:a.sequential]:
            data, l = post(port, "/v1/translate", body(i))
            lat.append(l)
            tokens += data["usage"]["completion_tokens"]
        return lat, tokens, time.perf_counter() - t0

    def load():
        results = [None] * total
        deadline = time.perf_counter() + 1800

        def client(c):
            for k in range(a.requests):
                n = c * a.requests + k
                if time.perf_counter() > deadline:
                    return
                try:
                    data, lat = post(port, "/v1/translate", body(which[n]))
                    results[n] = ("ok", data["translations"][0], lat, data["usage"]["completion_tokens"])
                except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                    results[n] = ("failed", repr(e), 0.0, 0)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results, time.perf_counter() - t0

    rounds = []  # 3 and 4 alternate, round by round, so both see the same machine
    try:
        for r in range(a.rounds):
            seq_lat, seq_tokens, seq_wall = sequential()
            results, wall = load()
            rounds.append((seq_lat, seq_tokens, seq_wall, results, wall))
            ok_r = [x for x in results if x and x[0] == "ok"]
            print(f"round {r + 1}: one at a time {len(seq_lat) / seq_wall:.2f} req/s, load {len(ok_r) / wall:.2f} req/s", file=sys.stderr)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            health = json.loads(r.read())
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            code = srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            srv.kill()
            code = "killed after 60 s"

    # the round with the median load throughput gives the latencies; counts cover every round
    med = sorted(rounds, key=lambda x: sum(1 for y in x[3] if y and y[0] == "ok") / x[4])[len(rounds) // 2]
    seq_lat, seq_tokens, seq_wall, results, wall = med
    seq_rates = [len(x[0]) / x[2] for x in rounds]
    load_rates = [sum(1 for y in x[3] if y and y[0] == "ok") / x[4] for x in rounds]
    all_results = [(n, y) for x in rounds for n, y in enumerate(x[3])]
    ok = [r for r in results if r and r[0] == "ok"]
    failed = [y for _, y in all_results if y and y[0] == "failed"]
    lost = sum(1 for _, y in all_results if y is None)
    answered = [(n, y) for n, y in all_results if y and y[0] == "ok"]
    mismatches = [(which[n], y[1], offline[which[n]]) for n, y in answered if y[1] != offline[which[n]]]
    lat = [r[2] for r in ok]
    tokens = sum(r[3] for r in ok)
    fig = {
        "model": a.model, "test": a.test, "direction": f"{a.src}-{a.tgt}", "clients": a.clients, "requests_per_client": a.requests,
        "max_batch": a.max_batch, "threads": a.threads, "rounds": a.rounds, "requests": total * a.rounds, "ok": len(answered),
        "failed": len(failed), "lost": lost,
        "differ_from_offline": len(mismatches), "load_seconds": wall, "requests_per_s": len(ok) / wall, "tokens_per_s": tokens / wall,
        "p50_ms": 1000 * pct(lat, 50) if lat else None, "p95_ms": 1000 * pct(lat, 95) if lat else None,
        "sequential_requests": len(seq_lat), "sequential_requests_per_s": len(seq_lat) / seq_wall,
        "sequential_tokens_per_s": seq_tokens / seq_wall, "sequential_p50_ms": 1000 * statistics.median(seq_lat),
        "speedup": (len(ok) / wall) / (len(seq_lat) / seq_wall), "server_exit": code,
        "sequential_requests_per_s_rounds": seq_rates, "requests_per_s_rounds": load_rates,
        "speedup_rounds": [l / q for l, q in zip(load_rates, seq_rates)],
        "engine": {k: health.get(k) for k in ["steps", "average_rows_per_step", "prefills", "prefill_tokens", "prefill_seconds",
                                              "step_seconds", "generated_tokens"]},
    }
    print(f"""| | one at a time | {a.clients} clients x {a.requests} |
|---|---|---|
| requests (all rounds) | {len(seq_lat) * a.rounds} | {total * a.rounds} ({len(answered)} ok, {len(failed)} failed, {lost} lost) |
| requests/s | {fig['sequential_requests_per_s']:.2f} | {fig['requests_per_s']:.2f} ({fig['speedup']:.2f}x) |
| requests/s, each round | {", ".join(f"{x:.2f}" for x in seq_rates)} | {", ".join(f"{x:.2f}" for x in load_rates)} |
| generated tokens/s | {fig['sequential_tokens_per_s']:.1f} | {fig['tokens_per_s']:.1f} |
| latency p50 / p95 | {fig['sequential_p50_ms']:.0f} ms / {1000 * pct(seq_lat, 95):.0f} ms | {fig['p50_ms']:.0f} ms / {fig['p95_ms']:.0f} ms |
| differ from offline `mixmoe translate` | | {len(mismatches)} of {len(answered)} |
| server exit after SIGTERM | | {code} |""")
    e = fig["engine"]
    print(f"engine (both phases): {e['prefills']} prefills ({e['prefill_tokens']} tokens) {e['prefill_seconds']:.1f} s, "
          f"{e['steps']} steps of {e['average_rows_per_step']:.1f} rows {e['step_seconds']:.1f} s", file=sys.stderr)
    for m in mismatches[:5]:
        print(f"differs: sentence {m[0]}: server {m[1]!r} offline {m[2]!r}", file=sys.stderr)
    for f in failed[:5]:
        print(f"failed: {f[1]}", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(fig, f, indent=1, sort_keys=True)
    sys.exit(0 if not failed and not lost and code == 0 else 1)


if __name__ == "__main__":
    main()
