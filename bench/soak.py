"""Soak: run the demo (hub, managed broker and Prefect server, simulated vehicles and platforms)
for a while and report, per hour of operation, how each table and file grows, the resident
memory of each process, and the desk's p95 at the start and at the end.

The clock is real: `--minutes 60` is an hour of operation. `--history-days 30` gives the demo
the equivalent of 30 days first: once it runs, a month of history is written into its database
as the hub keeps it (positions of its vehicles at 1 Hz for the last three days and one a minute
before, with an hour past the thinning age and a day past the retention still to do; incidents
and bulletins at a busy region's rate, closed and signed), the pages are timed before and after,
and the hourly maintenance (thinning, position retention, the retention job) is timed on it.

    python bench/soak.py --minutes 20 --sample-every 60
    python bench/soak.py --minutes 10 --history-days 30
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _history as history
import requests
from _common import machine, percentile, print_table

from hub.kernel.seed import DEMO_PASSWORD
from hub.runtime import free_port

# The pages a duty officer keeps open, timed before and after the history is written.
PAGES = ("/", "/incidents/", "/bulletins", "/vehicles")

TABLES = (
    "vehicle_positions",
    "incidents",
    "notifications",
    "bulletins",
    "bulletin_recipients",
    "partner_records",
    "flow_requests",
    "mqtt_outbox",
    "audit_entries",
    "reminders",
    "dead_letters",
)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    if not match:
        raise SystemExit("no CSRF token on the log-in page")
    return match.group(1)


def _process_tree(root: int) -> dict[int, str]:
    """Return {pid: short name} of `root` and every process below it."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
        names[int(entry.name)] = _label(cmdline)
    tree, stack = {}, [root]
    while stack:
        pid = stack.pop()
        tree[pid] = names.get(pid, "?")
        stack.extend(children.get(pid, []))
    return tree


def _label(cmdline: list[bytes]) -> str:
    text = " ".join(part.decode(errors="replace") for part in cmdline if part)
    for marker, label in (
        ("mosquitto", "mosquitto"),
        ("server start", "prefect server"),
        ("ingest-worker", "ingest worker"),
        (" run --demo", "hub"),
    ):
        if marker in text:
            return label
    return text.split(" ")[0].rsplit("/", 1)[-1] or "?"


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _memory(root: int) -> dict[str, float]:
    """Return resident memory in MB by process label (summed over processes of one label)."""
    totals: dict[str, float] = {}
    for pid, label in _process_tree(root).items():
        totals[label] = totals.get(label, 0.0) + _rss_mb(pid)
    return totals


def _rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}  # noqa: S608 - fixed names


