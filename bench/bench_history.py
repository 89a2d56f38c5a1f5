"""What the deploy history costs a deploy: digesting the source (a folder's files, or an
archive) and appending a record, at several sizes.

    .venv/bin/python bench/bench_history.py [--files 100,3000] [--repeat 5]

Prints the best of ``--repeat`` runs for each size: the tree digest of a folder of N
files of 4 KiB, the SHA-256 of a tar.gz of it, and one append to a journal that
already holds 10,000 records (appends read the last line from the end).
"""

import argparse
import os
import tarfile
import tempfile

from sarge import journal

from timing import best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", default="100,3000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        book = journal.Journal(os.path.join(tmp, "h.jsonl"), os.path.join(tmp, "lock"),
                               lambda: "2026-12-02T00:00:00Z")
        for n in range(10_000):
            book.append({"action": "deploy", "app": "web", "n": n})
        append = best(lambda: book.append({"action": "deploy", "app": "web"}), args.repeat)
        print(f"append to a 10,000-record history: {append * 1000:.2f} ms")
        for count in (int(x) for x in args.files.split(",")):
            folder = os.path.join(tmp, f"src{count}")
            for i in range(count):
                sub = os.path.join(folder, f"d{i // 100}")
                os.makedirs(sub, exist_ok=True)
                with open(os.path.join(sub, f"f{i}.py"), "wb") as f:
                    f.write(os.urandom(4096))
            archive = folder + ".tar.gz"
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(folder, arcname="app")
            tree = best(lambda: journal.source_identity(folder), args.repeat)
            packed = best(lambda: journal.source_identity(archive), args.repeat)
            print(f"{count} files ({count * 4} KiB): folder digest {tree * 1000:.1f} ms, "
                  f"archive sha256 {packed * 1000:.1f} ms")


if __name__ == "__main__":
    main()
