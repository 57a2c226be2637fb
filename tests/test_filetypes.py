"""The file-type data set, end to end on a tiny version made on the spot: real .deb packages built with dpkg-deb, the
builder's labelling, consistency and split-by-package rules, training on the folders, predict.py on a folder, and the
comparison with Magika and libmagic (both real)."""

import gzip
import io
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import build_filetypes_dataset as builder
import compare_file_typers as compare
import predict
import pytest

from test_train import run_main, tiny_args

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


def png(seed: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((seed * 7 + x * y) % 256 for x in range(8)) for y in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def package_tree(i: int) -> dict[str, bytes]:
    """The files of tiny package number i: each label with content unique to the package, plus shared ones."""
    return {
        f"usr/lib/python3/dist-packages/pkg{i}/main.py": f"def f{i}(x):\n    return x * {i}\n".encode(),
        f"usr/lib/python3/dist-packages/pkg{i}/broken.py": b"def broken(:\n    pass\n",  # not Python: a label error
        f"usr/share/pkg{i}/data.json": json.dumps({"package": i, "values": list(range(i + 3))}).encode(),
        f"usr/share/pkg{i}/bad.json": b"{not json, but named so}",  # a label error
        f"usr/share/icons/hicolor/8x8/apps/pkg{i}.png": png(i),
        f"usr/share/man/man1/pkg{i}.1.gz": gzip.compress(f'.TH PKG{i} 1\n.SH NAME\npkg{i} \\- a tool\n'.encode()),
        "usr/share/doc/shared/README.md": b"# The same file in every package\n\nKept once: in train.\n",
    }


def make_deb(root: Path, name: str, files: dict[str, bytes]) -> Path:
    tree = root / name
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\n"
                                             "Description: tiny\n")  # fmt: skip
    deb = root / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True, capture_output=True)
    return deb


def test_label_rule():
    cases = {
        "usr/share/man/man1/ls.1.gz": "troff", "usr/share/man/de/man8/x.8.gz": "troff",
        "usr/share/doc/ls/changelog.Debian.gz": "gzip", "usr/lib/x86_64-linux-gnu/libz.so.1.2.13": "elf",
        "usr/share/doc/ls/copyright": "text", "usr/share/cargo/registry/a-1/Cargo.toml": "toml",
        "usr/share/x/Makefile": "makefile", "usr/share/x/rules.mk": "makefile", "usr/share/x/a.hpp": "cpp",
        "usr/share/doc/p/html/_sources/api/index.rst.txt": "rst", "usr/share/doc/p/html/_sources/old.txt": "rst",
        "usr/share/doc/p/html/_sources/intro.md.txt": "markdown", "usr/share/doc/p/html/_sources/nb.ipynb.txt": None,
        "usr/share/doc/p/notes.txt": "text", "usr/share/p/CMakeLists.txt": None, "usr/share/x/a.h": None,
        "usr/share/x/a.svgz": None, "usr/share/x/photo.JPG": None,
    }  # fmt: skip
    for path, label in cases.items():
        assert builder.label_of(path, arch_package=True) == label, path
    assert builder.label_of("usr/bin/tool", arch_package=True) == "elf"
    assert builder.label_of("usr/bin/tool", arch_package=False) is None  # Architecture: all: only scripts in bin/
    assert builder.consistent("typescript", b"const x: number = 1;\n")
    assert not builder.consistent("typescript", b'<?xml version="1.0"?>\n<!DOCTYPE TS>')  # a Qt translation
    assert builder.consistent("png", png(1)) and not builder.consistent("png", b"GIF89a....")
    assert not builder.consistent("text", b"abc\x00def") and not builder.consistent("svg", b"<html></html>")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("filetypes")
    names = [f"pkg{i}" for i in range(6)]
    splits = {name: "test" if i >= 4 else "train" for i, name in enumerate(names)}
    debs = {name: make_deb(root / "debs", name, package_tree(i)) for i, name in enumerate(names)}
    packages = [(name, "1.0", splits[name]) for name in names]
    out = root / "data"
    out.mkdir()
    rows, errors, thin = builder.build(packages, debs, out, min_split={"train": 1, "test": 1}, min_packages=2)
    return root, out, rows, errors, thin, splits


def test_builder_splits_by_package_and_checks_labels(tiny_dataset):
    _, out, rows, errors, thin, splits = tiny_dataset
    assert thin == ["markdown"]  # the shared README is kept once, in one train package: too thin to be a type
    assert errors == {"python": 6, "json": 6}  # the broken files, one of each per package
    assert {r["label"] for r in rows} == {"python", "json", "png", "troff", "deb"}
    for r in rows:
        assert r["split"] == splits[r["package"]]  # every file of a package sits on its package's side
        stored = out / builder.stored_path(r["split"], r["label"], r["package"], r["path"])
        assert stored.is_file() and stored.stat().st_size == r["size"]
    assert len({r["sha256"] for r in rows}) == len(rows)
    troff = [r for r in rows if r["label"] == "troff"]
    page = troff[0]
    stored = out / builder.stored_path(page["split"], "troff", page["package"], page["path"])
    assert len(troff) == 6 and stored.read_bytes().startswith(b".TH PKG")  # stored gunzipped
    assert not any((out / "train").glob("markdown"))  # no empty label folder is left for train.py to warn about

    manifest = out.parent / "manifest.csv.gz"
    builder.write_manifest(rows, manifest)
    first = manifest.read_bytes()
    builder.write_manifest(rows, manifest)
    assert manifest.read_bytes() == first  # byte-identical rebuilds
    header = gzip.decompress(first).decode().splitlines()[0]
    assert header == "split,label,package,version,path,size,sha256"


