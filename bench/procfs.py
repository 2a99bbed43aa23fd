"""CPU time and memory of a process tree, read from /proc (Linux only)."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    return _stat_fields_at(Path(f"/proc/{pid}/stat"))


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out = [pid]
    i = 0
    while i < len(out):
        out.extend(children.get(out[i], ()))
        i += 1
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the tree, including children that have exited and were reaped."""
    total = 0
    for p in tree(pid):
        fields = _stat_fields(p)
        if fields is None:
            continue
        # after the comm: state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU of each thread of ``pid`` (not its children), by thread id."""
    out = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/task"):
            fields = _stat_fields_at(Path(entry.path) / "stat")
            if fields is not None:
                out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def _stat_fields_at(path: Path) -> list[str] | None:
    try:
        raw = path.read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    return raw[raw.rindex(")") + 2 :].split()


def rss_bytes(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
    return total


def hwm_bytes(pid: int) -> int:
    """Largest VmHWM (peak resident set) of any process in the tree."""
    best = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) * 1024)
        except OSError:
            pass
    return best


class RssSampler:
    """Samples the tree's summed RSS every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last = rss_bytes(self.pid)
            self.peak = max(self.peak, self.last)
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` has open (``socket:[inode]`` in /proc/<pid>/fd)."""
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(entry.path)
                if target.startswith("socket:["):
                    out.add(int(target[8:-1]))
    return out


TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


def tcp_sockets() -> list[tuple[int, str, int]]:
    """(local port, state, inode) of every TCP socket in this network namespace (IPv4 and IPv6)."""
    out: list[tuple[int, str, int]] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            out.append((int(f[1].rsplit(":", 1)[1], 16), f[3], int(f[9])))
    return out


def connections_on(pid: int, port: int, table: list[tuple[int, str, int]] | None = None) -> int:
    """Established TCP connections to local ``port`` that process ``pid`` holds."""
    mine = socket_inodes(pid)
    rows = tcp_sockets() if table is None else table
    return sum(1 for lport, st, inode in rows if lport == port and st == TCP_ESTABLISHED and inode in mine)


def listening_ports(pid: int, table: list[tuple[int, str, int]] | None = None) -> set[int]:
    """Local TCP ports process ``pid`` listens on."""
    mine = socket_inodes(pid)
    rows = tcp_sockets() if table is None else table
    return {lport for lport, state, inode in rows if state == TCP_LISTEN and inode in mine}


def machine_busy_seconds() -> float:
    """CPU-seconds all cores spent not idle since boot (/proc/stat: all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK
