#!/usr/bin/python3
"""powerfs's own tests: after a power cut it has lost exactly what was not synced, and kept everything that was.

    /usr/bin/python3 bench/chaos/powerfs/test_powerfs.py   (as root, with python3-fusepy and /dev/fuse)
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class Mounted:
    """Mounts powerfs with fs_args over a fresh backing directory for each test."""
    fs_args = []

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="powerfs-test-")
        self.backing = os.path.join(self.work, "backing")
        self.mount = os.path.join(self.work, "mnt")
        os.makedirs(self.backing)
        os.makedirs(self.mount)
        with open(os.path.join(self.backing, "existing"), "wb") as f:
            f.write(b"there before the mount")
        # Its output goes to a file: a pipe nobody read would fill and stall the file system.
        self.log = open(os.path.join(self.work, "powerfs.log"), "wb")
        self.fs = subprocess.Popen([sys.executable, os.path.join(HERE, "powerfs.py"), self.backing, self.mount, *self.fs_args],
                                   stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not os.path.ismount(self.mount):
            if self.fs.poll() is not None or time.monotonic() > deadline:
                self.log.flush()
                with open(self.log.name, errors="replace") as log:
                    self.fail(f"powerfs did not mount: {log.read()}")
            time.sleep(0.05)

    def tearDown(self):
        subprocess.run(["umount", self.mount], check=False)
        self.log.close()
        with open(self.log.name, errors="replace") as log:
            errors = log.read()
        self.assertNotIn("Traceback", errors, "powerfs raised in an operation")
        try:
            self.fs.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fs.kill()
        subprocess.run(["rm", "-rf", self.work], check=False)

    def path(self, name):
        return os.path.join(self.mount, name)

    def cut(self, torn=False, bytewise=False):
        with open(self.path(".powerfs"), "w") as control:
            control.write("cut torn-bytes" if bytewise else "cut torn" if torn else "cut")

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def sync_dir(self, name=""):
        fd = os.open(self.path(name) if name else self.mount, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def create(self, name, data, sync_file=True, sync_dir=True):
        fd = os.open(self.path(name), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, data)
        if sync_file:
            os.fsync(fd)
        os.close(fd)
        if sync_dir:
            self.sync_dir(os.path.dirname(name))


class PowerFsTest(Mounted, unittest.TestCase):
    def test_what_was_there_at_mount_is_durable(self):
        self.cut()
        self.assertEqual(self.read("existing"), b"there before the mount")

    def test_an_unsynced_write_is_lost_and_a_synced_one_kept(self):
        self.create("f", b"durable.")
        fd = os.open(self.path("f"), os.O_WRONLY | os.O_APPEND)
        os.write(fd, b" lost")
        os.close(fd)
        self.assertEqual(self.read("f"), b"durable. lost")
        self.cut()
        self.assertEqual(self.read("f"), b"durable.")

    def test_every_way_to_sync_data(self):
        # One file per way, written after its durable empty creation, and nothing else synced: each survives alone.
        def pwrite_then(sync):
            def run(name):
                fd = os.open(self.path(name), os.O_WRONLY)
                os.pwrite(fd, b"kept", 0)
                sync(fd)
                os.close(fd)
            return run

        def open_with(flag):
            def run(name):
                fd = os.open(self.path(name), os.O_WRONLY | flag)
                os.pwrite(fd, b"kept", 0)
                os.close(fd)
            return run

        def rwf_dsync(name):
            fd = os.open(self.path(name), os.O_WRONLY)
            os.pwritev(fd, [b"kept"], 0, os.RWF_DSYNC)
            os.close(fd)

        ways = {
            "fsync": pwrite_then(os.fsync),
            "fdatasync": pwrite_then(os.fdatasync),
            "O_DSYNC": open_with(os.O_DSYNC),
            "O_SYNC": open_with(os.O_SYNC),
            "RWF_DSYNC": rwf_dsync,
            "none": pwrite_then(lambda fd: None),
        }
        for name in ways:
            self.create(name, b"")
        for name, way in ways.items():
            way(name)
        self.cut()
        for name in ways:
            self.assertEqual(self.read(name), b"" if name == "none" else b"kept", name)

    def test_a_new_file_needs_its_directory_synced(self):
        self.create("synced-dir", b"x", sync_file=True, sync_dir=True)
        self.create("file-only", b"y", sync_file=True, sync_dir=False)
        self.cut()
        self.assertTrue(os.path.exists(self.path("synced-dir")))
        self.assertFalse(os.path.exists(self.path("file-only")))

    def test_a_rename_needs_its_directory_synced(self):
        self.create("a", b"old")
        self.create("b.tmp", b"new")
        os.rename(self.path("b.tmp"), self.path("a"))
        self.assertEqual(self.read("a"), b"new")
        self.cut()
        self.assertEqual(self.read("a"), b"old")
        self.assertTrue(os.path.exists(self.path("b.tmp")))
        os.rename(self.path("b.tmp"), self.path("a"))
        self.sync_dir()
        self.cut()
        self.assertEqual(self.read("a"), b"new")
        self.assertFalse(os.path.exists(self.path("b.tmp")))

    def test_an_unlink_and_a_truncate_need_syncs(self):
        self.create("gone", b"still here")
        self.create("short", b"0123456789")
        os.unlink(self.path("gone"))
        os.truncate(self.path("short"), 3)
        self.cut()
        self.assertEqual(self.read("gone"), b"still here")
        self.assertEqual(self.read("short"), b"0123456789")
        os.unlink(self.path("gone"))
        fd = os.open(self.path("short"), os.O_WRONLY)
        os.ftruncate(fd, 3)
        os.fsync(fd)
        os.close(fd)
        self.sync_dir()
        self.cut()
        self.assertFalse(os.path.exists(self.path("gone")))
        self.assertEqual(self.read("short"), b"012")

    def test_directories_and_their_files(self):
        os.mkdir(self.path("d"))
        self.create("d/f", b"in d")
        self.cut()
        self.assertFalse(os.path.exists(self.path("d")), "the root was never synced after mkdir")
        os.mkdir(self.path("d"))
        self.create("d/f", b"in d")
        self.sync_dir()
        self.cut()
        self.assertEqual(self.read("d/f"), b"in d")

    def test_a_torn_cut_keeps_a_prefix_of_the_last_unsynced_write(self):
        self.create("t", b"")
        fd = os.open(self.path("t"), os.O_WRONLY)
        os.pwrite(fd, b"A" * 4096, 0)
        os.close(fd)
        self.cut(torn=True)
        data = self.read("t")
        self.assertLessEqual(len(data), 4096)
        self.assertEqual(data, b"A" * len(data))

    def test_a_torn_cut_keeps_whole_sectors_and_a_bytewise_one_any_prefix(self):
        kept = set()
        for round in range(40):
            self.create("s", b"o" * 1024)
            fd = os.open(self.path("s"), os.O_WRONLY)
            os.pwrite(fd, b"N" * 700, 100)  # sectors [0, 512) and [512, 1024): it can keep 0, 412 or 700 bytes
            os.close(fd)
            self.cut(torn=True)
            data = self.read("s")
            self.assertEqual(len(data), 1024)
            new = data.count(b"N")
            self.assertIn(new, (0, 412, 700))
            self.assertEqual(data[100:100 + new], b"N" * new)
            kept.add(new)
        self.assertGreater(len(kept), 1, "the tear point never changed")
        bytewise = set()
        for round in range(20):
            self.create("b", b"o" * 1024)
            fd = os.open(self.path("b"), os.O_WRONLY)
            os.pwrite(fd, b"N" * 700, 100)
            os.close(fd)
            self.cut(bytewise=True)
            bytewise.add(self.read("b").count(b"N"))
        self.assertTrue(bytewise - {0, 412, 700}, "a bytewise tear never fell inside a sector")

    def test_o_direct_is_refused_so_programs_take_their_fallback(self):
        self.create("d", b"")
        with self.assertRaises(OSError):
            os.open(self.path("d"), os.O_WRONLY | os.O_DIRECT)



class IgnoredFileSyncTest(Mounted, unittest.TestCase):
    """--ignore-sync PATTERN breaks a file's syncs on purpose: what they would have made durable is lost at a cut."""
    fs_args = ["--ignore-sync", "exist*"]

    def test_ignored_file_syncs_make_nothing_durable(self):
        self.create("other", b"synced")
        for name in ("existing", "other"):
            with open(self.path(name), "r+b") as f:
                f.write(b"LOST" if name == "existing" else b"KEPT")
                f.flush()
                os.fsync(f.fileno())
        self.cut()
        self.assertEqual(self.read("existing"), b"there before the mount")
        self.assertEqual(self.read("other"), b"KEPTed")


class IgnoredDirectorySyncTest(Mounted, unittest.TestCase):
    """--ignore-sync dirs: no new, renamed or removed entry becomes durable."""
    fs_args = ["--ignore-sync", "dirs"]

    def test_ignored_directory_syncs_make_no_entry_durable(self):
        self.create("new", b"synced")
        os.rename(self.path("existing"), self.path("renamed"))
        self.sync_dir()
        self.cut()
        self.assertFalse(os.path.exists(self.path("new")))
        self.assertFalse(os.path.exists(self.path("renamed")))
        self.assertEqual(self.read("existing"), b"there before the mount")


if __name__ == "__main__":
    unittest.main(verbosity=2)
