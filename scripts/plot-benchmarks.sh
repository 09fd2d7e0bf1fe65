#!/usr/bin/env bash
# Renders PNG plots from a Google Benchmark JSON file of helsim_bench:
#
#   scripts/plot-benchmarks.sh JSON [OUTDIR]      (OUTDIR defaults to docs/plots)
#
# JSON comes from --benchmark_out=FILE --benchmark_out_format=json, with or without
# --benchmark_repetitions: the median aggregate is used where there is one, else the run itself
# (the median of the runs if repetitions were reported without aggregates). Failed or skipped
# cases count as absent.
#
#   ipc-ratios.png        one group of bars per goal of the IPC issue: each helsim case next to
#                         the host baseline(s) it is held against, time per operation on a log
#                         scale, with the helsim/baseline ratio in the group's title
#   scale-<family>.png    one per BM_Scale_<Family>/<N> family present: cost per operation
#                         (the ns_per_op counter, else the case's time) against N on a log x
#                         axis, and the bytes_per_item counter on a second y axis if reported
#
# Times are wall-clock (real_time) on both sides of every ratio, because the ping-pong cases
# can only be measured that way. HELSIM_PLOT_TIME=cpu_time plots CPU time instead, the
# convention of the cases above the IPC section of docs/benchmarks.md.
# Goals and scale families with no case in the JSON are left out (ipc-ratios.png altogether if no
# goal has one); neither is an error.
set -euo pipefail

