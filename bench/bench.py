#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The agent's throughput, CPU and memory, end to end (bench/run.sh is the entry point).

Docker file mode, --once, page cache warm: the agent reads a generated json-file log (the
shared generator, fixed seed) from its first byte into
  * the null output, and
  * a local HTTP sink answering 204 (bench/http_sink.c, built here with cc), as Loki
    protobuf+snappy and JSON+gzip, for max_inflight 1, 4 and 16.
Each scenario runs N times; printed are the median and [min-max] of MiB/s, lines/s, CPU s/GiB
(user+sys), peak RSS (VmHWM) and the peak Private_Dirty and the rest of
Rss (file pages, mostly shared libraries; smaps_rollup, sampled).
Every run must end with the checkpoint at the file's end: a position advances only after
delivery, so that proves every record was accepted by the sink.

Optional profiles: --idle (8 files x 100 lines/s, CPU %, RSS, threads, FDs),
--latency (10k lines/s, line written -> accepted by a JSON sink: p50/p99) and --stages
(into null, without stages and through multiline(java) + json + labels(2) + replace;
the ratio of throughputs is issue 9's target, >= 60 %).
"""
import argparse
import http.server
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "bench", "data")
CID = "b" * 64
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def generator():
    for p in (os.path.join(ROOT, "..", "shared", "tools", "gen_docker_log.py"),
              os.path.join(ROOT, "bench", "gen_docker_log.py")):
        if os.path.exists(p):
            return p
    sys.exit("bench: gen_docker_log.py not found in ../shared/tools")


def make_data(size_mib, seed):
    log = os.path.join(DATA, f"docker-{size_mib}m-s{seed}.log")
    if not os.path.exists(log):
        print(f"generating {size_mib} MiB (seed {seed}) ...", flush=True)
        sh([sys.executable, generator(), "--size-mib", str(size_mib), "--seed", str(seed),
            "--out", log], stdout=subprocess.DEVNULL)
    root = os.path.join(DATA, f"root-{size_mib}m-s{seed}")
    cdir = os.path.join(root, "containers", CID)
    os.makedirs(cdir, exist_ok=True)
    dst = os.path.join(cdir, f"{CID}-json.log")
    if not os.path.exists(dst):
        os.link(log, dst)
    with open(os.path.join(cdir, "config.v2.json"), "w") as f:
        json.dump({"ID": CID, "Name": "/bench", "LogPath": dst,
                   "Config": {"Image": "bench:latest", "Labels": {}, "Tty": False}}, f)
    with open(log, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    return root, dst, os.path.getsize(log), lines


def build_sink():
    out = os.path.join(DATA, "http_sink")
    src = os.path.join(ROOT, "bench", "http_sink.c")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        sh([os.environ.get("CC", "cc"), "-O2", "-o", out, src])
    return out


NGINX_CONF = """daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 256m;
    location / {{ return 204; }}
  }}
}}
"""


def start_sink(args, sink, stats):
    """The 204 peer: bench/http_sink.c (counts requests) or Debian's nginx (--sink nginx)."""
    if args.sink == "nginx":
        if not shutil.which("nginx"):
            sys.exit("bench: --sink nginx needs Debian's nginx: apt-get install nginx-light")
        d = os.path.join(DATA, "nginx")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=d, port=args.port))
        p = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d])
    else:
        p = subprocess.Popen([sink, str(args.port), stats])
    time.sleep(0.3)
    return p


# issue 9's stages profile: the Java preset, a JSON parse, two labels, one replace
STAGES = (""",
     process: [{multiline: {preset: java}}, {json: {expressions: {level: "", svc: ""}}},
               {labels: {fields: {level: "", svc: ""}}}, {replace: {preset: email}}]""")


def config(name, root, output, extra="", process=""):
    state = os.path.join(DATA, f"state-{name}")
    path = os.path.join(DATA, f"bench-{name}.yaml")
    with open(path, "w") as f:
        f.write(f"""state_dir: {state}
listen: "off"
log_level: warn
{extra}inputs:
  - {{type: docker, name: d, mode: file, root: {root}, socket: {DATA}/no.sock,
     start_at: beginning, max_age: 0{process}}}
outputs:
  - {output}
""")
    return path, state


