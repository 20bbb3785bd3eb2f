#!/usr/bin/python3
"""powerfs: a pass-through file system that can lose power, for durability tests (in the manner of LazyFS).

Every file and directory lives in a backing directory, which is what programs on the mount read and write. Beside it
powerfs keeps what is *durable*: for each file, its content as of its last sync (fsync, fdatasync, a write through an
O_SYNC/O_DSYNC handle or with RWF_DSYNC — the kernel turns those into syncs), and for each directory, its entries as
of its last fsync. A new, renamed or removed entry becomes durable only when its directory is synced, as on a real
disk. Writing `cut` to the control file `/.powerfs` (at the mount's root) is a power cut: everything not durable is
thrown away at once, and the backing tree is rebuilt from what is durable. `cut torn` also keeps a random prefix of
the last unsynced write of each file, as a torn write: whole 512-byte sectors of it, since a disk writes a sector
whole or not at all (the assumption PostgreSQL and SQLite make, and the gateway's commit record); `cut torn-bytes`
tears anywhere, byte-wise. Reading `/.powerfs` gives counters as JSON.

O_DIRECT opens are refused (EINVAL), as FUSE file systems traditionally do: programs then take their page-cache
path, which is what runs on such a mount. The kernel's page cache is write-through here and dropped at every open,
and attributes and entries are never cached, so that after a cut every read sees what powerfs holds.

    powerfs.py BACKING MOUNTPOINT [--state DIR] [--seed N] [--ignore-sync WHAT]...

`--ignore-sync` breaks a sync on purpose, to show that a durability test notices it: `dirs` ignores every directory
fsync, anything else is a shell pattern matched against a file's name (`data.log.*`, `commit.record`, `*.tmp`), whose
fsyncs and synchronous writes then make nothing durable, as if the program had skipped them.

Runs in the foreground until unmounted (fusermount -u MOUNTPOINT, or umount). Needs Debian's python3-fusepy and
/dev/fuse.
"""

import argparse
import errno
import fnmatch
import json
import os
import random
import shutil
import stat
import threading

import fusepy

CONTROL = "/.powerfs"


