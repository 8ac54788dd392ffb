#!/usr/bin/env python3
"""Instructions per function from the counter's profile (count.c's tbs=FILE).

usage: profile.py TBS NM BASE [TOP]
  TBS   lines "vaddr insns runs" (hex, dec, dec): the translation blocks run in the marked regions
  NM    `nm -C -n --defined-only` of the same, unstripped binary
  BASE  where the guest loaded it (hex; qemu -d page's start_code)
  TOP   rows to print (default 25)

A block is charged to the function whose symbol precedes its address; with fat LTO, inlined
code counts for the function it was inlined into. Blocks outside the binary (libc, libasound,
the loader) are summed as "<outside the binary>".
"""
import bisect
import re
import sys


def main():
    tbs, nm, base = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    addrs, names = [], []
    for line in open(nm, encoding="utf-8", errors="replace"):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW" and parts[0]:
            addrs.append(int(parts[0], 16))
            # drop the hash suffix of legacy Rust symbols
            names.append(re.sub(r"::h[0-9a-f]{16}$", "", parts[2]))
    end = max(addrs) + 0x100000 if addrs else 0
    per = {}
    total = 0
    for line in open(tbs):
        va, n, runs = line.split()
        insns = int(n) * int(runs)
        total += insns
        off = int(va, 16) - base
        i = bisect.bisect_right(addrs, off) - 1
        name = names[i] if 0 <= off < end and i >= 0 else "<outside the binary>"
        per[name] = per.get(name, 0) + insns
    print(f"{total:>14,d}  100.0 %  (all instructions in the marked regions)")
    for name, insns in sorted(per.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{insns:>14,d} {100 * insns / max(total, 1):6.1f} %  {name[:150]}")


if __name__ == "__main__":
    main()
