#!/usr/bin/env python3
"""Build the file-type identification data set: real files from pinned Debian 12 (bookworm) packages.

Run from the repository root on Debian 12 with ``apt-get update`` done:

    python scripts/build_filetypes_dataset.py --out_dir outputs/filetypes-data --cache /tmp/filetypes-debs

Each package in ``data/filetypes/packages.tsv`` is fetched with ``apt-get download NAME=VERSION`` and read with
``dpkg-deb --fsys-tarfile``; nothing is installed. The label of a file is what the package's layout and the file's
name say (``RULES`` below, first match wins); neither libmagic nor Magika is consulted. A labelled file is kept only
when its bytes agree with its label (``consistent``: the format's own signature for binary formats, UTF-8 without NUL
bytes for text, a parse for JSON, TOML, XML and Python); the others are counted as label errors in the data card. Man
pages (``usr/share/man/*/NAME.N.gz``) are stored gunzipped as ``troff``; the ``.deb`` file itself is one ``deb`` file.

At most ``PER_PACKAGE`` files of one label come from one package (the smallest sha256 first), files over ``MAX_SIZE``
bytes or under ``MIN_SIZE`` are skipped, and a content seen before (same sha256) is kept once. The split is by package:
``packages.tsv`` names each package's split, so near-identical files of one package never sit on both sides.

Output: ``OUT_DIR/{train,test}/LABEL/PACKAGE/FILE`` (the layout ``scripts/train.py --data_dir`` reads) and
``data/filetypes/manifest.csv.gz`` (split, label, package, version, path in the package, size, sha256), sorted,
gzipped with mtime 0, so a rebuild is byte-identical. ``--choose`` instead writes a new ``packages.tsv`` from the apt-file Contents index
(``apt-get install apt-file && apt-file update``): for each label, the smallest packages that hold it.
"""

from __future__ import annotations

import argparse
import ast
import collections
import csv
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "filetypes"
PER_PACKAGE = 25  # files of one label from one package
PER_SPLIT = {"train": 350, "test": 150}  # files of one label in one split (the smallest sha256 first)
MIN_SPLIT = {"train": 50, "test": 20}  # a label with fewer files in a split, or from under 3 packages, is dropped
MIN_SIZE, MAX_SIZE = 16, 8 << 20
MAN_PAGE = re.compile(r"^usr/share/man/(?:[^/]+/)?man\d[^/]*/[^/]+\.\d[^/.]*\.gz$")
BIN_DIR = re.compile(r"^(?:usr/)?s?bin/[^/.]+$")

# (label, regex on the path inside the package). First match wins; ELF executables are files in bin/ or sbin/.
RULES = [
    ("troff", MAN_PAGE.pattern),
    ("elf", r"^(?:usr/)?lib/.*\.so(?:\.\d+)*$|" + BIN_DIR.pattern),
    ("jar", r"\.jar$"), ("zip", r"\.zip$"), ("gzip", r"\.gz$"), ("bzip2", r"\.bz2$"), ("xz", r"\.xz$"),
    ("zstd", r"\.zst$"), ("tar", r"\.tar$"),
    ("png", r"\.png$"), ("jpeg", r"\.jpe?g$"), ("gif", r"\.gif$"), ("svg", r"\.svg$"), ("ico", r"\.ico$"),
    ("pdf", r"\.pdf$"), ("ttf", r"\.ttf$"), ("woff2", r"\.woff2$"),
    ("html", r"\.html?$"), ("xml", r"\.xml$"), ("json", r"\.json$"), ("yaml", r"\.ya?ml$"), ("toml", r"\.toml$"),
    # Sphinx's _sources/NAME.EXT.txt is the page's source: .rst.txt (or a plain .txt: old Sphinx) reST, .md.txt Markdown
    ("markdown", r"\.(?:md|markdown)$|/_sources/.*\.md\.txt$"),
    ("rst", r"\.rst$|/_sources/(?:.*/)?[^/.]+(?:\.rst)?\.txt$"),
    ("sources", r"/_sources/.*\.txt$"),  # another _sources format (a notebook, ...): no label (UNLABELLED)
    ("cmake", r"(?:^|/)CMakeLists\.txt$"),  # CMake, not plain text: no label
    ("text", r"^usr/share/doc/[^/]+/copyright$|\.txt$"),
    ("python", r"\.py$"), ("c", r"\.c$"), ("cpp", r"\.(?:cpp|cc|cxx|hpp|hh|hxx)$"), ("shell", r"\.sh$"),
    ("perl", r"\.p[lm]$"), ("ruby", r"\.rb$"), ("php", r"\.php$"), ("go", r"\.go$"), ("rust", r"\.rs$"),
    ("javascript", r"\.js$"), ("typescript", r"\.ts$"), ("css", r"\.css$"), ("lua", r"\.lua$"),
    ("java", r"\.java$"), ("tcl", r"\.tcl$"), ("latex", r"\.tex$"), ("csv", r"\.csv$"),
    ("makefile", r"(?:^|/)(?:GNUmakefile|[Mm]akefile)$|\.mk$"),
]  # fmt: skip
COMPILED = [(label, re.compile(rx)) for label, rx in RULES]
UNLABELLED = {"sources", "cmake"}  # matched only to keep them out of the label after them
LABELS = [label for label, _ in RULES if label not in UNLABELLED] + ["deb"]  # deb: the package file itself

