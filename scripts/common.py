"""What the scripts share: the error a user can fix and the entry point that reports it, facts about the machine and
this process's memory (Linux /proc), and markdown tables.

The scripts import it as `common` (Python puts scripts/ on the path when it runs one of them; pytest's pythonpath
does the same for the tests), and each other by name (`import predict`).
"""

import os
import platform
import resource
import sys
from collections.abc import Callable, Sequence


#: What a longer input keeps, in the scripts' words, and the tokenizer's truncation_side for it.
TRUNCATION_SIDES = {"head": "right", "tail": "left", "head+tail": "head+tail"}


class UserError(ValueError):
    """A problem with the arguments or the data that the user can fix; the message says what and how."""


def run_cli(main: Callable, argv: Sequence[str] | None = None, cleanup: Callable[[bool], None] | None = None) -> int:
    """Run `main(argv)`: 0 when it returns, 2 with the message on stderr when it raises UserError. `cleanup`, if given,
    runs last in every case and is told whether `main` succeeded."""
    succeeded = False
    try:
        main(argv)
        succeeded = True
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if cleanup is not None:
            cleanup(succeeded)
    return 0


# --------------------------------------------------------------------------------------------- the machine


def proc_kib(path: str, field: str) -> int | None:
    """The value of `field` in a /proc file whose lines read `Field:  1234 kB`, in bytes; None where there is none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def machine() -> dict:
    """CPU model and count (all, and usable by this process), memory, platform, load average now."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_bytes": proc_kib("/proc/meminfo", "MemTotal"),
        "platform": platform.platform(),
        "loadavg_1_5_15": load,
    }


def machine_line(info: dict | None = None) -> str:
    info = info or machine()
    memory = f"{info['memory_bytes'] / 2**30:.1f} GiB RAM" if info["memory_bytes"] else "RAM unknown"
    load = "/".join(f"{x:.1f}" for x in info["loadavg_1_5_15"]) if info["loadavg_1_5_15"] else "n/a"
    return f"{info['cpu_model']}, {info['cpus_usable']} usable of {info['cpu_count']} CPUs, {memory}, load {load}"


def rss() -> int:
    """This process's resident memory now, in bytes."""
    value = proc_kib("/proc/self/status", "VmRSS")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss() -> int:
    """This process's resident-memory high-water mark, in bytes (since the last reset_peak_rss)."""
    value = proc_kib("/proc/self/status", "VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------- reports


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)
