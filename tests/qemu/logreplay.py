#!/usr/bin/env python3
"""logreplay.py — replay a dm-log-writes log onto a copy of the device it recorded, and check
the device at every point a power cut could leave it in.

    logreplay.py LOG BASE WORK [--offset BYTES] [--points flush|every] [--check CMD]
                 [--reorder N [--seed S] [--reorder-big W:K]] [--from-mark NAME] [--to-mark NAME]
                 [--list]

LOG is the log device's image, BASE the data device (or the whole disk holding it at --offset
bytes) as it was before logging began, WORK the copy the log is replayed onto (BASE is copied
there first; BASE is never written). At each check point CMD runs through `sh -c` with
REPLAY_IMAGE=WORK, REPLAY_OFFSET, REPLAY_POINT (a one-line description) and REPLAY_INDEX (the
entry number); exit 0 means the state is good. Without --check the points are only listed.

The log format (drivers/md/dm-log-writes.c, Documentation/admin-guide/device-mapper/
log-writes.rst): at byte 0 `struct log_write_super` {le64 magic 0x6a736677736872, le64 version 1,
le64 nr_entries, le32 sectorsize}; from byte `sectorsize` on, nr_entries records, each one
sectorsize-sized block holding `struct log_write_entry` {le64 sector, le64 nr_sectors, le64 flags,
le64 data_len} followed, for a MARK, by data_len bytes of mark text, then (unless DISCARD)
nr_sectors * sectorsize bytes of the data written. sector and nr_sectors count the data device's
logical blocks (sectorsize bytes). Flags: FLUSH 1, FUA 2, DISCARD 4, MARK 8, METADATA 16.

The kernel logs a plain write only when a FLUSH that was submitted after it completes (all such
writes first, then the FLUSH entry), and a FUA write as soon as it completes. So every prefix of
the log that ends at a FLUSH or FUA entry holds exactly writes the device had promised to keep:
what a card with a volatile write-back cache may be left with after a power cut that falls right
after that point (its cache lost, everything it acknowledged as flushed kept). `--points flush`
(default) checks those prefixes, and the state before the data of a FLUSH entry that carries
data (the flush itself covers only what came before), and each MARK. `--points every` checks after
every entry: a device that writes back in order but can stop anywhere. `--reorder N` adds, for
each FLUSH, up to N states holding only a subset of the plain writes logged just before it (all
subsets when there are few, else N random ones, reproducible with --seed) on top of the previous
point: a cache that wrote back in another order and lost the rest. `--reorder-big W:K` draws
only up to K such states for an interval of more than W plain writes (mostly a file's data,
written under a name nothing points at until a later flush: the small intervals of directory and
FAT sectors are where the order matters). At a reordered state REPLAY_IMAGE is a scratch copy
(WORK.sub). Torn sectors (a write cut inside a sector) are not
modelled.

Prints one line per point and a summary `N points, M distinct states checked[ (+R reordered)],
all good` or `... K bad`; exit 0 all good, 1 a state was bad or the log is malformed, 2 usage.
"""

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys

MAGIC = 0x6A736677736872
VERSION = 1
FLUSH, FUA, DISCARD, MARK, METADATA = 1, 2, 4, 8, 16
SUPER = struct.Struct("<QQQI")
ENTRY = struct.Struct("<QQQQ")


class LogError(Exception):
    """The log is not a dm-log-writes log, or is cut short."""


class Entry:
    __slots__ = ("index", "sector", "nr_sectors", "flags", "mark", "data_at")

    def __init__(self, index, sector, nr_sectors, flags, mark, data_at):
        self.index = index
        self.sector = sector
        self.nr_sectors = nr_sectors
        self.flags = flags
        self.mark = mark
        self.data_at = data_at  # byte offset of the data in the log (None for no data)

    def kind(self):
        names = [n for n, f in (("flush", FLUSH), ("fua", FUA), ("discard", DISCARD), ("mark", MARK)) if self.flags & f]
        return "+".join(names) or "write"

    def describe(self, ss):
        if self.flags & MARK:
            return f"entry {self.index} mark '{self.mark}'"
        what = self.kind()
        if self.nr_sectors:
            what += f" {self.nr_sectors * ss} bytes at {self.sector * ss}"
        return f"entry {self.index} {what}"