SIGNATURES = {  # the format's own magic number: (offset, bytes)
    "elf": [(0, b"\x7fELF")], "jar": [(0, b"PK\x03\x04")], "zip": [(0, b"PK\x03\x04"), (0, b"PK\x05\x06")],
    "gzip": [(0, b"\x1f\x8b")], "bzip2": [(0, b"BZh")], "xz": [(0, b"\xfd7zXZ\x00")],
    "zstd": [(0, b"\x28\xb5\x2f\xfd")],
    "tar": [(257, b"ustar")], "png": [(0, b"\x89PNG\r\n\x1a\n")], "jpeg": [(0, b"\xff\xd8\xff")],
    "gif": [(0, b"GIF87a"), (0, b"GIF89a")], "ico": [(0, b"\x00\x00\x01\x00")], "pdf": [(0, b"%PDF-")],
    "ttf": [(0, b"\x00\x01\x00\x00"), (0, b"true"), (0, b"OTTO")], "woff2": [(0, b"wOF2")],
    "deb": [(0, b"!<arch>\ndebian-binary")],
}  # fmt: skip


def label_of(path: str, arch_package: bool) -> str | None:
    """The label that a file's place in its package and its name give it, or None."""
    for label, rx in COMPILED:
        if rx.search(path):
            if label in UNLABELLED or (label == "elf" and BIN_DIR.match(path) and not arch_package):
                return None  # (an Architecture: all package's bin/ holds only scripts)
            return label
    return None


def consistent(label: str, data: bytes) -> bool:
    """Whether the bytes agree with the label: a signature, or text that is what its name says."""
    if label in SIGNATURES:
        return any(data[off : off + len(sig)] == sig for off, sig in SIGNATURES[label])
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    try:
        if label == "json":
            json.loads(text)
        elif label == "toml":
            tomllib.loads(text)
        elif label in ("xml", "svg"):
            root = ET.fromstring(data)
            return label == "xml" or root.tag.rsplit("}", 1)[-1] == "svg"
        elif label == "python":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes in old code
                ast.parse(text)
        elif label == "typescript":  # Qt translation sources are .ts files too
            return not text.lstrip().startswith(("<?xml", "<!DOCTYPE TS"))
    except (ValueError, SyntaxError, ET.ParseError, RecursionError, MemoryError):
        return False
    return True


# --------------------------------------------------------------------------------------------- packages


