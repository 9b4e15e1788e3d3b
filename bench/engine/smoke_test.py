#!/usr/bin/env python3
"""Smoke test of `ppdb-bench engine`: a tiny run (N = 2000, one repetition)
on every engine built in. Every JSON line must parse and carry the required
fields; every engine must report every workload; every workload that ran
must report > 0 ops/s; reads must find exactly the keys that are present.
Only PPDB may report n/a, and only for APIs still pending.
Usage: smoke_test.py <ppdb-bench> <scratch dir>"""
import json
import os
import shutil
import subprocess
import sys

REQUIRED = ("engine", "workload", "n", "threads", "compression", "ops_per_s",
            "peak_rss_bytes", "disk_bytes")
ROWS = {("fillseq", 1), ("fillrandom", 1), ("overwrite", 1), ("fillsync", 1),
        ("fillsync", 8), ("readrandom", 1), ("readmissing", 1), ("seekrandom", 1),
        ("readseq", 1), ("readrandom", 2), ("deleterandom", 1)}
N = 2000


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    exe, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    for comp in ("on", "off"):
        cmd = [exe, "engine", "--num=%d" % N, "--reps=1", "--sync-num=200",
               "--max-seconds=60", "--json", "--compression=" + comp, "--dir=" + scratch]
        print("running: " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, timeout=280)
        if p.returncode != 0:
            fail("exit code %d" % p.returncode)
        seen = {}
        for line in p.stdout.decode().splitlines():
            o = json.loads(line)
            for k in REQUIRED:
                if k not in o:
                    fail("missing %s in %s" % (k, line))
            if o["n"] != N or o["compression"] != comp:
                fail("bad n/compression: " + line)
            seen.setdefault(o["engine"], {})[(o["workload"], o["threads"])] = o
        if "ppdb" not in seen:
            fail("no ppdb results")
        for engine, rows in seen.items():
            if set(rows) != ROWS:
                fail("%s: workloads %s, want %s" % (engine, sorted(rows), sorted(ROWS)))
            for (wl, th), o in rows.items():
                check_row(engine, wl, th, o)
        print("compression %s: engines %s OK" % (comp, ", ".join(sorted(seen))))
    shutil.rmtree(scratch, ignore_errors=True)


def check_row(engine, wl, th, o):
    if o["status"] == "n/a":
        if engine != "ppdb" or "API pending" not in o["note"]:
            fail("%s %s n/a without a pending API: %s" % (engine, wl, o))
        return
    if o["status"] != "ok":
        fail("%s %s/%d status %s" % (engine, wl, th, o["status"]))
    if not o["ops_per_s"] or o["ops_per_s"] <= 0:
        fail("%s %s/%d ops_per_s %s" % (engine, wl, th, o["ops_per_s"]))
    if o["peak_rss_bytes"] <= 0:
        fail("%s %s peak_rss_bytes %s" % (engine, wl, o["peak_rss_bytes"]))
    if wl == "readrandom" and o["found"] != o["ops"]:
        fail("%s readrandom/%d found %s of %s" % (engine, th, o["found"], o["ops"]))
    if wl == "readmissing" and o["found"] != 0:
        fail("%s readmissing found %s" % (engine, o["found"]))
    if wl in ("fillseq", "fillrandom") and o["disk_bytes"] <= 0:
        fail("%s %s disk_bytes %s" % (engine, wl, o["disk_bytes"]))


if __name__ == "__main__":
    main()