def smaps(pid):
    """Private_Dirty (the agent's own memory: heap, stacks, written data) and the rest of Rss
    (file pages, mostly shared libraries, which count as private clean when no other process
    maps them at the moment), from smaps_rollup."""
    rss = priv = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "Rss":
                    rss = int(v.split()[0])
                elif k == "Private_Dirty":
                    priv = int(v.split()[0])
    except OSError:
        pass
    return priv, rss - priv


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(binary, cfg, state):
    """One run: wall, CPU (user+sys), peak RSS (VmHWM) and smaps peaks, sampled every 20 ms."""
    sh(["rm", "-rf", state])
    r0 = os.times()
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "-c", cfg, "--once"], stderr=subprocess.PIPE)
    peak_priv = peak_shared = hwm = 0
    reader = threading.Thread(target=lambda: setattr(p, "errout", p.stderr.read()))
    reader.start()
    while True:
        priv, shared = smaps(p.pid)
        peak_priv, peak_shared = max(peak_priv, priv), max(peak_shared, shared)
        hwm = max(hwm, vm_hwm(p.pid))  # ru_maxrss would keep this (forked) python's
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    wall = time.monotonic() - t0
    reader.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"agent failed ({p.returncode}): {p.errout.decode(errors='replace')[-2000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "hwm_kib": hwm,
            "priv_kib": peak_priv, "shared_kib": peak_shared}


def committed(state):
    db = sqlite3.connect(os.path.join(state, "checkpoints.db"))
    try:
        return max((r[0] for r in db.execute("SELECT offset FROM sources")), default=0)
    finally:
        db.close()


def fmt(vals, f="{:.0f}"):
    return f"{f.format(statistics.median(vals))} [{f.format(min(vals))}-{f.format(max(vals))}]"


def throughput(args, binary):
    root, log, size, lines = make_data(args.size_mib, args.seed)
    sink = build_sink()
    sh(["cat", log], stdout=subprocess.DEVNULL)  # page cache warm
    port = args.port
    url = f"http://127.0.0.1:{port}"
    ts = "timestamps: {max_age: 0}"  # the data's times are fixed; Loki's age limit off
    scen = [("null", '{type: "null", name: out}')]
    if args.stages:
        scen = [("null", '{type: "null", name: out}'),
                ("null-stages", '{type: "null", name: out}')]
    for enc, extra in (("protobuf", ""), ("json", ", encoding: json, compression: gzip")):
        if args.stages:
            break
        for mi in args.inflight:
            scen.append((f"loki-{enc}-if{mi}",
                         f'{{type: loki, name: out, url: "{url}", max_inflight: {mi}, {ts}{extra}}}'))
    print(f"\n{size / 2**20:.0f} MiB, {lines} lines, {args.runs} runs each, "
          f"batch_bytes {args.batch_bytes or 'default'}; median [min-max]")
    print(f"| scenario | MiB/s | lines/s (M) | CPU s/GiB | peak RSS MiB | Private_Dirty MiB | file+shared MiB "
          f"| requests |")
    print("|---|---|---|---|---|---|---|---|")
    extra = f"batch_bytes: {args.batch_bytes}\n" if args.batch_bytes else ""
    extra += "".join(f"{k}: {v}\n" for k, _, v in (s.partition("=") for s in args.set))
    results = {}
    stage_cfg = None
    for name, out in scen:
        if args.only and not any(o in name for o in args.only):
            continue
        cfg, state = config(name, root, out, extra, STAGES if name.endswith("-stages") else "")
        if name.endswith("-stages"):
            stage_cfg = cfg
        runs, reqs = [], 0
        for _ in range(args.runs):
            sp = None
            stats = os.path.join(DATA, "sink.stats")
            if name != "null":
                sp = start_sink(args, sink, stats)
            try:
                r = timed(binary, cfg, state)
            finally:
                if sp:
                    sp.send_signal(signal.SIGTERM)
                    sp.wait(timeout=10)
            if sp and args.sink == "c":
                with open(stats) as f:
                    reqs = int(f.readline().split()[1])
            if committed(state) != size:
                sys.exit(f"{name}: checkpoint at {committed(state)}, not at the end ({size}): "
                         "records were not all delivered")
            runs.append(r)
        mib = [size / 2**20 / r["wall"] for r in runs]
        lps = [lines / r["wall"] / 1e6 for r in runs]
        cpg = [r["cpu"] / (size / 2**30) for r in runs]
        rss = [r["hwm_kib"] / 1024 for r in runs]
        prv = [r["priv_kib"] / 1024 for r in runs]
        shr = [r["shared_kib"] / 1024 for r in runs]
        results[name] = runs
        print(f"| {name} | {fmt(mib)} | {fmt(lps, '{:.2f}')} | {fmt(cpg, '{:.2f}')} | "
              f"{fmt(rss, '{:.1f}')} | {fmt(prv, '{:.1f}')} | {fmt(shr, '{:.1f}')} | "
              f"{reqs if name != 'null' and args.sink == 'c' else '-'} |", flush=True)
        if name == "null-stages" and "null" in results:
            base = statistics.median(size / 2**20 / r["wall"] for r in results["null"])
            print(f"| stages / no stages | {statistics.median(mib) / base * 100:.0f} % of "
                  f"throughput | | {statistics.median(cpg):.2f} vs "
                  f"{statistics.median(r['cpu'] / (size / 2**30) for r in results['null']):.2f}"
                  " | | | | |")
    if args.stages:
        stage_profile(binary, stage_cfg, log, size / lines)
    return results