def read_packages(path: Path = DATA / "packages.tsv") -> list[tuple[str, str, str]]:
    """-> [(name, version, split)] from packages.tsv (name, version, split; # comments)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, split = line.split("\t")
            rows.append((name, version, split))
    return rows


def download(packages: list[tuple[str, str, str]], cache: Path) -> dict[str, Path]:
    """apt-get download NAME=VERSION for each package not yet in cache -> {name: .deb path}."""
    def deb_of(name, version):
        found = sorted(cache.glob(f"{name}_{version.replace(':', '%3a')}_*.deb"))
        return found[0] if found else None

    missing = [f"{n}={v}" for n, v, _ in packages if deb_of(n, v) is None]
    for i in range(0, len(missing), 100):
        subprocess.run(["apt-get", "download", "-q", *missing[i : i + 100]], cwd=cache, check=True)
    return {n: deb_of(n, v) for n, v, _ in packages}


def package_files(deb: Path) -> dict[str, list[tuple[str, bytes]]]:
    """-> {label: [(path in package, bytes)]} for the labelled regular files of one .deb."""
    arch = subprocess.run(["dpkg-deb", "-f", deb, "Architecture"], check=True, capture_output=True, text=True)
    arch_package = arch.stdout.strip() != "all"
    stream = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    found = collections.defaultdict(list)
    with tarfile.open(fileobj=stream.stdout, mode="r|") as tar:
        for member in tar:
            path = member.name.removeprefix("./")
            label = label_of(path, arch_package)
            if label is None or not member.isfile() or not MIN_SIZE <= member.size <= MAX_SIZE:
                continue
            data = tar.extractfile(member).read()
            if label == "troff":
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError):
                    continue
                if data.startswith(b".so ") or len(data) > MAX_SIZE:  # a stub that includes another page
                    continue
            found[label].append((path, data))
    if stream.wait() != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb} failed")
    return found


def stored_path(split: str, label: str, package: str, path: str) -> str:
    """Where a file of the data set lies under --out_dir: SPLIT/LABEL/PACKAGE/PATH with / as __."""
    return f"{split}/{label}/{package}/{path.replace('/', '__')}"


def build(packages, debs: dict[str, Path], out_dir: Path, per_split=PER_SPLIT, min_split=MIN_SPLIT, min_packages=3):
    """Write the files; -> (manifest rows, {label: label errors}, labels dropped as too thin)."""
    rows, errors, seen = [], collections.Counter(), set()
    for name, version, split in sorted(packages, key=lambda p: (p[2] != "train", p[0])):  # train claims duplicates
        found = package_files(debs[name])
        deb_bytes = debs[name].read_bytes()
        found["deb"] = [(debs[name].name, deb_bytes)] if len(deb_bytes) <= MAX_SIZE else []
        for label, files in found.items():
            ok = []
            for path, data in files:
                if not consistent(label, data):
                    errors[label] += 1
                    continue
                ok.append((hashlib.sha256(data).hexdigest(), path, data))
            kept = 0
            for digest, path, data in sorted(ok):
                if kept == PER_PACKAGE:
                    break
                if digest in seen:
                    continue
                seen.add(digest)
                kept += 1
                stored = out_dir / stored_path(split, label, name, path)
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_bytes(data)
                rows.append({"split": split, "label": label, "package": name, "version": version, "path": path,
                             "size": len(data), "sha256": digest})  # fmt: skip
    groups = collections.defaultdict(list)
    for row in rows:
        groups[row["split"], row["label"]].append(row)
    rows, dropped = [], []
    for (split, _), group in groups.items():
        group.sort(key=lambda r: r["sha256"])
        rows += group[: per_split[split]]
        dropped += group[per_split[split] :]

    def too_thin(label, split):
        group = groups[split, label]
        return len(group) < min_split[split] or len({r["package"] for r in group}) < min_packages

    thin = {label for label in {r["label"] for r in rows} if any(too_thin(label, split) for split in min_split)}
    dropped += [r for r in rows if r["label"] in thin]
    rows = [r for r in rows if r["label"] not in thin]
    for row in dropped:
        (out_dir / stored_path(row["split"], row["label"], row["package"], row["path"])).unlink()
    for folder in sorted(out_dir.glob("*/*/*"), reverse=True) + sorted(out_dir.glob("*/*")):
        if not any(folder.iterdir()):
            folder.rmdir()
    rows.sort(key=lambda r: (r["split"], r["label"], r["package"], r["path"]))
    return rows, errors, sorted(thin)


def write_manifest(rows, path: Path):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(buf.getvalue().encode())


def counts_table(rows, errors) -> str:
    by = collections.Counter((r["label"], r["split"]) for r in rows)
    pk = collections.defaultdict(set)
    for r in rows:
        pk[(r["label"], r["split"])].add(r["package"])
    lines = ["| label | train files (packages) | test files (packages) | label errors dropped |", "| - | - | - | - |"]
    for label in sorted({r["label"] for r in rows}, key=LABELS.index):
        lines.append(f"| {label} | {by[label, 'train']} ({len(pk[label, 'train'])}) | "
                     f"{by[label, 'test']} ({len(pk[label, 'test'])}) | {errors[label]} |")  # fmt: skip
    total = collections.Counter(r["split"] for r in rows)
    lines.append(f"| all | {total['train']} | {total['test']} | {sum(errors.values())} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- choosing packages


def choose(target: int, min_packages: int, test_share: float, max_bytes: int) -> list[tuple[str, str, str]]:
    """For each label, packages until it has `target` files from at least `min_packages` packages: those already
    chosen first, then the fewest download bytes per usable file; then a split by package (a hash of its name)."""
    lists = Path("/var/lib/apt/lists")
    sizes, arch = {}, {}
    for packages in lists.glob("*_Packages.lz4"):
        text = subprocess.run(["lz4cat", packages], check=True, capture_output=True, text=True).stdout
        for block in text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " ")
            if "Package" in fields:
                sizes[fields["Package"]] = int(fields["Size"])
                arch[fields["Package"]] = fields["Architecture"] != "all"
    hits = collections.defaultdict(collections.Counter)
    for contents in sorted(lists.glob("*_Contents-*.lz4")):
        proc = subprocess.Popen(["lz4cat", contents], stdout=subprocess.PIPE, text=True, errors="replace")
        for line in proc.stdout:
            path, _, owners = line.rstrip("\n").rpartition(" ")
            for owner in owners.split(","):
                name = owner.rsplit("/", 1)[-1]
                label = label_of(path.strip(), arch.get(name, False))
                if label is not None:
                    hits[label][name] += 1
        proc.wait()
    chosen: set[str] = set()
    for label in LABELS:  # (deb: no path has it, every package gives its own .deb)
        usable = {n: min(c, PER_PACKAGE) for n, c in hits[label].items() if n in sizes and sizes[n] <= max_bytes}
        order = sorted(usable, key=lambda n: (n not in chosen, sizes[n] / usable[n], n))
        have, files = 0, 0
        for name in order:
            if files >= target and have >= min_packages:
                break
            chosen.add(name)
            have, files = have + 1, files + usable[name]
    policy = subprocess.run(["apt-cache", "policy", *sorted(chosen)], check=True, capture_output=True, text=True)
    versions = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", policy.stdout, flags=re.M))

    def unit(name):  # a package's place in [0, 1): its split
        return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2**32

    return [(n, versions[n], "test" if unit(n) < test_share else "train") for n in sorted(chosen)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", type=Path, default=Path("outputs/filetypes-data"))
    parser.add_argument("--cache", type=Path, default=None, help="Keep the .deb files here (default: a temp dir).")
    parser.add_argument("--manifest", type=Path, default=DATA / "manifest.csv.gz")
    parser.add_argument("--choose", action="store_true", help="Write a new data/filetypes/packages.tsv and stop.")
    parser.add_argument("--target", type=int, default=450, help="--choose: files per label.")
    parser.add_argument("--min_packages", type=int, default=16, help="--choose: packages per label.")
    parser.add_argument("--test_share", type=float, default=0.3, help="--choose: share of packages in test.")
    parser.add_argument("--max_package_bytes", type=int, default=40 << 20, help="--choose: largest .deb to use.")
    args = parser.parse_args(argv)
    if args.choose:
        rows = choose(args.target, args.min_packages, args.test_share, args.max_package_bytes)
        header = "# name\tversion\tsplit (written by build_filetypes_dataset.py --choose)\n"
        (DATA / "packages.tsv").write_text(header + "".join(f"{n}\t{v}\t{s}\n" for n, v, s in rows))
        print(f"{len(rows)} packages -> {DATA / 'packages.tsv'}")
        return
    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        sys.exit(f"--out_dir {args.out_dir} is not empty: remove it or name another folder.")
    packages = read_packages()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        debs = download(packages, cache)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        rows, errors, thin = build(packages, debs, args.out_dir)
    args.manifest.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(rows, args.manifest)
    print(counts_table(rows, errors))
    print(f"dropped for too few files or packages in a split: {', '.join(thin) or 'none'}")
    print(f"{len(rows)} files -> {args.out_dir}; manifest {args.manifest}")


if __name__ == "__main__":
    main()