class PowerFs(fusepy.Operations):
    # POSIX record locks are left to the kernel, which keeps them for the mount as for a local file system: with no
    # 'lock' operation fusepy does not ask for them.
    lock = None

    def __init__(self, backing, state, seed, ignore_sync=()):
        self.ignore_dirs = "dirs" in ignore_sync
        self.ignore_files = [p for p in ignore_sync if p != "dirs"]
        self.backing = os.path.realpath(backing)
        self.state = os.path.realpath(state)
        self.random = random.Random(seed)
        self._mutex = threading.RLock()
        self.next_id = 0
        self.ids = {}        # path on the mount -> file id (kept across renames)
        self.dirty = {}      # file id -> list of (offset, length) written since its last sync
        self.last_write = {}  # file id -> (offset, data) of the last unsynced write, for torn cuts
        self.durable_dirs = {}  # directory path -> {name: ("file", id) | ("dir", None)} as of its last fsync
        self.handles = {}    # fh -> (os fd, path)
        self.next_fh = 1
        self.counters = {"cuts": 0, "syncs": 0, "dir_syncs": 0, "writes": 0, "lost_writes": 0, "lost_entries": 0,
                         "direct_refused": 0, "ignored_syncs": 0}
        os.makedirs(os.path.join(self.state, "data"), exist_ok=True)
        self._adopt("/")

    # -- the durable state ------------------------------------------------------------------------------------------

    def _real(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _durable_data(self, file_id):
        return os.path.join(self.state, "data", str(file_id))

    def _new_id(self):
        self.next_id += 1
        return self.next_id

    def _adopt(self, path):
        """What is on the backing directory when mounted counts as durable."""
        real = self._real(path)
        entries = {}
        for name in sorted(os.listdir(real)):
            child = os.path.join(path, name) if path != "/" else "/" + name
            if os.path.isdir(os.path.join(real, name)):
                entries[name] = ("dir", None)
                self._adopt(child)
            else:
                file_id = self._new_id()
                self.ids[child] = file_id
                shutil.copyfile(os.path.join(real, name), self._durable_data(file_id))
                entries[name] = ("file", file_id)
        self.durable_dirs[path] = entries

    def _id_of(self, path):
        file_id = self.ids.get(path)
        if file_id is None:
            file_id = self._new_id()
            self.ids[path] = file_id
            open(self._durable_data(file_id), "wb").close()  # a new file: durably empty until synced
        return file_id

    def _sync_file(self, path):
        with self._mutex:
            if any(fnmatch.fnmatchcase(os.path.basename(path), pattern) for pattern in self.ignore_files):
                self.counters["ignored_syncs"] += 1
                return
            file_id = self._id_of(path)
            ranges = self.dirty.pop(file_id, [])
            self.last_write.pop(file_id, None)
            real = self._real(path)
            size = os.path.getsize(real)
            with open(real, "rb") as current, open(self._durable_data(file_id), "r+b") as durable:
                for offset, length in ranges:
                    current.seek(offset)
                    chunk = current.read(length)
                    durable.seek(offset)
                    durable.write(chunk)
                durable.truncate(size)
            self.counters["syncs"] += 1

    def _sync_dir(self, path):
        with self._mutex:
            if self.ignore_dirs:
                self.counters["ignored_syncs"] += 1
                return
            real = self._real(path)
            entries = {}
            for name in os.listdir(real):
                child = path.rstrip("/") + "/" + name
                if os.path.isdir(os.path.join(real, name)):
                    entries[name] = ("dir", None)
                    self.durable_dirs.setdefault(child, {})
                else:
                    entries[name] = ("file", self._id_of(child))
            self.durable_dirs[path] = entries
            self.counters["dir_syncs"] += 1

    def _mark(self, path, offset, data):
        file_id = self._id_of(path)
        self.dirty.setdefault(file_id, []).append((offset, len(data)))
        self.last_write[file_id] = (offset, bytes(data))
        self.counters["writes"] += 1

    SECTOR = 512

    def _tear(self, offset, length, bytewise):
        """How many bytes of a write at offset survive a torn cut: a random prefix, ending on a sector boundary."""
        if bytewise:
            return self.random.randrange(0, length + 1)
        ends = [end - offset for end in range(offset - offset % self.SECTOR + self.SECTOR, offset + length, self.SECTOR)]
        return self.random.choice([0, *ends, length])

    def cut(self, torn, bytewise=False):
        """A power cut: the backing tree becomes exactly what is durable (only what differs is touched)."""
        with self._mutex:
            for fd, _ in self.handles.values():
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.handles.clear()
            self.counters["lost_writes"] += sum(len(r) for r in self.dirty.values())
            if torn:
                for file_id, (offset, data) in self.last_write.items():
                    keep = self._tear(offset, len(data), bytewise)
                    if keep:
                        with open(self._durable_data(file_id), "r+b") as durable:
                            durable.seek(offset)
                            durable.write(data[:keep])
            durable_files, durable_dirs = {}, {"/"}
            self._durable_tree("/", durable_files, durable_dirs)
            # Away with what is not durable: entries never synced into their directory, or under another name.
            for root, dirs, files in os.walk(self.backing, topdown=False):
                rel = "/" + os.path.relpath(root, self.backing) if root != self.backing else "/"
                for name in files:
                    path = rel.rstrip("/") + "/" + name
                    if durable_files.get(path) != self.ids.get(path):
                        os.remove(os.path.join(root, name))
                        self.counters["lost_entries"] += 1
                        self.ids.pop(path, None)
                for name in dirs:
                    path = rel.rstrip("/") + "/" + name
                    if path not in durable_dirs:
                        shutil.rmtree(os.path.join(root, name))
                        self.counters["lost_entries"] += 1
            for path in sorted(durable_dirs, key=len):
                os.makedirs(self._real(path), exist_ok=True)
            for path, file_id in durable_files.items():
                real = self._real(path)
                if self.ids.get(path) == file_id and os.path.exists(real):
                    self._restore(real, file_id)
                else:
                    shutil.copyfile(self._durable_data(file_id), real)
                    self.ids[path] = file_id
            self.ids = {p: i for p, i in self.ids.items() if p in durable_files}
            self.dirty.clear()
            self.last_write.clear()
            self.counters["cuts"] += 1

    def _durable_tree(self, path, files, dirs):
        for name, (kind, file_id) in self.durable_dirs.get(path, {}).items():
            child = path.rstrip("/") + "/" + name
            if kind == "dir":
                dirs.add(child)
                self._durable_tree(child, files, dirs)
            else:
                files[child] = file_id

    def _restore(self, real, file_id):
        """Makes a file that kept its name equal to its durable content: only its unsynced ranges and size differ."""
        durable_path = self._durable_data(file_id)
        size = os.path.getsize(durable_path)
        with open(durable_path, "rb") as durable, open(real, "r+b") as current:
            for offset, length in self.dirty.get(file_id, []):
                durable.seek(offset)
                chunk = durable.read(max(0, min(length, size - offset)))
                current.seek(offset)
                current.write(chunk)
            current.truncate(size)

    def _report(self):
        with self._mutex:
            return json.dumps(self.counters, sort_keys=True).encode() + b"\n"

    # -- file system operations ---------------------------------------------------------------------------------------

    def getattr(self, path, fh=None):
        if path == CONTROL:
            return {"st_mode": stat.S_IFREG | 0o666, "st_nlink": 1, "st_size": len(self._report())}
        try:
            st = os.lstat(self._real(path))
        except FileNotFoundError:
            raise fusepy.FuseOSError(errno.ENOENT)
        return {key: getattr(st, key) for key in ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid", "st_blocks")}

    def readdir(self, path, fh):
        names = [".", ".."] + os.listdir(self._real(path))
        return names + ([CONTROL[1:]] if path == "/" else [])

    def access(self, path, mode):
        if path != CONTROL and not os.access(self._real(path), mode):
            raise fusepy.FuseOSError(errno.EACCES)

    def statfs(self, path):
        st = os.statvfs(self.backing)
        return {key: getattr(st, key) for key in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def mkdir(self, path, mode):
        with self._mutex:
            os.mkdir(self._real(path), mode)

    def rmdir(self, path):
        with self._mutex:
            os.rmdir(self._real(path))

    def unlink(self, path):
        with self._mutex:
            os.unlink(self._real(path))
            self.ids.pop(path, None)  # its durable data stays while a durable entry names it

    def rename(self, old, new):
        with self._mutex:
            os.rename(self._real(old), self._real(new))
            moved = {p: i for p, i in self.ids.items() if p == old or p.startswith(old + "/")}
            for p, i in moved.items():
                del self.ids[p]
                self.ids[new + p[len(old):]] = i

    def chmod(self, path, mode):
        os.chmod(self._real(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._real(path), uid, gid)

    def utimens(self, path, times=None):
        if path != CONTROL:
            os.utime(self._real(path), times)

    def truncate(self, path, length, fh=None):
        if path == CONTROL:
            return
        with self._mutex:
            real = self._real(path)
            size = os.path.getsize(real)
            os.truncate(real, length)
            # Not durable until synced: the bytes between the two sizes are what a cut restores or a sync copies.
            self.dirty.setdefault(self._id_of(path), []).append((min(size, length), abs(length - size)))

    def fallocate(self, path, mode, offset, length, fh):
        raise fusepy.FuseOSError(errno.EOPNOTSUPP)

    def _open(self, path, flags, mode=None):
        if flags & getattr(os, "O_DIRECT", 0):
            self.counters["direct_refused"] += 1
            raise fusepy.FuseOSError(errno.EINVAL)
        real = self._real(path)
        os_flags = flags & ~(os.O_CREAT | os.O_EXCL | getattr(os, "O_DIRECT", 0))
        fd = os.open(real, os_flags | (os.O_CREAT if mode is not None else 0), mode or 0o644)
        with self._mutex:
            self._id_of(path)
            fh = self.next_fh
            self.next_fh += 1
            self.handles[fh] = (fd, path)
            if flags & (os.O_SYNC | os.O_DSYNC):
                self.handles[fh] = (fd, path + "\0sync")
        return fh

    def open(self, path, flags):
        if path == CONTROL:
            return 0
        return self._open(path, flags)

    def create(self, path, mode, fi=None):
        with self._mutex:
            if path in self.ids and not os.path.exists(self._real(path)):
                del self.ids[path]
            return self._open(path, os.O_RDWR, mode)

    def _handle(self, fh):
        fd, path = self.handles[fh]
        return fd, path.split("\0")[0], path.endswith("\0sync")

    def read(self, path, size, offset, fh):
        if path == CONTROL:
            return self._report()[offset:offset + size]
        fd, _, _ = self._handle(fh)
        return os.pread(fd, size, offset)

    def write(self, path, data, offset, fh):
        if path == CONTROL:
            command = data.decode(errors="replace").strip()
            if command.startswith("cut"):
                self.cut(torn="torn" in command, bytewise="torn-bytes" in command)
            return len(data)
        with self._mutex:
            fd, real_path, synced = self._handle(fh)
            written = os.pwrite(fd, data, offset)
            self._mark(real_path, offset, data[:written])
        if synced:
            self._sync_file(real_path)
        return written

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        with self._mutex:
            entry = self.handles.pop(fh, None)
        if entry is not None:
            os.close(entry[0])
        return 0

    def fsync(self, path, datasync, fh):
        if path != CONTROL:
            self._sync_file(path)
        return 0

    def fsyncdir(self, path, datasync, fh):
        self._sync_dir(path)
        return 0

    def opendir(self, path):
        return 0

    def releasedir(self, path, fh):
        return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backing")
    parser.add_argument("mountpoint")
    parser.add_argument("--state", help="where durable contents are kept (default: BACKING.durable)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ignore-sync", action="append", default=[], metavar="WHAT",
                        help="'dirs', or a pattern of file names whose syncs are ignored (repeatable)")
    args = parser.parse_args()
    state = args.state or args.backing.rstrip("/") + ".durable"
    fs = PowerFs(args.backing, state, args.seed, args.ignore_sync)
    # No direct_io: on a direct-I/O file the kernel sends no sync for a write with RWF_DSYNC or through an O_DSYNC
    # handle; through its (write-through) page cache it does. The page cache is dropped at every open, and
    # attributes and entries are never cached, so after a cut a program that opens a file reads what powerfs holds.
    fusepy.FUSE(fs, args.mountpoint, foreground=True, nothreads=False, attr_timeout=0, entry_timeout=0, negative_timeout=0)


if __name__ == "__main__":
    main()
