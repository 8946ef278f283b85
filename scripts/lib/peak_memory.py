#!/usr/bin/env python3
"""Runs one command and prints the memory of that command's own process.

    python3 scripts/lib/peak_memory.py [--stdin FILE | --pipe FILE] [--stdout FILE] -- CMD [ARG...]

--stdin gives CMD the file itself as standard input; --pipe writes the file into a pipe that is
CMD's standard input (what `producer | CMD` gives it).

Prints one line: `peak_rss_kib peak_anon_kib samples exit_code wall_ms`.

- peak RSS: GNU time's maximum resident set size of CMD (`/usr/bin/time -f %M`). GNU time
  forks and execs CMD, so the figure is CMD's own (at most the forked copy of time itself,
  about 1-2 MiB, which every process measured here exceeds), never this harness's: Python's
  own rusage of a child started by vfork carries Python's peak.
- peak private (anonymous) memory: RssAnon from /proc/PID/status of CMD's process, sampled
  every millisecond from the moment it runs until it exits; the highest sample. It is a lower
  bound: a spike shorter than a millisecond between two samples is missed. The same method
  for every program measured, so they compare.

Must not: read any rusage of its own, send anything anywhere, or run longer than --timeout
(default 120 s; the command is killed then and the script fails).
"""
import os
import subprocess
import sys
import tempfile
import threading
import time


def status_kib(pid, field):
    """The field (e.g. RssAnon) of /proc/PID/status in KiB, or None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def child_of(pid):
    """The first child of pid (time's child: the measured command), or None yet."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def main(argv):
    stdin = stdout = pipe = None
    timeout = 120.0
    while argv and argv[0] != "--":
        flag, value = argv[0], argv[1]
        if flag == "--stdin":
            stdin = open(value, "rb")
        elif flag == "--pipe":
            pipe = value
        elif flag == "--stdout":
            stdout = open(value, "wb")
        elif flag == "--timeout":
            timeout = float(value)
        else:
            sys.exit(f"peak_memory.py: unknown flag {flag}")
        argv = argv[2:]
    cmd = argv[1:]
    if not cmd:
        sys.exit(__doc__)
    with tempfile.NamedTemporaryFile(mode="r") as rss_file:
        start = time.monotonic()
        timer = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *cmd],
            stdin=subprocess.PIPE if pipe else stdin,
            # Write-only, as a shell's >/dev/null: sfpair takes a /dev/null opened read-write
            # on fd 1 for a closed standard output (src/main.rs).
            stdout=stdout if stdout else open(os.devnull, "wb"),
        )
        if pipe:
            def feed():
                with open(pipe, "rb") as f:
                    try:
                        timer.stdin.write(f.read())
                    except BrokenPipeError:
                        pass
                timer.stdin.close()

            threading.Thread(target=feed, daemon=True).start()
        pid = None
        peak_anon = 0
        samples = 0
        while timer.poll() is None:
            if time.monotonic() - start > timeout:
                timer.kill()
                timer.wait()
                sys.exit(f"peak_memory.py: {cmd[0]} ran past {timeout} s")
            if pid is None:
                pid = child_of(timer.pid)
            if pid is not None:
                anon = status_kib(pid, "RssAnon")
                if anon is not None:
                    peak_anon = max(peak_anon, anon)
                    samples += 1
            time.sleep(0.001)
        wall_ms = (time.monotonic() - start) * 1000
        text = rss_file.read().strip().splitlines()
        # time writes "Command exited with non-zero status N" before the figure.
        peak_rss = int(text[-1]) if text else 0
    print(f"{peak_rss} {peak_anon} {samples} {timer.returncode} {wall_ms:.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
