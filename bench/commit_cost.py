#!/usr/bin/env python3
"""What one durable commit costs on this disk, by the way its metadata is written.

FasterLog (DeviceLogCommitCheckpointManager) writes each commit's metadata into a new file (create, O_SYNC write,
close) and deletes the one before; the data itself is an O_SYNC write into the segment. This times, per commit:
  new-file   data write + new metadata file + unlink of the previous one (what the gateway does today)
  slot       data write + overwrite of one of two slots in a preallocated metadata file
  data-only  the data write alone (the floor)
Usage: bench/commit_cost.py [directory (default: a temp dir under /tmp)] [commits (default 2000)]
"""
import os
import sys
import tempfile
import time


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else None
    commits = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory(dir=base, prefix="commit-cost.") as d:
        data = os.open(os.path.join(d, "data"), os.O_CREAT | os.O_WRONLY | os.O_SYNC, 0o644)
        record, metadata = b"x" * 1024, b"m" * 120

        start, previous = time.perf_counter(), None
        for i in range(commits):
            os.pwrite(data, record, (i % 1000) * 1024)
            name = os.path.join(d, f"commit.{i}")
            fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_SYNC, 0o644)
            os.pwrite(fd, metadata, 0)
            os.close(fd)
            if previous:
                os.unlink(previous)
            previous = name
        new_file = (time.perf_counter() - start) / commits

        slots = os.open(os.path.join(d, "slots"), os.O_CREAT | os.O_WRONLY | os.O_SYNC, 0o644)
        os.pwrite(slots, b"\0" * 8192, 0)
        start = time.perf_counter()
        for i in range(commits):
            os.pwrite(data, record, (i % 1000) * 1024)
            os.pwrite(slots, metadata, (i % 2) * 4096)
        slot = (time.perf_counter() - start) / commits

        start = time.perf_counter()
        for i in range(commits):
            os.pwrite(data, record, (i % 1000) * 1024)
        data_only = (time.perf_counter() - start) / commits
        for fd in (data, slots):
            os.close(fd)

    print(f"per commit ({commits}): new-file {new_file * 1e6:.0f} us, slot {slot * 1e6:.0f} us, data-only {data_only * 1e6:.0f} us")


if __name__ == "__main__":
    main()