def _newest_request(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM flow_requests").fetchone()[0]


def _requests_after(database: Path, after: int) -> list[tuple[str, int]]:
    """Return how many flow requests of each flow were made after the request `after`."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(
            "SELECT flow_name, count(*) FROM flow_requests WHERE id > ? GROUP BY flow_name ORDER BY 2 DESC",
            (after,),
        ).fetchall()


def _prefect_runs(instance: Path) -> tuple[int, int]:
    """Return the flow runs and task runs in the managed Prefect server's database."""
    with sqlite3.connect(f"file:{instance / 'prefect' / 'prefect.db'}?mode=ro", uri=True, timeout=30) as conn:
        flows = conn.execute("SELECT count(*) FROM flow_run").fetchone()[0]
        tasks = conn.execute("SELECT count(*) FROM task_run").fetchone()[0]
    return flows, tasks


def _files(instance: Path) -> dict[str, int]:
    """Return bytes per file that grows: the hub's database and WAL, Prefect's, the broker's."""
    sizes: dict[str, int] = {}
    for path in instance.rglob("*"):
        if path.is_file() and path.name.endswith((".sqlite3", ".db", "-wal")):
            sizes[str(path.relative_to(instance))] = path.stat().st_size
    return sizes


def _page_p95(session: requests.Session, url: str, count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=30)
        response.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--desk-requests", type=int, default=100)
    parser.add_argument(
        "--history-days", type=int, default=0, help="write this many days of history first (e.g. 30)"
    )
    parser.add_argument(
        "--keep", type=Path, help="copy the hub's database here at the end, to look into it afterwards"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-soak-") as folder:
        instance = Path(folder) / "instance"
        log_path = Path(folder) / "hub.log"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HUB_"))}
        env["HUB_INSTANCE_PATH"] = str(instance)
        with log_path.open("wb") as log_file:
            hub = subprocess.Popen(
                [str(Path(sys.executable).with_name("hub")), "run", "--demo", "--port", str(port)],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 600  # a loaded machine starts the demo slowly
            while "Stop with Ctrl+C" not in log_path.read_text(errors="replace"):
                if hub.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        "the demo did not start:\n" + log_path.read_text(errors="replace")[-3000:]
                    )
                time.sleep(0.5)
            base = f"http://127.0.0.1:{port}"
            session = requests.Session()
            page = session.get(f"{base}/login", timeout=30).text
            session.post(
                f"{base}/login",
                timeout=30,
                data={"csrf_token": _csrf(page), "username": "linyi-coord", "password": DEMO_PASSWORD},
            )
            time.sleep(min(60.0, args.sample_every))  # let the simulators connect and settle
            database = instance / "hub.sqlite3"
            if args.history_days:
                fresh = _pages(session, base, args.desk_requests)
                written, maintenance = history.write_month(instance, args.history_days)
                aged = _pages(session, base, args.desk_requests)
            # Growth is measured from here: the real-clock part, after any history.
            started = time.monotonic()
            first_rows, first_files, first_runs = _rows(database), _files(instance), _prefect_runs(instance)
            first_request = _newest_request(database)
            desk_start = _page_p95(session, f"{base}/", args.desk_requests)
            samples = [(0.0, _memory(hub.pid))]
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.sample_every)
                samples.append((time.monotonic() - started, _memory(hub.pid)))
                if hub.poll() is not None:
                    raise SystemExit(
                        "the hub stopped during the soak:\n" + log_path.read_text(errors="replace")[-3000:]
                    )
            elapsed_h = (time.monotonic() - started) / 3600
            last_rows, last_files, last_runs = _rows(database), _files(instance), _prefect_runs(instance)
            requested = _requests_after(database, first_request)
            desk_end = _page_p95(session, f"{base}/", args.desk_requests)
        finally:
            if hub.poll() is None:
                hub.send_signal(signal.SIGINT)  # the hub stops everything it started
                try:
                    hub.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    os.killpg(hub.pid, signal.SIGKILL)
            if args.keep is not None:
                with sqlite3.connect(instance / "hub.sqlite3") as source, sqlite3.connect(args.keep) as copy:
                    source.backup(copy)

    print_table(
        f"Rows per hour ({elapsed_h * 60:.0f} min of the demo)",
        [(table, f"{(last_rows[table] - first_rows[table]) / elapsed_h:,.0f}") for table in TABLES],
    )
    print_table(
        "Prefect runs",
        [
            ("flow runs a day", f"{(last_runs[0] - first_runs[0]) / elapsed_h * 24:,.0f}"),
            ("task runs a day", f"{(last_runs[1] - first_runs[1]) / elapsed_h * 24:,.0f}"),
        ],
    )
    print_table(
        "Flow requests an hour, by flow",
        [(name, f"{count / elapsed_h:,.0f}") for name, count in requested] or [("none", "0")],
    )
    print_table(
        "File growth per hour",
        [
            (
                name,
                f"{(last_files.get(name, 0) - first_files.get(name, 0)) / elapsed_h / 1024 / 1024:,.2f} MB",
            )
            for name in sorted(set(first_files) | set(last_files))
        ],
    )
    labels = sorted({label for _, memory in samples for label in memory})
    print_table(
        "Resident memory (MB): first sample, last, largest",
        [
            (
                label,
                f"{samples[0][1].get(label, 0):.0f} → {samples[-1][1].get(label, 0):.0f} "
                f"(max {max(memory.get(label, 0) for _, memory in samples):.0f})",
            )
            for label in labels
        ],
    )
    print_table(
        "Desk (GET /) p95",
        [("at the start", f"{desk_start:.1f} ms"), ("at the end", f"{desk_end:.1f} ms")],
    )
    if args.history_days:
        print_table(f"History written ({args.history_days} days)", list(written.items()))
        print_table(
            "Pages p95: fresh demo → with the history (ratio)",
            [
                (path, f"{fresh[path]:.1f} ms → {aged[path]:.1f} ms ({aged[path] / fresh[path]:.2f}×)")
                for path in PAGES
            ],
        )
        print_table("Hourly maintenance on the aged database", list(maintenance.items()))
    print_table(
        "Machine", [*machine(mqtt=False), ("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))]
    )


def _pages(session: requests.Session, base: str, count: int) -> dict[str, float]:
    """Return the p95 of each page in PAGES, in milliseconds."""
    return {path: _page_p95(session, base + path, count) for path in PAGES}


if __name__ == "__main__":
    main()