def parse(f, size):
    """The super block's sector size and the entries of the log open as binary file `f`, of
    `size` bytes. Every length is checked against the file before it is used."""
    f.seek(0)
    head = f.read(SUPER.size)
    if len(head) < SUPER.size:
        raise LogError("shorter than its super block")
    magic, version, nr, ss = SUPER.unpack(head)
    if magic != MAGIC:
        raise LogError(f"bad magic {magic:#x} (not a dm-log-writes log)")
    if version != VERSION:
        raise LogError(f"version {version}, expected {VERSION}")
    if ss < 512 or ss > 65536 or ss & (ss - 1):
        raise LogError(f"sector size {ss}: expected a power of two from 512")
    entries = []
    pos = ss
    for i in range(nr):
        if pos + ss > size:
            raise LogError(f"entry {i} of {nr}: cut short at byte {pos} of {size}")
        f.seek(pos)
        block = f.read(ss)
        sector, nsec, flags, dlen = ENTRY.unpack_from(block)
        mark = None
        if flags & MARK:
            if dlen > ss - ENTRY.size:
                raise LogError(f"entry {i}: mark of {dlen} bytes does not fit its block")
            mark = block[ENTRY.size:ENTRY.size + dlen].decode("utf-8", "replace")
        pos += ss
        data_at = None
        if not flags & DISCARD and nsec:
            data_at = pos
            if nsec > (size - pos) // ss:
                raise LogError(f"entry {i}: {nsec} sectors of data run past the end of the log")
            pos += nsec * ss
        entries.append(Entry(i, sector, nsec, flags, mark, data_at))
    return ss, entries


class Replayer:
    """Applies entries in order onto WORK (at `offset`) and tells whether anything changed
    since the last state checked."""

    def __init__(self, log, ss, work, offset):
        self.log, self.ss, self.work, self.offset = log, ss, work, offset
        self.size = os.fstat(work.fileno()).st_size
        self.dirty = True  # the first state is always checked

    def _target(self, e):
        at = self.offset + e.sector * self.ss
        n = e.nr_sectors * self.ss
        if at + n > self.size:
            raise LogError(f"{e.describe(self.ss)}: beyond the end of the image ({self.size} bytes)")
        return at, n

    def apply(self, e, onto=None):
        """Entry e onto WORK (or onto the open file `onto`, a scratch copy)."""
        if not e.nr_sectors:
            return
        dst = onto or self.work
        at, n = self._target(e)
        if e.flags & DISCARD:
            # What a discarded range reads back as is up to the device: zeros is one answer.
            dst.seek(at)
            dst.write(bytes(n))
        else:
            self.log.seek(e.data_at)
            left = n
            dst.seek(at)
            while left:
                chunk = self.log.read(min(left, 1 << 20))
                if not chunk:
                    raise LogError(f"{e.describe(self.ss)}: data cut short")
                dst.write(chunk)
                left -= len(chunk)
        if onto is None:
            self.dirty = True


def points(entries, mode):
    """(entry, before_data) pairs at which the device is checked, in log order."""
    for e in entries:
        if mode == "every":
            yield e, False
            continue
        if e.flags & FLUSH and e.nr_sectors and not e.flags & DISCARD:
            yield e, True
        if e.flags & (FLUSH | FUA | MARK):
            yield e, False


def subsets(m, n, rng):
    """Up to n proper, non-empty subsets of range(m) (as sorted index lists): all of them when
    there are no more than n, else n drawn at random (each write kept with probability 1/2)."""
    if m < 2 or n <= 0:
        return []
    if (1 << m) - 2 <= n:
        return [[i for i in range(m) if bits >> i & 1] for bits in range(1, (1 << m) - 1)]
    out, seen = [], set()
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        keep = tuple(i for i in range(m) if rng.random() < 0.5)
        if 0 < len(keep) < m and keep not in seen:
            seen.add(keep)
            out.append(list(keep))
    return out


