#!/usr/bin/env python3
"""Slopes and a plot from scripts/soak.sh samples: soak-report.py SAMPLES.csv OUT_DIR."""
import collections, csv, os, sys
samples, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
series = collections.defaultdict(list)
for r in csv.DictReader(open(samples)):
    series[r["process"]].append((int(r["seconds"]), int(r["rss_kib"]), int(r["fds"])))

def slope(points):
    n = len(points)
    if n < 3:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0

lines = []
for name, pts in sorted(series.items()):
    warm = [p for p in pts if p[0] >= 60] or pts
    rss = slope([(t / 60, r / 1024) for t, r, _ in warm])
    fds = slope([(t / 60, f) for t, _, f in warm])
    lo, hi = min(r for _, r, _ in warm) / 1024, max(r for _, r, _ in warm) / 1024
    late = warm[len(warm) // 2:]
    rss_late = slope([(t / 60, r / 1024) for t, r, _ in late])
    line = (f"{name}: {len(pts)} samples over {pts[-1][0]} s; RSS {lo:.0f}-{hi:.0f} MiB, "
            f"slope {rss:+.3f} MiB/min (second half {rss_late:+.3f}); "
            f"descriptors {warm[0][2]}-{warm[-1][2]}, slope {fds:+.3f}/min")
    print(line)
    lines.append(line)
open(f"{out}/slopes.txt", "w").write("\n".join(lines) + "\n")

# The plot: RSS (MiB) of each process against time, as a plain SVG.
W, H, L, B = 800, 360, 60, 40
tmax = max(p[0] for pts in series.values() for p in pts) or 1
rmax = max(p[1] for pts in series.values() for p in pts) / 1024 * 1.1 or 1
colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-10}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{L}" y1="10" x2="{L}" y2="{H-B}" stroke="black"/>',
       f'<text x="{W/2}" y="{H-8}" text-anchor="middle">seconds (0-{tmax})</text>',
       f'<text x="14" y="{H/2}" transform="rotate(-90 14 {H/2})" text-anchor="middle">RSS MiB (0-{rmax:.0f})</text>']
for i, (name, pts) in enumerate(sorted(series.items())):
    xy = " ".join(f"{L + (t / tmax) * (W - L - 10):.1f},{H - B - (r / 1024 / rmax) * (H - B - 10):.1f}" for t, r, _ in pts)
    c = colours[i % len(colours)]
    svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{xy}"/>')
    svg.append(f'<text x="{L + 10}" y="{20 + 14 * i}" fill="{c}">{name}</text>')
svg.append("</svg>")
open(f"{out}/rss.svg", "w").write("\n".join(svg))
print(f"samples, slopes and plot in {out}/")
