"""Watch the memory of a process tree: the test suite's notebooks and everything they start.

    python .ci/memwatch.py ROOT_PID OUT_JSON

Every half second it reads, for each process below ROOT_PID, its proportional set size (PSS: each shared page counted
once, split among the processes that share it, so forked DataLoader workers and a CLI's subprocesses add what they
really take) and charges it to the notebook whose `nbdev-test` process it descends from. It keeps each notebook's
peak and its largest single process, and the peak of the whole tree at once (what the machine must hold) with the
notebooks running then, and writes them to OUT_JSON when ROOT_PID ends or it is stopped (SIGTERM).
"""
import json, os, signal, sys, time

def children() -> dict:
    "pid -> parent pid of every process"
    out = {}
    for d in os.listdir('/proc'):
        if not d.isdigit(): continue
        try:
            with open(f'/proc/{d}/stat') as f: s = f.read()
            out[int(d)] = int(s[s.rindex(')') + 2:].split()[1])
        except (OSError, ValueError, IndexError): pass
    return out

def pss_kib(pid:int) -> int:
    "Proportional set size of `pid` in KiB (its RSS where smaps_rollup cannot be read), 0 when it has gone"
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'): return int(line.split()[1])
    except OSError: pass
    try:
        with open(f'/proc/{pid}/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') // 1024
    except OSError: return 0

def command(pid:int) -> str:
    "The command line of `pid`, shortened"
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f: return f.read().decode(errors='replace').replace('\0', ' ')[:200]
    except OSError: return ''

def notebook_of(pid:int) -> str|None:
    "The .ipynb a `nbdev-test` process `pid` runs, else None"
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f: args = f.read().decode(errors='replace').split('\0')
    except OSError: return None
    if not any(a.endswith('nbdev-test') or a.endswith('/nbdev-test') for a in args): return None
    return next((a for a in args if a.endswith('.ipynb')), None)

def main(root:int, out:str):
    peaks, total, at_peak, biggest, done = {}, 0, {}, {}, False
    def stop(*_):
        nonlocal done; done = True
    signal.signal(signal.SIGTERM, stop)
    while not done and os.path.exists(f'/proc/{root}'):
        par = children(); kids = {}
        for pid, pp in par.items(): kids.setdefault(pp, []).append(pid)
        ours, todo = [], list(kids.get(root, []))
        while todo:
            pid = todo.pop(); ours.append(pid); todo += kids.get(pid, [])
        nb_of, now, tree = {}, {}, 0   # (looked up afresh each time: a process id may be reused)
        for pid in ours:
            if pid == os.getpid(): continue
            p, nb = pid, None
            while p != root and p in par and nb is None:
                if p not in nb_of: nb_of[p] = notebook_of(p)
                nb = nb_of[p]; p = par[p]
            kib = pss_kib(pid); tree += kib
            if nb:
                now[nb] = now.get(nb, 0) + kib
                if kib > biggest.get(nb, (0, ''))[0]: biggest[nb] = (kib, command(pid))
        for nb, kib in now.items(): peaks[nb] = max(peaks.get(nb, 0), kib)
        if tree > total: total, at_peak = tree, dict(now)
        time.sleep(0.5)
    gib = lambda k: round(k / 2**20, 2)
    with open(out, 'w') as f:
        json.dump({'suite_peak_gib': gib(total), 'at_suite_peak_gib': {k: gib(v) for k, v in at_peak.items()},
                   'notebook_peak_gib': {k: gib(v) for k, v in sorted(peaks.items())},
                   'largest_process_gib': {k: [gib(v[0]), v[1]] for k, v in sorted(biggest.items())}}, f, indent=1)

if __name__ == '__main__': main(int(sys.argv[1]), sys.argv[2])
