#!/usr/bin/env bash
# The worker service's two figures, on this machine, in one run:
#  1. StartEgress latency: the official Python client's call → the STARTING reply, through
#     livekit-server (psrpc over Redis) and through tessera's standalone API, with the
#     worker idle and with it already busy (psrpc's claim selection differs: an idle worker
#     claims with affinity 0.5 and livekit-server waits 500 ms for a better claim; a busy
#     one with room left claims 1.0 and is taken at once). Audio-only room composites, each
#     stopped before the next, so the figure is the control path's.
#  2. Admission accuracy: with the capacity harness's cost profile
#     (docs/bench/cost-profile-4p.json: 4 participants at 640x360, 720p30, MP4), how many
#     4-person room composites the worker admits through livekit-server, then whether
#     they hold real time: one egress is added at a time until the worker refuses, each
#     step measured over 15 s from the worker's /metrics (the harness's rule: ≤ 2% of
#     frames late and ≥ 97% of the frame rate). The 4 publishers (LiveKit's Python SDK,
#     VP8) and livekit-server run on the same machine; their CPU is reported.
#
#   bash scripts/bench-service.sh [LATENCY_CALLS] [OUT_DIR] [MAX_CPU_UTILIZATION]
#
# LATENCY_CALLS 0 skips the latency part; MAX_CPU_UTILIZATION (default 0.8, LiveKit's) is
# the worker's `cpu_cost.max_cpu_utilization`, the share of the node's measured CPU it
# admits up to.
#
# Needs `bash scripts/setup.sh` and a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
OUT="${2:-bench-service-out}"
UTIL="${3:-0.8}"
TOOLS="${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}"
BIN=target/release/tessera
[ -x "$BIN" ] || { echo "bench-service: build first: cargo build --release" >&2; exit 1; }
mkdir -p "$OUT"
exec "$TOOLS/lk-venv/bin/python" - "$BIN" "$TOOLS" "$N" "$OUT" "$UTIL" <<'PY'
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time

binary, tools, n, out, util = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
py = os.path.join(tools, "lk-venv/bin/python")
work = tempfile.mkdtemp(prefix="bench-service-")
procs = []

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def spawn(args, log, **kw):
    p = subprocess.Popen(args, stdout=open(os.path.join(work, log), "w"), stderr=subprocess.STDOUT, **kw)
    procs.append(p); return p

def wait_port(port, t=30):
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")

def cleanup():
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    time.sleep(2)
    for p in procs:
        if p.poll() is None:
            p.kill()