def replay(log_path, base, work, offset=0, mode="flush", check=None, from_mark=None, to_mark=None, out=print, reorder=0, seed=0, big=None):
    """Replay; call check(image, index, description) -> bool at each point. With reorder=N, also
    up to N states per flush interval that hold only some of the plain writes logged before that
    FLUSH (a cache that wrote back out of order), built on a scratch copy WORK.sub; big=(W, K):
    at most K of them for an interval of more than W writes. Returns (points, distinct states
    checked, bad descriptions, entry count by kind, reordered states)."""
    shutil.copyfile(base, work)
    sub = work + ".sub"
    prev = work + ".prev"
    rng = random.Random(seed)
    with open(log_path, "rb") as log, open(work, "r+b") as w:
        ss, entries = parse(log, os.fstat(log.fileno()).st_size)
        r = Replayer(log, ss, w, offset)
        plan = {}
        for e, before in points(entries, mode):
            plan.setdefault(e.index, set()).add(before)
        counts = {}
        tally = {"points": 0, "states": 0, "last": None, "reordered": 0}
        group = []  # plain writes logged since the last checked point, in log order
        bad = []
        active = from_mark is None

        def at_point(e, before):
            desc = e.describe(ss) + (" (before its data)" if before else "")
            tally["points"] += 1
            if r.dirty or tally["last"] is None:
                w.flush()
                os.fsync(w.fileno())
                tally["last"] = check(work, e.index, desc) if check else True
                tally["states"] += 1
                r.dirty = False
                out(f"{'ok ' if tally['last'] else 'BAD'} {desc}")
            else:
                out(f"{'ok ' if tally['last'] else 'BAD'} {desc} (unchanged)")
            if not tally["last"]:
                bad.append(desc)

        def reordered(e):
            # The state before this FLUSH could hold any subset of `group` (written back in
            # any order); the empty and the full subset are the points checked anyway.
            n = reorder if big is None or len(group) <= big[0] else min(reorder, big[1])
            subs = subsets(len(group), n, rng)
            if not subs:
                return
            # One copy of the state before the interval per interval; after each subset its
            # writes' ranges are put back from it.
            shutil.copyfile(prev, sub)
            with open(prev, "rb") as before, open(sub, "r+b") as f:
                for keep in subs:
                    for i in keep:
                        r.apply(group[i], onto=f)
                    f.flush()
                    left = [group[i].index for i in range(len(group)) if i not in keep]
                    desc = f"{e.describe(ss)}: {len(keep)} of the {len(group)} writes before it (without entries {','.join(map(str, left))})"
                    tally["reordered"] += 1
                    good = check(sub, e.index, desc) if check else True
                    out(f"{'ok ' if good else 'BAD'} {desc}")
                    if not good:
                        bad.append(desc)
                    for i in keep:
                        at, nbytes = r._target(group[i])
                        before.seek(at)
                        f.seek(at)
                        f.write(before.read(nbytes))

        plain = lambda e: not e.flags & (FLUSH | FUA | MARK)  # noqa: E731
        for e in entries:
            counts[e.kind()] = counts.get(e.kind(), 0) + 1
            if e.flags & MARK and e.mark == from_mark:
                active = True
            want = plan.get(e.index, set()) if active else set()
            if reorder and plain(e):
                if not group:
                    w.flush()
                    shutil.copyfile(work, prev)
                group.append(e)
            elif reorder and e.flags & FLUSH and active and group:
                w.flush()
                reordered(e)
            if not plain(e):
                group = []
            if True in want:
                at_point(e, True)
            r.apply(e)
            if False in want:
                at_point(e, False)
            if e.flags & MARK and e.mark == to_mark:
                break
        npoints, nstates = tally["points"], tally["states"]
    for f in (sub, prev):
        if os.path.exists(f):
            os.unlink(f)
    return npoints, nstates, bad, counts, tally["reordered"]


def main(argv):
    p = argparse.ArgumentParser(description="replay a dm-log-writes log and check every flush point")
    p.add_argument("log")
    p.add_argument("base")
    p.add_argument("work")
    p.add_argument("--offset", type=int, default=0, help="byte offset of the logged device in BASE")
    p.add_argument("--points", choices=("flush", "every"), default="flush")
    p.add_argument("--check", help="shell command run at each point; exit 0 = good")
    p.add_argument("--from-mark", help="check only after the mark with this text")
    p.add_argument("--to-mark", help="stop after the mark with this text")
    p.add_argument("--reorder", type=int, default=0, metavar="N",
                   help="also check up to N states per flush interval holding only some of its writes")
    p.add_argument("--seed", type=int, default=0, help="for --reorder's random subsets")
    p.add_argument("--reorder-big", metavar="W:K",
                   help="at most K reordered states for an interval of more than W writes")
    p.add_argument("--list", action="store_true", help="print the entries and exit")
    a = p.parse_args(argv)
    if a.offset < 0:
        p.error("--offset: must not be negative")
    if a.list:
        with open(a.log, "rb") as log:
            ss, entries = parse(log, os.fstat(log.fileno()).st_size)
        for e in entries:
            print(e.describe(ss))
        return 0

    if a.reorder < 0:
        p.error("--reorder: must not be negative")
    big = None
    if a.reorder_big is not None:
        try:
            big = tuple(int(x) for x in a.reorder_big.split(":"))
        except ValueError:
            big = ()
        if len(big) != 2 or min(big) < 0:
            p.error("--reorder-big: expected W:K, two numbers")

    def check(image, index, desc):
        env = dict(os.environ, REPLAY_IMAGE=image, REPLAY_OFFSET=str(a.offset), REPLAY_POINT=desc, REPLAY_INDEX=str(index))
        return subprocess.run(["sh", "-c", a.check], env=env).returncode == 0

    try:
        n, states, bad, counts, nre = replay(a.log, a.base, a.work, a.offset, a.points, check if a.check else None,
                                             a.from_mark, a.to_mark, reorder=a.reorder, seed=a.seed, big=big)
    except (LogError, OSError) as e:
        print(f"logreplay: {a.log}: {e}", file=sys.stderr)
        return 1
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    print(f"log: {sum(counts.values())} entries ({kinds})")
    verdict = "all good" if not bad else f"{len(bad)} bad"
    extra = f" (+{nre} reordered)" if a.reorder else ""
    print(f"{n} points, {states} distinct states checked{extra}, {verdict}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
