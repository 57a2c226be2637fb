#!/usr/bin/env python3
"""Build the Debian man-page section classification data set in ``data/manpages``.

Run from the repository root on Debian 12 (bookworm) with ``apt-get update`` done:

    python scripts/build_manpages_dataset.py --out data/manpages --cache /tmp/manpages-debs

``--cache`` keeps the downloaded ``.deb`` files (default: a temporary directory
that is deleted afterwards).  Needs ``apt-get``, ``dpkg-deb`` and ``groff``
(package ``groff-base``, pinned below).  Nothing is installed: each package in
``PACKAGES`` is fetched with ``apt-get download NAME=VERSION`` and unpacked with
``dpkg-deb -x``.

Each regular file ``usr/share/man/manN/NAME.EXT[.gz]`` (N in ``LABELS``; no
translations, no symlinks, no ``.so`` stubs) is rendered with ``GROFF`` at 80
columns and becomes one example: ``text``, ``label`` (from N, the directory's
section), ``page`` (``NAME.EXT``) and ``package``.  Giveaways removed from the
rendered text: the first line (title header, e.g. ``LS(1)  User Commands
LS(1)``), the last line (footer with source, date and ``LS(1)``) and every
reference of the page to itself with a section (``ls(1)`` -> ``ls``).  A page
whose troff source equals an earlier page's (hard links) is skipped, exact
duplicate texts are kept once (dropped everywhere if their labels differ),
labels with fewer than ``MIN_PAGES`` pages are dropped, and texts are not cut.
The split is by ``NAME`` (lower-cased): the first 8 bytes of its sha256 pick
train/validation/test (70/10/20).  Output is sorted by (label, page, package)
and gzipped with mtime 0, so rebuilds are byte-identical.  See ``data/manpages/README.md``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Versions that `apt-cache policy` served on Debian 12 (bookworm, with
# bookworm-updates and bookworm-security) when the data was built.
PINS = """
acl=2.3.1-3 anacron=2.3-36 apparmor-utils=3.0.8-3 apparmor=3.0.8-3 apt=2.6.2
at=3.2.5-1+b1 attr=1:2.5.1-4 autofs=5.1.8-2+deb12u2 bash=5.2.15-2+b13
bind9-dnsutils=1:9.18.49-1~deb12u3 bind9=1:9.18.49-1~deb12u3
bsdutils=1:2.38.1-5+deb12u3 btrfs-progs=6.2-1+deb12u2 chrony=4.3-2+deb12u3
console-setup=1.221 coreutils=9.1-1 cron=3.0pl1-162 cryptsetup-bin=2:2.6.1-4~deb12u2
cups-client=2.4.2-3+deb12u10 cups-daemon=2.4.2-3+deb12u10 curl=7.88.1-10+deb12u15
debconf-doc=1.5.82 debhelper=13.11.4 debianutils=5.7-0.5~deb12u1
dirmngr=2.2.40-1.1+deb12u2 dnsmasq-base=2.90-4~deb12u2 dosfstools=4.2-1
dpkg-dev=1.21.23 dpkg=1.21.23 e2fsprogs=1.47.0-2+b2 ethtool=1:6.1-1
exim4-base=4.96-15+deb12u11 exim4-config=4.96-15+deb12u11 findutils=4.9.0-4
fontconfig-config=2.14.1-4 git-man=1:2.39.5-0+deb12u3 gnupg=2.2.40-1.1+deb12u2
gpg-agent=2.2.40-1.1+deb12u2 gpg=2.2.40-1.1+deb12u2 gpgconf=2.2.40-1.1+deb12u2
gpgsm=2.2.40-1.1+deb12u2 grep=3.8-5 groff-base=1.22.4-10 gzip=1.12-1
ifupdown=0.8.41 initramfs-tools-core=0.142+deb12u3 iproute2=6.1.0-3
iptables=1.8.9-2 isc-dhcp-client=4.4.3-P1-2 isc-dhcp-server=4.4.3-P1-2 iw=5.19-1
kbd=2.5.1-1+b1 keyboard-configuration=1.221 keyutils=1.6.3-2 kmod=30+20221128-1
krb5-kdc=1.20.1-2+deb12u5 krb5-user=1.20.1-2+deb12u5 ldap-utils=2.5.13+dfsg-5
less=590-2.1~deb12u2 libaudit-dev=1:3.0.9-1 libbsd-dev=0.11.7-2
libc-bin=2.36-9+deb12u14 libc-dev-bin=2.36-9+deb12u14 libcap-dev=1:2.66-4+deb12u3+b1
libcap2-bin=1:2.66-4+deb12u3+b1 libkeyutils-dev=1.6.3-2 libldap-common=2.5.13+dfsg-5
libncurses-dev=6.4-4 libpam-modules=1.5.2-6+deb12u3 libpam-runtime=1.5.2-6+deb12u3
libpam0g-dev=1.5.2-6+deb12u3 libpcap0.8-dev=1.10.3-1 libselinux1-dev=3.4-1+b6
libsystemd-dev=252.39-1~deb12u2 libtirpc-dev=1.3.3+ds-1 liburing-dev=2.3-3
lirc=0.10.1-7.2 login=1:4.13+dfsg1-1+deb12u2 logrotate=3.21.0-1 lsof=4.95.0-1
lvm2=2.03.16-2 make=4.3-4.1 man-db=2.11.2-2 manpages-dev=6.03-2 manpages=6.03-2
mdadm=4.2-5 mount=2.38.1-5+deb12u3 ncurses-bin=6.4-4 ncurses-doc=6.4-4
net-tools=2.10-0.1+deb12u2 network-manager=1.42.4-1+deb12u1
nfs-common=1:2.6.2-4+deb12u1 nfs-kernel-server=1:2.6.2-4+deb12u1
nftables=1.0.6-2+deb12u2 openssh-client=1:9.2p1-2+deb12u10
openssh-server=1:9.2p1-2+deb12u10 openssl=3.0.22-1~deb12u2 openvpn=2.6.14-0+deb12u2
passwd=1:4.13+dfsg1-1+deb12u2 postfix=3.7.11-0+deb12u1 ppp=2.4.9-1+1.1+b1
procps=2:4.0.2-3 psmisc=23.6-1 quota=4.06-1+b2 rdma-core=44.0-2
rsync=3.5.0+ds1-0+deb12u1 rsyslog=8.2302.0-1+deb12u2 sed=4.9-1+deb12u1
slapd=2.5.13+dfsg-5 smartmontools=7.3-1+b1 sssd-common=2.8.2-4+deb12u1
strace=6.1-0.1 sudo=1.9.13p3-1+deb12u4 sysstat=12.6.1-1 systemd-boot=252.39-1~deb12u2
systemd-container=252.39-1~deb12u2 systemd-homed=252.39-1~deb12u2
systemd-resolved=252.39-1~deb12u2 systemd-timesyncd=252.39-1~deb12u2
systemd=252.39-1~deb12u2 sysvinit-utils=3.06-4 tar=1.34+dfsg-1.2+deb12u1
tcpdump=4.99.3-1 tmux=3.3a-3 udev=252.39-1~deb12u2 ufw=0.36.2-1
unbound=1.17.1-2+deb12u4 util-linux=2.38.1-5+deb12u3 wpasupplicant=2:2.10-12+deb12u3
xfsprogs=6.1.0-1 xorg-docs-core=1:1.7.1-1.2 xserver-xorg-core=2:21.1.7-3+deb12u13
xserver-xorg-input-aiptek=1:1.4.1-4 xserver-xorg-input-elographics=1:1.4.3-1
xserver-xorg-input-evdev=1:2.10.6-2+b1 xserver-xorg-input-joystick=1:1.6.3-1.1
xserver-xorg-input-kbd=1:1.9.0-1+b3 xserver-xorg-input-libinput=1.2.1-1+b1
xserver-xorg-input-mouse=1:1.9.3-1+b1 xserver-xorg-input-mutouch=1:1.3.0-3
xserver-xorg-input-synaptics=1.9.2-1+b1 xserver-xorg-input-wacom=1.1.0-1
xserver-xorg-input-xwiimote=0.5-1+b4 xserver-xorg-video-amdgpu=23.0.0-1
xserver-xorg-video-ati=1:19.1.0-3 xserver-xorg-video-cirrus=1:1.5.3-1+b5
xserver-xorg-video-fbdev=1:0.5.0-2 xserver-xorg-video-intel=2:2.99.917+git20210115-1
xserver-xorg-video-mga=1:2.0.0-1+b1 xserver-xorg-video-neomagic=1:1.3.0-2+b2
xserver-xorg-video-nouveau=1:1.0.17-2 xserver-xorg-video-openchrome=1:0.6.0-5
xserver-xorg-video-r128=6.12.1-1 xserver-xorg-video-radeon=1:19.1.0-3
xserver-xorg-video-savage=1:2.3.9-5 xserver-xorg-video-siliconmotion=1:1.7.9-4
xserver-xorg-video-sisusb=1:0.9.7-3 xserver-xorg-video-tdfx=1:1.5.0-5
xserver-xorg-video-trident=1:1.4.0-1 xserver-xorg-video-vesa=1:2.5.0-1+b1
xserver-xorg-video-vmware=1:13.3.0-3.1+b1
"""
PACKAGES = dict(p.split("=", 1) for p in PINS.split())

LABELS = {
    "1": "1-user-commands",
    "2": "2-system-calls",
    "3": "3-library-functions",
    "4": "4-devices",
    "5": "5-file-formats",
    "7": "7-overviews",
    "8": "8-administration",
}
GROFF_VERSION = "1.22.4"  # groff-base 1.22.4-10; other versions may render differently
GROFF = ["groff", "-k", "-Kutf-8", "-t", "-mandoc", "-Tutf8", "-P-cbou", "-rLL=80n", "-rcR=1", "-rHY=0"]
# Prepended to every page: no hyphenation, no right-justification (pages that
# switch them back on with .hy / .ad get no-op macros instead of the requests).
PRELUDE = ".nh\n.na\n.de hy\n..\n.de ad\n..\n"
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TZ": "UTC", "SOURCE_DATE_EPOCH": "0"}
MIN_PAGES = 60  # labels with fewer pages (after dedup) are dropped
SPLITS = (("train", 0.7), ("validation", 0.8), ("test", 1.0))
PAGE_RE = re.compile(r"^(?P<name>.+)\.(?P<ext>(?P<sec>\d)[a-z0-9]*)(\.gz)?$")


def fetch(cache: Path) -> dict[str, Path]:
    """Download missing pinned packages into ``cache``; return name -> .deb path."""

    def have() -> dict[str, Path]:
        found = {}
        for deb in cache.glob("*.deb"):
            name, version = (
                subprocess.run(["dpkg-deb", "-f", deb, f], check=True, text=True, capture_output=True).stdout.strip()
                for f in ("Package", "Version")
            )
            if PACKAGES.get(name) == version:
                found[name] = deb
        return found

    found = have()
    missing = [f"{n}={v}" for n, v in sorted(PACKAGES.items()) if n not in found]
    if missing:
        subprocess.run(["apt-get", "download", "-q", *missing], cwd=cache, check=True)
        found = have()
    assert set(found) == set(PACKAGES), sorted(set(PACKAGES) - set(found))
    return found


def is_stub(source: str) -> bool:
    lines = [l for l in source.splitlines() if l.strip() and not re.match(r"^[.']\s*\\\"", l)]
    return len(lines) == 1 and lines[0].startswith(".so")


def render(source: str, name: str, sec: str, cwd: Path) -> tuple[str, bool]:
    """Rendered text without header/footer, and whether the header ended in "(SECTION)"."""
    out = subprocess.run(
        GROFF, input=(PRELUDE + source).encode("utf-8"), capture_output=True, cwd=cwd, env=ENV, check=True
    ).stdout.decode("utf-8", "replace")
    lines = [l.rstrip() for l in out.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    text = "\n".join(lines[1:-1])  # drop the title header and the footer line
    # The page's own name with its section ("ls(1)", "LS(1)", "ssl(7ssl)") -> name.
    text = re.sub(rf"(?<![\w.-])({re.escape(name)})\({sec}[a-z0-9]*\)", r"\1", text, flags=re.IGNORECASE)
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, bool(lines) and bool(re.search(r"\(\w+\)$", lines[0]))


def collect(debs: dict[str, Path], work: Path) -> list[dict]:
    records, counts, sources = [], collections.Counter(), set()
    for package, deb in sorted(debs.items()):
        root = work / package
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
        mandir = root / "usr/share/man"
        for path in sorted(mandir.glob("man*/*")):
            m = PAGE_RE.match(path.name)
            if path.is_symlink() or not path.is_file():
                counts["dropped: symlink or not a file"] += 1
                continue
            if not m or path.parent.name != f"man{m['sec']}" or m["sec"] not in LABELS:
                counts[f"dropped: other section ({path.parent.name})"] += 1
                continue
            data = path.read_bytes()
            if path.name.endswith(".gz"):
                data = gzip.decompress(data)
            try:
                source = data.decode("utf-8")
            except UnicodeDecodeError:
                source = data.decode("latin-1")
                counts["note: not UTF-8, read as Latin-1"] += 1
            if is_stub(source):
                counts["dropped: .so stub"] += 1
                continue
            if source in sources:  # hard links / copies under another name
                counts["dropped: same source as an earlier page"] += 1
                continue
            sources.add(source)
            text, titled = render(source, m["name"], m["sec"], mandir)
            counts["note: header line not ending in (SECTION), kept"] += not titled
            if not text.strip():
                counts["dropped: empty"] += 1
                continue
            records.append(
                {"text": text, "label": LABELS[m["sec"]], "page": f"{m['name']}.{m['ext']}", "package": package}
            )
    by_text = collections.defaultdict(list)
    for r in records:
        by_text[r["text"]].append(r)
    kept = []
    for copies in by_text.values():
        if len({r["label"] for r in copies}) > 1:
            counts["dropped: duplicate text, labels differ (all copies)"] += len(copies)
        else:
            kept.append(copies[0])
            counts["dropped: duplicate text (extra copies)"] += len(copies) - 1
    sizes = collections.Counter(r["label"] for r in kept)
    for label, n in sorted(sizes.items()):
        if n < MIN_PAGES:
            counts[f"dropped: label {label} below {MIN_PAGES} pages"] += n
    kept = [r for r in kept if sizes[r["label"]] >= MIN_PAGES]
    for why, n in sorted(counts.items()):
        print(f"{n:5d}  {why}")
    return kept


def group_of(page: str) -> str:
    return PAGE_RE.match(page)["name"].lower()


def split_of(page: str) -> str:
    h = int.from_bytes(hashlib.sha256(group_of(page).encode()).digest()[:8], "big") / 2**64
    return next(name for name, upper in SPLITS if h < upper)


def write(records: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    by_split = collections.defaultdict(list)
    for r in sorted(records, key=lambda r: (r["label"], r["page"], r["package"])):
        by_split[split_of(r["page"])].append(r)
    for split, _ in SPLITS:
        path = out / f"{split}.jsonl.gz"
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            for r in by_split[split]:
                f.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
    # Report: counts, lengths, sizes and hashes (copied into the data card).
    names = [s for s, _ in SPLITS]
    print("\n| label | " + " | ".join(names) + " | all |\n| - |" + " - |" * (len(names) + 1))
    for label in sorted(LABELS.values()):
        row = [sum(r["label"] == label for r in by_split[s]) for s in names]
        if sum(row):
            print(f"| {label} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    print("| all | " + " | ".join(str(len(by_split[s])) for s in names) + f" | {len(records)} |")
    lengths = sorted(len(r["text"].encode("utf-8")) for r in records)
    q = statistics.quantiles(lengths, n=10)
    print(
        f"\nbytes per text: min {lengths[0]} median {statistics.median(lengths):.0f} "
        f"p90 {q[-1]:.0f} max {lengths[-1]}; total {sum(lengths)}"
    )
    for split in names:
        path = out / f"{split}.jsonl.gz"
        print(f"{path}  {path.stat().st_size} bytes  sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("data/manpages"))
    ap.add_argument("--cache", type=Path, help="directory for the .deb files (kept)")
    args = ap.parse_args()
    version = subprocess.run(["groff", "--version"], capture_output=True, text=True, check=True).stdout.split("\n")[0]
    print(version)
    if not version.endswith(GROFF_VERSION):
        print(f"warning: expected groff {GROFF_VERSION}; output may differ", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp, "debs")
        cache.mkdir(parents=True, exist_ok=True)
        Path(tmp, "root").mkdir()
        records = collect(fetch(cache.resolve()), Path(tmp, "root"))
    write(records, args.out)


if __name__ == "__main__":
    main()