def stage_profile(binary, cfg, log, avg_bytes):
    """CPU per stage: test-process --profile on the first 50k records of the data."""
    if not cfg:
        return
    lines = []
    with open(log) as f:
        for raw in f:
            lines.append(json.loads(raw)["log"])
            if len(lines) >= 50000:
                break
    p = subprocess.run([binary, "test-process", "-c", cfg, "--input", "d", "--profile"],
                       input="".join(lines), capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        print(f"stage profile failed: {p.stderr}")
        return
    print(f"\nper stage ({p.stdout.splitlines()[0]}); CPU s/GiB at {avg_bytes:.0f} bytes "
          "per record of the data")
    print("| stage | ns/record | CPU s/GiB |\n|---|---|---|")
    for row in p.stdout.splitlines()[3:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        own = float(cells[2])
        print(f"| {cells[0]} | {own:.0f} | {own * 1e-9 * 2**30 / avg_bytes:.2f} |")


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / TICK


def write_lines(paths, rate_per_file, seconds, text):
    """Appends json-file lines to every path at rate_per_file lines/s (10 ms steps)."""
    files = [open(p, "ab", buffering=0) for p in paths]
    step = 0.01
    per_step = rate_per_file * step
    owed = 0.0
    t_end = time.monotonic() + seconds
    n = 0
    nxt = time.monotonic()
    while time.monotonic() < t_end:
        owed += per_step
        k = int(owed)
        owed -= k
        for f in files:
            buf = b"".join(text(n + i) for i in range(k))
            f.write(buf)
        n += k
        nxt += step
        time.sleep(max(0.0, nxt - time.monotonic()))
    for f in files:
        f.close()
    return n


def json_line(msg):
    t = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z"
    return (json.dumps({"log": msg + "\n", "stream": "stdout", "time": stamp}) + "\n").encode()


def live_root(name, nfiles):
    root = os.path.join(DATA, f"root-{name}")
    sh(["rm", "-rf", root])
    paths = []
    for i in range(nfiles):
        cid = f"{i:x}" * 64
        cid = cid[:64]
        cdir = os.path.join(root, "containers", cid)
        os.makedirs(cdir)
        p = os.path.join(cdir, f"{cid}-json.log")
        open(p, "w").close()
        with open(os.path.join(cdir, "config.v2.json"), "w") as f:
            json.dump({"ID": cid, "Name": f"/c{i}", "LogPath": p,
                       "Config": {"Image": "bench", "Labels": {}, "Tty": False}}, f)
        paths.append(p)
    return root, paths


def idle_profile(args, binary):
    sink = build_sink()
    root, paths = live_root("idle", 8)
    port = args.port
    cfg, state = config("idle", root, f'{{type: loki, name: out, url: "http://127.0.0.1:{port}"}}')
    sh(["rm", "-rf", state])
    sp = subprocess.Popen([sink, str(port), os.path.join(DATA, "sink.stats")])
    ag = subprocess.Popen([binary, "-c", cfg], stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        fds0 = len(os.listdir(f"/proc/{ag.pid}/fd"))
        w = threading.Thread(target=write_lines,
                             args=(paths, 100, args.idle_seconds + 4,
                                   lambda n: json_line(f"idle line {n} level=info msg=ok")))
        w.start()
        time.sleep(3)
        c0, t0 = proc_cpu(ag.pid), time.monotonic()
        thr, fds, rss, priv, shared = set(), set(), [], [], []
        while time.monotonic() - t0 < args.idle_seconds:
            time.sleep(1)
            thr.add(len(os.listdir(f"/proc/{ag.pid}/task")))
            fds.add(len(os.listdir(f"/proc/{ag.pid}/fd")))
            with open(f"/proc/{ag.pid}/status") as f:
                rss += [int(l.split()[1]) for l in f if l.startswith("VmRSS:")]
            p, s = smaps(ag.pid)
            priv.append(p)
            shared.append(s)
        cpu = (proc_cpu(ag.pid) - c0) / (time.monotonic() - t0) * 100
        w.join()
    finally:
        ag.terminate()
        ag.wait(timeout=30)
        sp.terminate()
        sp.wait(timeout=10)
    print(f"\nidle: 8 files x 100 lines/s for {args.idle_seconds} s -> Loki (protobuf)")
    print(f"  CPU {cpu:.2f} % of a core, RSS {max(rss) / 1024:.1f} MiB "
          f"(private {max(priv) / 1024:.1f}, shared {max(shared) / 1024:.1f}), "
          f"threads {sorted(thr)}, FDs {sorted(fds)} (before the writers: {fds0})")


class _LatSink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lat = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.time_ns()
        for st in json.loads(body)["streams"]:
            for _, line in st["values"]:
                if line.startswith("lat "):
                    _LatSink.lat.append((now - int(line.split()[1])) / 1e6)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def latency_profile(args, binary):
    root, paths = live_root("lat", 1)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LatSink)
    port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    out = (f'{{type: loki, name: out, url: "http://127.0.0.1:{port}", encoding: json, '
           f'compression: none}}')
    cfg, state = config("lat", root, out)
    sh(["rm", "-rf", state])
    ag = subprocess.Popen([binary, "-c", cfg], stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        _LatSink.lat = []
        write_lines(paths, args.latency_rate, args.latency_seconds,
                    lambda n: json_line(f"lat {time.time_ns()} n={n}"))
        time.sleep(3)
    finally:
        ag.terminate()
        ag.wait(timeout=30)
        srv.shutdown()
    lat = sorted(_LatSink.lat)
    if not lat:
        sys.exit("latency: no line arrived")
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print(f"\nlatency: {args.latency_rate} lines/s for {args.latency_seconds} s, "
          f"line written -> accepted by the sink (JSON), default batch_wait 1s: "
          f"{len(lat)} lines, p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, max {lat[-1]:.0f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("LC_BIN", os.path.join(ROOT, "build-rel",
                                                                             "log_capturer")))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--batch-bytes", default="")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a top-level option for every scenario, e.g. max_pending_bytes=8MiB")
    ap.add_argument("--only", nargs="*", help="scenarios whose name contains one of these")
    ap.add_argument("--port", type=int, default=18931)
    ap.add_argument("--sink", choices=["c", "nginx"], default="c",
                    help="the 204 peer: bench/http_sink.c, or Debian's nginx (apt-get install "
                         "nginx-light)")
    ap.add_argument("--quick", action="store_true", help="256 MiB, 3 runs, no profiles")
    ap.add_argument("--idle", action="store_true", help="also the idle profile")
    ap.add_argument("--idle-seconds", type=int, default=30)
    ap.add_argument("--latency", action="store_true", help="also the latency profile")
    ap.add_argument("--latency-rate", type=int, default=10000)
    ap.add_argument("--latency-seconds", type=int, default=20)
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--stages", action="store_true",
                    help="only the processing-stages profile: null without and with stages")
    args = ap.parse_args()
    if args.quick:
        args.size_mib, args.runs = 256, 3
    os.makedirs(DATA, exist_ok=True)
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"no agent binary at {args.bin} (build it, or pass --bin / LC_BIN)")
    print(f"agent {args.bin}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    if not args.no_throughput:
        throughput(args, args.bin)
    if args.idle:
        idle_profile(args, args.bin)
    if args.latency:
        latency_profile(args, args.bin)


if __name__ == "__main__":
    main()