@pytest.fixture(scope="module")
def tiny_model(tiny_dataset, tmp_path_factory):
    _, out, *_ = tiny_dataset
    model = tmp_path_factory.mktemp("filetypes-model") / "model"
    run_main(tiny_args(model, "--data_dir", out, "--truncation_side", "head+tail", "--report_to", "none", steps=4))
    return model


def test_predict_on_a_folder_reads_only_the_ends(tiny_dataset, tiny_model, tmp_path):
    _, out, rows, *_ = tiny_dataset
    folder = tmp_path / "files"
    shutil.copytree(out / "test", folder / "nested")
    (folder / ".hidden").write_bytes(b"skipped")
    huge = folder / "huge.bin"
    with open(huge, "wb") as f:  # sparse: 4 GiB that reading whole would take minutes and all the memory
        f.truncate(4 << 30)
    stdout = io.StringIO()
    results = predict.main(["--model", str(tiny_model), "--file", str(folder), "--jsonl", "--no_progress",
                            "--batch_size", "3"], stdout=stdout)  # fmt: skip
    expected = sorted(str(p) for p in folder.rglob("*") if p.is_file() and p.name != ".hidden")
    assert [r["source"] for r in results] == [f"file:{p}" for p in expected]
    assert len(expected) == sum(r["split"] == "test" for r in rows) + 1
    assert [json.loads(line) for line in stdout.getvalue().splitlines()] == results
    big = next(r for r in results if r["source"] == f"file:{huge}")
    assert big["num_bytes"] == 4 << 30 and big["truncated"]
    assert predict.read_ends(huge, 4 << 30, 64) == bytes(128)
    data = bytes(range(256)) * 4
    (tmp_path / "ends.bin").write_bytes(data)
    assert predict.read_ends(tmp_path / "ends.bin", len(data), 100) == data[:100] + data[-100:]
    with pytest.raises(predict.UserError, match="holds no files"):
        (tmp_path / "empty").mkdir()
        predict.main(["--model", str(tiny_model), "--file", str(tmp_path / "empty")])


def test_tool_label_maps_on_real_files(tmp_path):
    """Magika's and libmagic's answers on clear-cut files map onto our labels."""
    files = {
        "png": png(3) * 1, "gzip": gzip.compress(b"hello world\n" * 50),
        "json": json.dumps({"a": [1, 2, 3], "b": {"c": "d"}, "e": list(range(40))}, indent=2).encode(),
        "python": b"#!/usr/bin/env python3\nimport os\nimport sys\n\n\ndef main(argv):\n    for a in argv:\n"
                  b"        print(os.path.basename(a))\n    return 0\n\n\nif __name__ == '__main__':\n    sys.exit(main(sys.argv))\n",
        "pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" * 5 + b"%%EOF\n",
    }  # fmt: skip
    paths = []
    for label, data in files.items():
        (tmp_path / label).write_bytes(data)
        paths.append(str(tmp_path / label))
    assert compare.run_libmagic(paths) == list(files)
    magika, raw = compare.run_magika(paths)
    assert magika == list(files) and raw == list(files)
    vocab = compare.vocabularies(set(builder.LABELS))
    assert "troff" not in vocab["magika"] and {"bzip2", "text", "elf", "markdown"} <= vocab["magika"]
    assert {"elf", "png", "troff", "python", "text"} <= vocab["libmagic"] and "markdown" not in vocab["libmagic"]
    assert set(compare.LIBMAGIC.values()) | set(compare.MAGIKA.values()) <= set(builder.LABELS) | {"tar", "zstd"}


def test_comparison_report(tiny_dataset, tiny_model, tmp_path):
    _, out, rows, *_ = tiny_dataset
    report = tmp_path / "report.md"
    compare.main(["--model", str(tiny_model), "--data_dir", str(out), "--report", str(report)])
    text = report.read_text()
    for tool in ("ours", "magika", "libmagic"):
        assert f"| {tool} |" in text
    figures = json.loads(report.with_suffix(".json").read_text())
    assert figures["ours"]["all"]["files"] == sum(r["split"] == "test" for r in rows)
    assert figures["magika"]["common"]["accuracy"] > 0.5  # deb, png, json and python files: Magika knows them


def test_committed_manifest_matches_the_data_card():
    import collections
    import csv

    with gzip.open(REPO / "data" / "filetypes" / "manifest.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))
    counts = collections.Counter((r["label"], r["split"]) for r in rows)
    packages = {r["package"] for r in rows}
    listed = {name: split for name, _, split in builder.read_packages()}
    assert all(listed[r["package"]] == r["split"] for r in rows)  # the split is the package's
    card = (REPO / "data" / "filetypes" / "README.md").read_text()
    table = [line.split("|")[1:-1] for line in card.splitlines() if re.match(r"\| [a-z0-9]+ \| \d+ \(", line)]
    assert {cells[0].strip() for cells in table} == {r["label"] for r in rows}
    for label, train, test, _ in table:
        assert train.split()[0] == str(counts[label.strip(), "train"]) and test.split()[0] == str(
            counts[label.strip(), "test"]), label
    assert f"{len(rows):,} files of {len(table)} types from {len(packages):,} packages" in card
