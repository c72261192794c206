#!/usr/bin/env bash
# Web egress cost: CPU seconds per media second and peak memory (PSS) of a 720p30 web
# egress recording an animated page (Chromium, Xvfb and PulseAudio included), against a
# 4-person RoomComposite of ours (synthetic room, 720p30) in the same run and against
# LiveKit's cost model for web egress (4 CPUs per egress).
#
#   bash scripts/bench-web.sh [SECONDS] [OUT_DIR]
#
# Needs a release build (cargo build --release). Every process of an egress is measured:
# tessera and all its descendants (the browser's helpers too), sampled every 200 ms from
# /proc; CPU is each process's utime+stime at its last sample, memory the largest sum of
# the tree's PSS.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-20}"
OUT="${2:-bench-web-out}"
BIN=target/release/tessera
[ -x "$BIN" ] || { echo "bench-web: build first: cargo build --release" >&2; exit 1; }
mkdir -p "$OUT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

python3 - "$BIN" "$SECONDS_PER_RUN" "$OUT" <<'PY'
import http.server, json, os, socketserver, subprocess, sys, threading, time

binary, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
PAGE = b"""<!doctype html><html><head><style>
html,body{margin:0;height:100%;overflow:hidden;font:48px sans-serif;color:#fff}
.box{position:absolute;width:160px;height:160px;border-radius:24px}
</style></head><body><canvas id=c></canvas><script>
// An animated page: a gradient sweeping, 12 moving boxes, a clock, a WebAudio tone.
const c = document.getElementById('c'), g = c.getContext('2d');
function size(){ c.width = innerWidth; c.height = innerHeight; }
size(); addEventListener('resize', size);
function frame(t){
  const w = c.width, h = c.height, s = t / 1000;
  const grad = g.createLinearGradient(0, 0, w, h);
  grad.addColorStop(0, `hsl(${(s*40)%360},70%,40%)`);
  grad.addColorStop(1, `hsl(${(s*40+180)%360},70%,40%)`);
  g.fillStyle = grad; g.fillRect(0, 0, w, h);
  for (let i = 0; i < 12; i++) {
    g.fillStyle = `hsl(${i*30},80%,60%)`;
    const x = (w/2) + Math.cos(s*(0.5+i*0.1)+i) * w*0.4, y = (h/2) + Math.sin(s*(0.7+i*0.05)+i) * h*0.35;
    g.fillRect(x-60, y-60, 120, 120);
  }
  g.fillStyle = '#fff'; g.font = '64px sans-serif'; g.fillText(s.toFixed(2) + ' s', 40, 90);
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);
const a = new AudioContext(), o = a.createOscillator(), v = a.createGain();
o.frequency.value = 440; v.gain.value = 0.3; o.connect(v).connect(a.destination); o.start();
</script></body></html>"""

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE))); self.end_headers(); self.wfile.write(PAGE)
    def log_message(self, *a): pass

server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()
tick = os.sysconf("SC_CLK_TCK")

def tree(root):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            st = open(f"/proc/{p}/stat").read()
        except OSError: continue
        ppid = int(st[st.rfind(")")+2:].split()[1])
        kids.setdefault(ppid, []).append(int(p))
    out, todo = [], [root]
    while todo:
        p = todo.pop(); out.append(p); todo.extend(kids.get(p, []))
    return out

def sample(pids, cpu):
    pss = 0
    for p in pids:
        try:
            st = open(f"/proc/{p}/stat").read()
            f = st[st.rfind(")")+2:].split()
            comm = st[st.find("(")+1:st.rfind(")")]
            cpu[(p, f[19], comm)] = (int(f[11]) + int(f[12])) / tick
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"): pss += int(line.split()[1]) * 1024
        except OSError: pass
    return pss

def measure(name, request, args):
    path = os.path.join(out, f"{name}.json"); open(path, "w").write(json.dumps(request))
    cmd = [binary, "run", path, "--duration", str(seconds), "--out", os.path.join(out, name)] + args
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    cpu, peak = {}, 0
    while proc.poll() is None:
        peak = max(peak, sample(tree(proc.pid), cpu)); time.sleep(0.2)
    wall = time.monotonic() - t0
    info = json.loads(proc.stdout.read() or b"{}")
    media = sum(float(f.get("duration", 0)) for f in info.get("file_results", [])[:1]) / 1e9
    total = sum(cpu.values())
    by_name = {}
    for (_, _, comm), t in cpu.items():
        by_name[comm] = round(by_name.get(comm, 0) + t, 2)
    return {"cpu_s_by_process": dict(sorted(by_name.items(), key=lambda kv: -kv[1])),"name": name, "status": info.get("status"), "media_s": media, "wall_s": round(wall, 2),
            "cpu_s": round(total, 2), "cpu_per_media_s": round(total / media, 3) if media else None,
            "peak_pss_mib": round(peak / 2**20, 1)}

preset = "H264_720P_30"
web = measure("web-720p30", {"url": f"http://127.0.0.1:{port}/", "preset": preset,
                             "file_outputs": [{"filepath": "web.mp4"}]}, [])
room = measure("room-composite-4p-720p30", {"room_name": "bench", "layout": "grid", "preset": preset,
                             "file_outputs": [{"filepath": "room.mp4"}]}, ["--room", "synthetic:4"])
LIVEKIT_WEB_CPUS = 4.0
report = {"seconds": seconds, "runs": [web, room], "livekit_model_cpu_per_media_s": LIVEKIT_WEB_CPUS,
          "web_vs_livekit_model": round(web["cpu_per_media_s"] / LIVEKIT_WEB_CPUS, 3) if web["cpu_per_media_s"] else None,
          "web_vs_room_composite": round(web["cpu_per_media_s"] / room["cpu_per_media_s"], 2)
              if web["cpu_per_media_s"] and room["cpu_per_media_s"] else None,
          "cores": os.cpu_count()}
open(os.path.join(out, "report.json"), "w").write(json.dumps(report, indent=2))
print(json.dumps(report, indent=2))
PY