if (($# < 1 || $# > 2)); then
	echo "usage: $0 JSON [OUTDIR]" >&2
	exit 2
fi
# Both paths are relative to where the script was started; common.sh moves to the root.
json="$(realpath -- "$1")"
outdir=""
if (($# == 2)); then
	outdir="$(realpath -m -- "$2")"
fi
time_field="${HELSIM_PLOT_TIME:-real_time}"
if [[ $time_field != real_time && $time_field != cpu_time ]]; then
	echo "HELSIM_PLOT_TIME must be real_time or cpu_time, not '$time_field'" >&2
	exit 2
fi

# shellcheck source-path=SCRIPTDIR disable=SC1091  # common.sh is checked with shellcheck -x
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
outdir="${outdir:-$HELSIM_ROOT/docs/plots}"

helsim_install_packages gnuplot-nox python3

if [[ ! -r $json ]]; then
	echo "cannot read $json" >&2
	exit 1
fi
mkdir -p "$outdir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The .dat files and the per-plot gnuplot settings that depend on which cases are present.
python3 - "$json" "$work" "$time_field" <<'PY'
import json, math, os, re, statistics, sys

path, work, time_field = sys.argv[1:]
with open(path, encoding='utf-8') as f:
    entries = json.load(f).get('benchmarks', [])

TO_NS = {'ns': 1.0, 'us': 1e3, 'ms': 1e6, 's': 1e9}
# Suffixes Google Benchmark appends to a case's name that are not arguments.
OPTION = re.compile(r'^(real_time|process_time|manual_time|(iterations|repeats|min_time|'
                    r'min_warmup_time|threads):.*)$')

def base_name(entry):
    name = entry.get('run_name') or re.sub(r'_(mean|median|stddev|cv)$', '', entry['name'])
    return '/'.join(p for p in name.split('/') if not OPTION.match(p))

def numeric(entry):
    scale = TO_NS.get(entry.get('time_unit', 'ns'), 1.0)
    values = {k: v for k, v in entry.items() if isinstance(v, (int, float))
              and not isinstance(v, bool)}
    for key in ('real_time', 'cpu_time'):
        if key in values:
            values[key] *= scale
    return values

medians, runs = {}, {}
for entry in entries:
    if entry.get('error_occurred') or entry.get('skipped'):
        continue
    name = base_name(entry)
    if entry.get('run_type') == 'aggregate':
        if entry.get('aggregate_name') == 'median':
            medians[name] = numeric(entry)
    else:
        runs.setdefault(name, []).append(numeric(entry))
cases = dict(medians)
for name, reps in runs.items():
    if name not in cases:
        keys = set.intersection(*(set(r) for r in reps))
        cases[name] = {k: statistics.median(r[k] for r in reps) for k in keys}

# Gnuplot and data-file strings: "\n" in them is a line break, which the labels use.
def quote(text):
    return '"' + text.replace('"', "'") + '"'

def ratio(value):
    return f'{value:.0f}' if value >= 10 else f'{value:.3g}'

def duration(ns):
    for unit, size in (('s', 1e9), ('ms', 1e6), ('µs', 1e3)):
        if ns >= size:
            return f'{ns / size:.3g} {unit}'
    return f'{ns:.3g} ns'

# ---------------------------------------------------------------- (a) ratios per goal

# (title, helsim case, baselines, operations per iteration, unit, bytes per operation).
# Each case is (name, label).
GOALS = [
    ('same-CPU round trip', ('BM_Ipc_RoundTrip_SameCpu', 'helsim'),
     [('BM_Host_BoostFiberChannelPingPong', 'Boost.Fiber')], 1, 'round trip', 0),
    ('cross-CPU round trip', ('BM_Ipc_RoundTrip_CrossCpu', 'helsim'),
     [('BM_Host_SpinPingPong', 'spin'), ('BM_Host_PipePingPong', 'pipe')], 1, 'round trip', 0),
    ('cross-CPU, one CPU hog', ('BM_Ipc_RoundTrip_CrossCpu_WithHog', 'helsim'),
     [('BM_Host_PipePingPong_WithHog', 'pipe')], 1, 'round trip', 0),
    ('async nop, batch 32', ('BM_Queue_AsyncNop/32', 'helsim'),
     [('BM_Host_IoUringNop/32', 'io_uring')], 32, 'op', 0),
    ('context switch', ('BM_Fiber_Switch', 'helsim'),
     [('BM_Host_ContextSwitch', 'boost.context')], 2, 'switch', 0),
    ('64 KiB send', ('BM_Ipc_Send/65536', 'helsim'),
     [('BM_Host_Memcpy/65536', 'memcpy')], 1, 'send or copy', 65536),
    ('1 MiB send', ('BM_Ipc_Send/1048576', 'helsim'),
     [('BM_Host_Memcpy/1048576', 'memcpy')], 1, 'send or copy', 1 << 20),
]

def per_op_ns(case, per):
    return case.get(time_field, case.get('real_time', 0.0)) / per

bars, groups, x = [], [], 0.0
for title, ours, baselines, per, unit, size in GOALS:
    present = [(name, label, role) for (name, label), role in
               [(ours, 0)] + [(b, 1) for b in baselines] if name in cases]
    if not present:
        continue
    start = x
    for name, label, role in present:
        ns = per_op_ns(cases[name], per)
        # The bandwidth from the plotted time, so that it reads the same clock on both sides.
        bandwidth = f'{size / ns:.3g} GB/s' if size and ns > 0 else ''
        bars.append((x, ns, role, duration(ns), label, bandwidth))
        x += 1
    ratios = []
    if ours[0] in cases:
        ours_ns = per_op_ns(cases[ours[0]], per)
        ratios = [f'{ratio(ours_ns / per_op_ns(cases[name], per))}× {label}'
                  for name, label, role in present[1:] if per_op_ns(cases[name], per) > 0]
    subtitle = ('helsim = ' + ', '.join(ratios)) if ratios else ''
    groups.append((start, x - 1, f'{title}\\nper {unit}', subtitle))
    x += 0.8  # a gap between groups

if bars:
    with open(os.path.join(work, 'ratios.dat'), 'w', encoding='utf-8') as f:
        for bx, ns, role, text, label, bandwidth in bars:
            f.write(f'{bx} {ns:.6g} {role} {quote(text)} {quote(label)} {int(bool(bandwidth))} '
                    f'{quote(bandwidth)}\n')
    how = 'medians' if medians else 'single runs'
    with open(os.path.join(work, 'ratios.gp'), 'w', encoding='utf-8') as f:
        title = f'helsim against its host baselines ({how}, {time_field}, {os.path.basename(path)})'
        f.write(f'set title {quote(title)}\n')
        # Wider than the bars: a group's ratio line can be wider than a group of two.
        f.write(f'set xrange [-1.1:{bars[-1][0] + 1.1}]\n')
        # Whole decades, with the tallest bar's labels kept out of the top fifth of the graph,
        # where the group titles are.
        bottom = math.floor(math.log10(min(b[1] for b in bars)) - 0.3)
        tallest = math.log10(max(b[1] for b in bars)) + 0.4
        top = math.ceil(bottom + (tallest - bottom) / 0.78)
        f.write(f'set yrange [1e{bottom}:1e{top}]\n')
        for first, last, title, subtitle in groups:
            middle = (first + last) / 2
            f.write(f'set label {quote(title)} at {middle}, graph 0.95 center front\n')
            if subtitle:
                f.write(f'set label {quote(subtitle)} at {middle}, graph 0.84 center front '
                        f'font ",9"\n')
        for first, last, _, _ in groups[:-1]:
            f.write(f'set arrow from {last + 0.9}, graph 0 to {last + 0.9}, graph 1 nohead '
                    f'dashtype 3 lc rgb "#bbbbbb"\n')

# ---------------------------------------------------------------- (b) scale families

SCALE = re.compile(r'^BM_Scale_(\w+)/(?:\w+:)?(\d+)((?:/.*)?)$')
families = {}
for name, case in cases.items():
    m = SCALE.match(name)
    if not m:
        continue
    family, n, rest = m.group(1), int(m.group(2)), m.group(3).lstrip('/')
    counted = 'ns_per_op' in case
    ns = case['ns_per_op'] if counted else case.get(time_field, case.get('real_time'))
    if ns is None:
        continue
    families.setdefault(family, {}).setdefault(rest, []).append(
        (n, ns, case.get('bytes_per_item'), counted))

with open(os.path.join(work, 'families'), 'w', encoding='utf-8') as listing:
    for family, series in sorted(families.items()):
        has_bytes = any(b is not None for points in series.values() for _, _, b, _ in points)
        counted = all(c for points in series.values() for _, _, _, c in points)
        names = sorted(series)
        # One data block per series (gnuplot's index), N ascending.
        with open(os.path.join(work, f'scale-{family}.dat'), 'w', encoding='utf-8') as f:
            for rest in names:
                f.write(f'# {rest or family}\n')
                for n, ns, b, _ in sorted(series[rest]):
                    f.write(f'{n} {ns:.6g} {"NaN" if b is None else f"{b:.6g}"}\n')
                f.write('\n\n')
        with open(os.path.join(work, f'scale-{family}.gp'), 'w', encoding='utf-8') as f:
            plots = []
            for i, rest in enumerate(names):
                label = f' ({rest})' if rest else ''
                cost = 'ns per op' if counted else 'ns per iteration'
                plots.append(f'data index {i} using 1:2 with linespoints ls {2 * (i % 4) + 1} '
                             f'title {quote(cost + label)}')
                if has_bytes:
                    plots.append(f'data index {i} using 1:3 axes x1y2 with linespoints '
                                 f'ls {2 * (i % 4) + 2} title {quote("bytes per item" + label)}')
            if has_bytes:
                f.write('set y2label "bytes per item"\nset y2tics\nset ytics nomirror\n')
            f.write(f'set title {quote("BM_Scale_" + family)}\n')
            # A tic at every N measured (families use few, not always powers of ten), and
            # room around the outermost points so they do not sit on the border.
            ns_measured = sorted({n for points in series.values() for n, _, _, _ in points})
            f.write(f'set xrange [{ns_measured[0] / 1.5:g}:{ns_measured[-1] * 1.5:g}]\n')
            if len(ns_measured) <= 12:
                f.write(f'set xtics ({", ".join(str(n) for n in ns_measured)})\n')
            # Without the counter the case's own time is all there is: one whole iteration.
            f.write('set ylabel "ns per op (ns_per_op)"\n' if counted else
                    f'set ylabel "ns per iteration ({time_field})"\n')
            f.write('plot ' + ', \\\n\t'.join(plots) + '\n')
        listing.write(family + '\n')
PY

if [[ $(gnuplot -e 'set terminal' 2>&1) == *pngcairo* ]]; then
	terminal='pngcairo size 1500,750 font "DejaVu Sans,10"'
else
	terminal='png size 1500,750'
fi

if [[ -f $work/ratios.dat ]]; then
	gnuplot <<-GP
		set terminal $terminal
		set output "$outdir/ipc-ratios.png"
		data = "$work/ratios.dat"
		set termoption noenhanced
		set logscale y
		set ylabel "time per operation (log scale)"
		set ytics ("1 ns" 1, "10 ns" 10, "100 ns" 100, "1 µs" 1e3, "10 µs" 1e4, "100 µs" 1e5, \
			"1 ms" 1e6, "10 ms" 1e7, "100 ms" 1e8, "1 s" 1e9, "10 s" 1e10)
		set grid ytics
		set style fill solid 0.85 border -1
		set boxwidth 0.8
		set key off
		unset xtics
		set xtics nomirror scale 0 font ",9"
		load "$work/ratios.gp"
		# Blue: helsim, orange: host baselines. A bar with a bandwidth has two label lines.
		plot data using 1:2:(\$3 == 0 ? 0x3a6fb0 : 0xd08a2c):xtic(5) with boxes lc rgb variable, \
			data using 1:(\$6 == 0 ? \$2 : NaN):4 with labels offset 0,0.7 font ",8", \
			data using 1:(\$6 == 1 ? \$2 : NaN):4 with labels offset 0,1.6 font ",8", \
			data using 1:(\$6 == 1 ? \$2 : NaN):7 with labels offset 0,0.7 font ",8"
	GP
	echo "wrote $outdir/ipc-ratios.png"
else
	echo "no IPC goal case in $json: ipc-ratios.png not written"
fi

while read -r family; do
	gnuplot <<-GP
		set terminal $terminal
		set output "$outdir/scale-$family.png"
		set termoption noenhanced
		data = "$work/scale-$family.dat"
		set logscale x
		set xlabel "N"
		set yrange [0:*]
		set y2range [0:*]
		set grid
		set key top left
		set style line 1 lc rgb "#3a6fb0" lw 2 pt 7
		set style line 2 lc rgb "#d08a2c" lw 2 pt 5 dt 2
		set style line 3 lc rgb "#2e8b57" lw 2 pt 7
		set style line 4 lc rgb "#b5651d" lw 2 pt 5 dt 2
		set style line 5 lc rgb "#8e44ad" lw 2 pt 7
		set style line 6 lc rgb "#c0392b" lw 2 pt 5 dt 2
		set style line 7 lc rgb "#555555" lw 2 pt 7
		set style line 8 lc rgb "#999999" lw 2 pt 5 dt 2
		load "$work/scale-$family.gp"
	GP
	echo "wrote $outdir/scale-$family.png"
done <"$work/families"
