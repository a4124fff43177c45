#!/usr/bin/env python3
"""Host tests of logreplay.py on logs written here in the kernel's documented format
(drivers/md/dm-log-writes.c: log_write_super, log_write_entry), independent of QEMU.
Run: python3 tests/qemu/test_logreplay.py (the HOST_ONLY scenario logreplay-unit runs it)."""

import os
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logreplay as lr  # noqa: E402

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logreplay.py")


def write_log(path, entries, ss=512, nr=None, magic=lr.MAGIC, version=1):
    """entries: (sector, flags, data bytes or sector count for a discard, mark text)."""
    out = bytearray(struct.pack("<QQQI", magic, version, len(entries) if nr is None else nr, ss))
    out += bytes(ss - len(out))
    for sector, flags, data, mark in entries:
        if flags & lr.DISCARD:
            nsec, payload = data, b""
        else:
            nsec, payload = len(data) // ss, data
        m = (mark or "").encode()
        block = struct.pack("<QQQQ", sector, nsec, flags, len(m)) + m
        out += block + bytes(ss - len(block)) + payload
    with open(path, "wb") as f:
        f.write(out)


def fill(byte, n=512):
    return bytes([byte]) * n


class Replay(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.TemporaryDirectory()
        self.addCleanup(self.d.cleanup)
        self.log = os.path.join(self.d.name, "log")
        self.base = os.path.join(self.d.name, "base")
        self.work = os.path.join(self.d.name, "work")
        with open(self.base, "wb") as f:
            f.write(fill(0xEE, 8 * 512))

    def run_replay(self, verdict=lambda desc, img: True, **kw):
        """Replay the log; returns replay()'s answer and (point, image bytes) per check."""
        seen = []

        def check(image, index, desc):
            with open(image, "rb") as f:
                img = f.read()
            seen.append((desc, img))
            return verdict(desc, img)

        res = lr.replay(self.log, self.base, self.work, check=check, out=lambda s: None, **kw)
        return res, seen

    def test_states_at_flush_and_fua_only(self):
        # Two plain writes, then their flush: the writes are on the medium only from the flush on.
        # The FUA write stands alone; the trailing plain write is never flushed.
        write_log(self.log, [
            (1, 0, fill(1), None),
            (2, 0, fill(2), None),
            (0, lr.FLUSH, b"", None),
            (3, lr.FUA, fill(3), None),
            (4, 0, fill(4), None),
        ])
        (n, states, bad, counts, _), seen = self.run_replay()
        self.assertEqual([d for d, _ in seen], ["entry 2 flush", "entry 3 fua 512 bytes at 1536"])
        self.assertEqual((n, states, bad), (2, 2, []))
        self.assertEqual(counts, {"write": 3, "flush": 1, "fua": 1})
        flush_img, fua_img = seen[0][1], seen[1][1]
        self.assertEqual(flush_img[:512], fill(0xEE))
        self.assertEqual(flush_img[512:1536], fill(1) + fill(2))
        self.assertEqual(flush_img[1536:], fill(0xEE, 5 * 512))
        self.assertEqual(fua_img[1536:2048], fill(3))
        self.assertEqual(fua_img[2048:2560], fill(0xEE), "a write after the last flush is not in any checked state")
        # The replay still applies it: WORK ends as the whole log.
        with open(self.work, "rb") as f:
            self.assertEqual(f.read()[2048:2560], fill(4))
        with open(self.base, "rb") as f:
            self.assertEqual(f.read(), fill(0xEE, 8 * 512), "BASE is never written")

    def test_flush_with_data_checked_before_and_after_its_data(self):
        write_log(self.log, [(1, 0, fill(1), None), (2, lr.FLUSH | lr.FUA, fill(2), None)])
        (n, states, bad, _, _), seen = self.run_replay()
        self.assertEqual([d for d, _ in seen], ["entry 1 flush+fua 512 bytes at 1024 (before its data)", "entry 1 flush+fua 512 bytes at 1024"])
        self.assertEqual(seen[0][1][512:1536], fill(1) + fill(0xEE))
        self.assertEqual(seen[1][1][512:1536], fill(1) + fill(2))

    def test_unchanged_states_counted_not_rechecked(self):
        write_log(self.log, [
            (1, 0, fill(1), None),
            (0, lr.FLUSH, b"", None),
            (0, lr.FLUSH, b"", None),
            (0, lr.MARK, b"", "done"),
        ])
        (n, states, bad, _, _), seen = self.run_replay()
        self.assertEqual((n, states, bad), (3, 1, []))

    def test_bad_state_reported_and_kept_bad_while_unchanged(self):
        write_log(self.log, [
            (1, 0, fill(0x66), None),
            (0, lr.FLUSH, b"", None),
            (0, lr.FLUSH, b"", None),
            (1, 0, fill(1), None),
            (0, lr.FLUSH, b"", None),
        ])
        (n, states, bad, _, _), _ = self.run_replay(verdict=lambda d, img: img[512] != 0x66)
        self.assertEqual(bad, ["entry 1 flush", "entry 2 flush"])
        self.assertEqual((n, states), (3, 2))

    def test_marks_and_discards(self):
        write_log(self.log, [
            (1, 0, fill(1, 1024), None),
            (0, lr.MARK, b"", "begin"),
            (1, lr.DISCARD, 1, None),
            (0, lr.FLUSH, b"", None),
            (0, lr.MARK, b"", "end"),
            (5, lr.FUA, fill(5), None),
        ])
        with open(self.log, "rb") as f:
            ss, entries = lr.parse(f, os.path.getsize(self.log))
        self.assertEqual(ss, 512)
        self.assertEqual([e.mark for e in entries], [None, "begin", None, None, "end", None])
        self.assertEqual(entries[2].data_at, None, "a discard carries no data")
        self.assertEqual(entries[5].data_at, 512 + 512 + 1024 + 512 + 512 + 512 + 512 + 512)
        (n, states, bad, _, _), seen = self.run_replay(from_mark="begin", to_mark="end")
        self.assertEqual([d for d, _ in seen], ["entry 1 mark 'begin'", "entry 3 flush"])
        self.assertEqual(n, 3)
        self.assertEqual(seen[1][1][512:1536], bytes(512) + fill(1), "discarded sectors read back as zeros")

    def test_every_entry(self):
        write_log(self.log, [(1, 0, fill(1), None), (2, 0, fill(2), None), (0, lr.FLUSH, b"", None)])
        (n, states, _, _, _), seen = self.run_replay(mode="every")
        self.assertEqual((n, states), (3, 2), "the empty flush changes nothing: not a new state")
        self.assertEqual(seen[0][1][512:1536], fill(1) + fill(0xEE))

    def test_reorder_checks_every_proper_subset_of_a_small_interval(self):
        write_log(self.log, [
            (1, lr.FUA, fill(9), None),
            (2, 0, fill(2), None),
            (3, 0, fill(3), None),
            (4, lr.DISCARD, 1, None),
            (0, lr.FLUSH, b"", None),
        ])
        (n, states, bad, _, nre), seen = self.run_replay(reorder=10)
        self.assertEqual((n, states, nre, bad), (2, 2, 6, []))
        subs = [(d, img) for d, img in seen if "of the 3 writes" in d]
        self.assertEqual(len(subs), 6)
        kept = set()
        for d, img in subs:
            self.assertEqual(img[512:1024], fill(9), f"{d}: the FUA write before the interval is kept")
            have = (img[1024:1536] == fill(2), img[1536:2048] == fill(3), img[2048:2560] == bytes(512))
            self.assertEqual(img[1024:1536] in (fill(2), fill(0xEE)), True)
            kept.add(have)
        self.assertEqual(len(kept), 6, "each proper non-empty subset once")
        self.assertNotIn((True, True, True), kept)
        self.assertNotIn((False, False, False), kept)
        self.assertIn("1 of the 3 writes before it (without entries 2,3)", [d.split(": ", 1)[1] for d, _ in subs][0])
        # Bad when only the second write made it.
        (_, _, bad, _, _), _ = self.run_replay(reorder=10, verdict=lambda d, img: not (img[1536:2048] == fill(3) and img[1024:1536] != fill(2)))
        self.assertEqual(len(bad), 2, bad)

    def test_reorder_draws_at_most_n_reproducibly(self):
        write_log(self.log, [(i, 0, fill(i), None) for i in range(1, 8)] + [(0, lr.FLUSH, b"", None)])
        (_, _, _, _, nre), seen = self.run_replay(reorder=5, seed=7)
        (_, _, _, _, nre2), seen2 = self.run_replay(reorder=5, seed=7)
        self.assertEqual((nre, nre2), (5, 5))
        self.assertEqual([d for d, _ in seen], [d for d, _ in seen2])
        self.assertEqual(lr.subsets(1, 5, None), [])
        # An interval of more than W writes gets at most K of them; one of W or fewer all N.
        (_, _, _, _, nre), _ = self.run_replay(reorder=5, seed=7, big=(6, 1))
        self.assertEqual(nre, 1)
        (_, _, _, _, nre), _ = self.run_replay(reorder=5, seed=7, big=(7, 1))
        self.assertEqual(nre, 5)
        self.assertEqual(len(lr.subsets(3, 100, None)), 6)

    def test_offset_and_4k_sectors(self):
        with open(self.base, "wb") as f:
            f.write(fill(0xEE, 3 * 4096))
        write_log(self.log, [(1, lr.FUA, fill(7, 4096), None)], ss=4096)
        (_, _, _, _, _), seen = self.run_replay(offset=4096)
        self.assertEqual(seen[0][1][8192:], fill(7, 4096))
        self.assertEqual(seen[0][1][:8192], fill(0xEE, 8192))

    def test_write_past_the_image_refused(self):
        write_log(self.log, [(8, lr.FUA, fill(7), None)])
        with self.assertRaisesRegex(lr.LogError, "beyond the end of the image"):
            self.run_replay()

    def test_malformed_logs(self):
        cases = [
            (dict(magic=1), "bad magic"),
            (dict(version=2), "version 2"),
            (dict(ss=100), "sector size 100"),
            (dict(nr=3), "entry 1 of 3: cut short"),
        ]
        for kw, why in cases:
            write_log(self.log, [(1, 0, fill(1), None)], **kw)
            with self.assertRaisesRegex(lr.LogError, why):
                self.run_replay()
        # Data that runs past the end of the log.
        write_log(self.log, [(1, 0, fill(1, 2048), None)])
        with open(self.log, "r+b") as f:
            f.truncate(os.path.getsize(self.log) - 512)
        with self.assertRaisesRegex(lr.LogError, "run past the end"):
            self.run_replay()
        # A mark longer than its block.
        write_log(self.log, [(0, lr.MARK, b"", "x")])
        with open(self.log, "r+b") as f:
            f.seek(512 + 24)
            f.write(struct.pack("<Q", 600))
        with self.assertRaisesRegex(lr.LogError, "does not fit"):
            self.run_replay()
        with open(self.log, "wb") as f:
            f.write(b"short")
        with self.assertRaisesRegex(lr.LogError, "shorter than its super block"):
            self.run_replay()

    def test_cli(self):
        write_log(self.log, [(1, 0, fill(1), None), (0, lr.FLUSH, b"", None), (2, lr.FUA, fill(2), None)])
        # Good while sector 2 is not yet 2s.
        chk = 'test "$(od -An -tx1 -j1024 -N1 "$REPLAY_IMAGE" | tr -d " ")" != 02'
        p = subprocess.run([sys.executable, TOOL, self.log, self.base, self.work, "--check", chk], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("BAD entry 2 fua 512 bytes at 1024", p.stdout)
        self.assertIn("2 points, 2 distinct states checked, 1 bad", p.stdout)
        p = subprocess.run([sys.executable, TOOL, self.log, self.base, self.work, "--check", "true"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("log: 3 entries (1 flush, 1 fua, 1 write)", p.stdout)
        self.assertIn("2 points, 2 distinct states checked, all good", p.stdout)
        write_log(self.log, [(1, 0, fill(1), None), (2, 0, fill(2), None), (0, lr.FLUSH, b"", None)])
        p = subprocess.run([sys.executable, TOOL, self.log, self.base, self.work, "--reorder", "1", "--check", "true"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 points, 1 distinct states checked (+1 reordered), all good", p.stdout)
        self.assertFalse(os.path.exists(self.work + ".sub"), "the scratch copy is removed")
        p = subprocess.run([sys.executable, TOOL, self.log, self.base, self.work, "--reorder", "-1"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        with open(self.log, "r+b") as f:
            f.write(b"\0")
        p = subprocess.run([sys.executable, TOOL, self.log, self.base, self.work, "--check", "true"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("logreplay: ", p.stderr)
        self.assertIn("bad magic", p.stderr)


if __name__ == "__main__":
    unittest.main()
