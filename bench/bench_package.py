"""What packaging costs, and what the manifest's check adds to a deploy, at several sizes.

    .venv/bin/python bench/bench_package.py [--files 100,3000] [--repeat 3]

For a folder of N files of 4 KiB (random bytes: gzip cannot shrink them) and a
Procfile: ``validate`` (every check but --deep), ``package`` (validate, select, hash,
write the reproducible tar.gz), the safe unpack of that archive a deploy does, and
the manifest's verification of the unpacked folder that a deploy now adds. Best of
``--repeat`` runs each.
"""

import argparse
import os
import shutil
import tempfile

from sarge.package import package, validate, verify
from sarge.unpack import unpack

from timing import best


def make_source(folder, count):
    os.makedirs(folder)
    with open(os.path.join(folder, "Procfile"), "w") as f:
        f.write("web: gunicorn app:app --bind 127.0.0.1:$PORT\n")
    for i in range(count):
        sub = os.path.join(folder, f"d{i // 100}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i}.py"), "wb") as f:
            f.write(os.urandom(4096))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", default="100,3000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(x) for x in args.files.split(",")):
            source = os.path.join(tmp, f"src{count}")
            make_source(source, count)
            archive = source + ".tar.gz"
            checked = best(lambda: validate(source), args.repeat)
            packed = best(lambda: package(source, archive), args.repeat)
            target = os.path.join(tmp, "unpacked")

            def unpacked():
                shutil.rmtree(target, ignore_errors=True)
                os.mkdir(target)
                unpack(archive, target)

            extract = best(unpacked, args.repeat)
            verified = best(lambda: verify(target), args.repeat)
            print(f"{count} files ({count * 4} KiB, archive {os.path.getsize(archive) // 1024} "
                  f"KiB): validate {checked * 1000:.0f} ms, package {packed * 1000:.0f} ms, "
                  f"unpack {extract * 1000:.0f} ms, verify {verified * 1000:.0f} ms")


if __name__ == "__main__":
    main()