try:
    redis_port = free_port()
    spawn(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "", "--appendonly", "no"], "redis.log")
    wait_port(redis_port)
    lk_port = free_port()
    with open(os.path.join(work, "lk.yaml"), "w") as f:
        f.write(f"""port: {lk_port}
bind_addresses: ["127.0.0.1"]
rtc: {{tcp_port: {free_port()}, udp_port: {free_port()}, use_external_ip: false, enable_loopback_candidate: true, interfaces: {{includes: [lo]}}}}
redis: {{address: "127.0.0.1:{redis_port}"}}
logging: {{level: warn}}
""")
    spawn([os.path.join(tools, "bin/livekit-server"), "--dev", "--node-ip", "127.0.0.1", "--config", os.path.join(work, "lk.yaml")], "lk.log")
    wait_port(lk_port)
    lk_ws, lk_http = f"ws://127.0.0.1:{lk_port}", f"http://127.0.0.1:{lk_port}"
    health, api_port = free_port(), free_port()
    profile = os.path.abspath("docs/bench/cost-profile-4p.json")
    with open(os.path.join(work, "worker.yaml"), "w") as f:
        f.write(f"""api_key: devkey
api_secret: secret
ws_url: {lk_ws}
redis: {{address: "127.0.0.1:{redis_port}"}}
health_port: {health}
prometheus_port: {health}
cpu_cost: {{max_cpu_utilization: {util}}}
tessera:
  out_dir: {work}/out
  api_port: {api_port}
  cost_profile: {profile}
""")
    worker = spawn([binary, "serve", "--config", os.path.join(work, "worker.yaml")], "worker.log")
    end = time.time() + 60
    while "egress worker ready" not in open(os.path.join(work, "worker.log")).read():
        if time.time() > end: raise SystemExit("the worker did not start")
        time.sleep(0.2)
    standalone = f"http://127.0.0.1:{api_port}"

    def publish(room, identity, extra=()):
        p = spawn([py, "scripts/lk-publish.py", "--url", lk_ws, "--room", room, "--identity", identity, *extra], f"pub-{room}-{identity}.log")
        end = time.time() + 60
        while "published" not in open(os.path.join(work, f"pub-{room}-{identity}.log")).read():
            if time.time() > end: raise SystemExit(f"{identity} did not publish")
            time.sleep(0.2)
        return p

    def call(url, method, body):
        r = subprocess.run([py, "scripts/lk-egress.py", "--url", url, "--api-key", "devkey", "--api-secret", "secret", "call", method, json.dumps(body)],
                           capture_output=True, text=True)
        ms = float(next(l for l in r.stderr.splitlines() if l.startswith("elapsed_ms=")).split("=")[1])
        line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if line.startswith("error: "): return None, ms, line[7:]
        return json.loads(line), ms, None

    def status(url, eid):
        v, _, _ = call(url, "ListEgress", {"egress_id": eid})
        return v["items"][0]["status"] if v and v["items"] else None

    def wait_status(url, eid, want, t=60):
        end = time.time() + t
        while time.time() < end:
            s = status(url, eid)
            if s in want: return s
            time.sleep(0.3)
        raise SystemExit(f"{eid} never reached {want}")

    def metrics():
        import urllib.request
        text = urllib.request.urlopen(f"http://127.0.0.1:{health}/metrics").read().decode()
        m = {}
        for l in text.splitlines():
            if l and not l.startswith("#"):
                k, v = l.rsplit(" ", 1); m[k] = float(v)
        return m

    # ---- 1. latency
    publish("lat", "alice", ["--no-video"])
    req = {"room_name": "lat", "audio_only": True, "file_outputs": [{"filepath": "lat/{time}.ogg", "file_type": "OGG"}]}
    latency = {}
    for via, url in (("livekit-server", lk_http), ("standalone", standalone)) if n > 0 else ():
        for state in ("idle", "busy"):
            background = None
            if state == "busy":
                background, _, err = call(url, "StartRoomCompositeEgress", req)
                assert background, err
                wait_status(url, background["egress_id"], {"EGRESS_ACTIVE"})
            samples = []
            for i in range(n):
                info, ms, err = call(url, "StartRoomCompositeEgress", req)
                assert info, err
                samples.append(ms)
                wait_status(url, info["egress_id"], {"EGRESS_ACTIVE"})
                call(url, "StopEgress", {"egress_id": info["egress_id"]})
                wait_status(url, info["egress_id"], {"EGRESS_COMPLETE"})
            if background:
                call(url, "StopEgress", {"egress_id": background["egress_id"]})
                wait_status(url, background["egress_id"], {"EGRESS_COMPLETE"})
            latency[f"{via}, worker {state}"] = {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples), "calls": n}
            print(f"latency {via} ({state}): median {statistics.median(samples):.1f} ms over {n}", file=sys.stderr)

    # ---- 2. admission accuracy: ramp up one egress at a time until the worker refuses
    pubs = [publish("cap", f"p{i}", ["--width", "640", "--height", "360", "--rgb", f"{60*i},{200-40*i},120"]) for i in range(4)]
    cap_req = {"room_name": "cap", "layout": "grid", "preset": "H264_720P_30", "file_outputs": [{"filepath": "cap/{time}.mp4"}]}

    def cpu_of(pids):
        t = 0
        for pid in pids:
            try:
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                t += int(f[11]) + int(f[12])
            except OSError:
                pass
        return t / os.sysconf("SC_CLK_TCK")

    def node_cpu():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)

    lk_pid = procs[1].pid
    admitted, steps, measuring = [], [], True
    while len(admitted) < 32:
        info, ms, err = call(lk_http, "StartRoomCompositeEgress", cap_req)
        if not info:
            print(f"admission: refused after {len(admitted)}: {err}", file=sys.stderr)
            break
        admitted.append(info["egress_id"])
        wait_status(lk_http, info["egress_id"], {"EGRESS_ACTIVE"})
        if not measuring:
            continue
        time.sleep(5)
        m0, t0 = metrics(), time.time()
        p0, w0, l0, (b0, a0) = cpu_of([p.pid for p in pubs]), cpu_of([worker.pid]), cpu_of([lk_pid]), node_cpu()
        time.sleep(15)
        m1, t1 = metrics(), time.time()
        p1, w1, l1, (b1, a1) = cpu_of([p.pid for p in pubs]), cpu_of([worker.pid]), cpu_of([lk_pid]), node_cpu()
        frames = m1["tessera_frames_composited_total"] - m0["tessera_frames_composited_total"]
        late = m1["tessera_frames_late_total"] - m0["tessera_frames_late_total"]
        fps = frames / (t1 - t0) / len(admitted)
        step = {"rooms": len(admitted), "fps_per_room": fps, "late_share": late / max(frames, 1),
                "worker_cores": (w1 - w0) / (t1 - t0), "publishers_cores": (p1 - p0) / (t1 - t0),
                "livekit_server_cores": (l1 - l0) / (t1 - t0),
                "node_busy_cores": (b1 - b0) / max(a1 - a0, 1) * os.cpu_count()}
        step["holds"] = step["late_share"] <= 0.02 and fps >= 0.97 * 30
        steps.append(step)
        print(f"admission: {len(admitted)} rooms: {fps:.1f} fps/room, {100*step['late_share']:.1f}% late, "
              f"worker {step['worker_cores']:.2f} cores, publishers {step['publishers_cores']:.2f}, "
              f"livekit-server {step['livekit_server_cores']:.2f}, node {step['node_busy_cores']:.2f}, holds={step['holds']}", file=sys.stderr)
        # Once a step fails, later ones only count admissions.
        measuring = step["holds"]
    for eid in admitted:
        call(lk_http, "StopEgress", {"egress_id": eid})
    held = max((s["rooms"] for s in steps if s["holds"]), default=0)
    report = {
        "machine": {"cores": os.cpu_count(), "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")},
        "latency": latency,
        "admission": {"profile": "docs/bench/cost-profile-4p.json", "max_cpu_utilization": util,
                      "admitted": len(admitted), "held": held, "steps": steps},
    }
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print("| StartEgress path | median ms | min | max |\n|---|---|---|---|")
    for k, v in latency.items():
        print(f"| {k} | {v['median_ms']:.1f} | {v['min_ms']:.1f} | {v['max_ms']:.1f} |")
    print(f"\nadmitted {len(admitted)} rooms, {held} held real time")
finally:
    cleanup()
PY
