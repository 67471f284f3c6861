"""The end-to-end benchmark of subledger, and its peers on the same events.

bench/run is the entry point; this module holds the steps and the parsing, so that
bench/test_harness.py can check the parsing of every output the harness reads without running
anything heavy. Standard library only (Debian's python3).
"""

import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import threading
import time
import http.client

import server_bench
from dataclasses import dataclass, field


# ---------------------------------------------------------------- running things


@dataclass
class Step:
    """One measured process: wall seconds, peak resident memory and its output."""

    seconds: float
    peak_rss_kb: int
    status: int
    stdout: str = ""
    stderr: str = ""


def run_step(argv, stdin_path=None, stdout_path=None, check=True):
    """Runs one process to completion; wall seconds and output (peak RSS: see timed)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    finally:
        if stdin_path:
            stdin.close()
        if stdout_path:
            stdout.close()
    step = Step(time.monotonic() - started, 0, proc.returncode,
                (proc.stdout or b"").decode(errors="replace"),
                (proc.stderr or b"").decode(errors="replace"))
    if check and step.status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({step.status}): {step.stderr[-2000:]}")
    return step


def timed(argv, **kw):
    """Runs a process under GNU time, so the peak RSS is that process's own (with its children)."""
    fmt = "__TIME__ %e %M"
    step = run_step(["/usr/bin/time", "-f", fmt] + list(argv), **kw)
    seconds, rss = parse_time_line(step.stderr)
    if seconds is not None:
        step.peak_rss_kb = rss
    return step


def parse_time_line(stderr):
    """'__TIME__ 12.34 56789' (GNU time -f '%e %M') -> (seconds, peak_kb)."""
    m = re.search(r"__TIME__ ([0-9.]+) ([0-9]+)", stderr)
    if not m:
        return None, None
    return float(m.group(1)), int(m.group(2))


# ---------------------------------------------------------------- parsing our own outputs


def parse_gen_stats(stderr):
    """'gen: 510 commands, 300 subscriptions, 60 customers, 3 partners, 6 billing runs'."""
    m = re.search(r"gen: (\d+) commands, (\d+) subscriptions, (\d+) customers, (\d+) partners, "
                  r"(\d+) billing runs", stderr)
    if not m:
        raise ValueError(f"unexpected gen output: {stderr!r}")
    keys = ["commands", "subscriptions", "customers", "partners", "billing_runs"]
    return dict(zip(keys, map(int, m.groups())))


def parse_bill_speed(stderr):
    """`bill -v`: 'billing run over 1000 subscriptions in 0.5 s (...)' -> (subs, seconds)."""
    m = re.search(r"billing run over (\d+) subscriptions in ([0-9.e+-]+) s", stderr)
    if not m:
        raise ValueError(f"unexpected bill output: {stderr!r}")
    return int(m.group(1)), float(m.group(2))


def parse_apply_speed(stderr):
    """`apply -v`'s figures -> (commands, events, seconds in process, seconds opening)."""
    m = re.search(r"applied (\d+) commands, (\d+) events in ([0-9.e+-]+) s .*opening the ledger "
                  r"took ([0-9.e+-]+) s", stderr)
    if not m:
        raise ValueError(f"unexpected apply output: {stderr!r}")
    return int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4))


def parse_open_seconds(stderr):
    m = re.search(r"opening the ledger took ([0-9.e+-]+) s", stderr)
    return float(m.group(1)) if m else None


def last_seq_of_results(path):
    """The highest seq_last among apply's result lines (0 if none)."""
    best = 0
    with open(path, "rb") as f:
        for line in f:
            m = re.search(rb'"seq_last":(\d+)', line)
            if m:
                best = max(best, int(m.group(1)))
    return best


def count_rejected(path):
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if b'"ok":false' in line:
                n += 1
    return n


def parse_db_bench(stdout):
    """'fillseq      :       2.345 micros/op 426440 ops/sec ...' -> {name: ops_per_sec}."""
    out = {}
    for m in re.finditer(r"^(\w+)\s*:\s*([0-9.]+) micros/op\s+([0-9]+) ops/sec", stdout, re.M):
        out[m.group(1)] = int(m.group(3))
    return out


def split_billing(commands_path, out_dir):
    """Splits a gen file at its run_billing lines: [(chunk_path, through, request_id|None)]."""
    chunks = []
    current, n = None, 0

    def open_chunk():
        nonlocal current, n
        path = os.path.join(out_dir, f"chunk-{n:03d}.jsonl")
        n += 1
        current = open(path, "w")
        return path

    path = open_chunk()
    with open(commands_path) as f:
        for line in f:
            if '"cmd":"run_billing"' in line:
                current.close()
                c = json.loads(line)
                chunks.append((path, c["through"], c["request_id"]))
                path = open_chunk()
            else:
                current.write(line)
    current.close()
    if os.path.getsize(path) > 0:
        chunks.append((path, None, None))
    return chunks


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def write_small_apply(commands_path, out_path, tag):
    """Ten create_customer commands with fresh ids, modelled on the generated file's first one."""
    with open(commands_path) as f:
        model = next(json.loads(l) for l in f if '"cmd":"create_customer"' in l)
    with open(out_path, "w") as out:
        for i in range(10):
            c = dict(model, request_id=f"{tag}-r{i}", customer_id=f"{tag}C{i}")
            out.write(json.dumps(c, separators=(",", ":")) + "\n")


class WriterBeside:
    """`subledger serve` on the ledger with a thread posting create_customer commands (operator
    route) at about `rate` per second: a running writer, so queries meet rows that lag the log,
    as the issue's goal for state and explain latency says ("beside a running writer")."""

    def __init__(self, binary, db, work, model, rate=50):
        keys = os.path.join(work, "beside-keys.jsonl")
        self.key = subprocess.run([binary, "keys", "add", "--file", keys, "--operator"],
                                  check=True, capture_output=True, text=True).stdout.strip()
        # The server bench's launcher: serve prints {"listening": ...} once the ledger is open.
        self.server = server_bench.Server(binary, db, keys, ["--write-rate", "0", "--read-rate",
                                                             "0", "--customer-rate", "0"])
        self.proc, self.port = self.server.proc, self.server.port
        self.model, self.rate = model, rate
        self.stopping = threading.Event()
        self.accepted = 0
        self.error = None
        self.thread = threading.Thread(target=self._post, daemon=True)
        self.thread.start()

    def _post(self):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            n = 0
            while not self.stopping.is_set():
                n += 1
                body = json.dumps(dict(self.model, request_id=f"beside-r{n}",
                                       customer_id=f"besideC{n}"), separators=(",", ":"))
                conn.request("POST", "/v1/commands", body,
                             {"Authorization": f"Bearer {self.key}",
                              "MS-RequestId": f"beside-h{n}", "Content-Type": "application/json"})
                answer = conn.getresponse()
                text = answer.read()
                # 200 carries the command's result line, accepted or rejected.
                if answer.status == 200 and json.loads(text).get("ok"):
                    self.accepted += 1
                self.stopping.wait(1.0 / self.rate)
            conn.close()
        except Exception as e:  # the figure is then not "beside a writer": stop() says so
            self.error = e

    def _end_server(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def stop(self):
        """Stops the writer; raises if it did not write throughout."""
        self.stopping.set()
        self.thread.join(timeout=60)
        self._end_server()
        if self.error is not None or self.accepted == 0:
            raise RuntimeError(f"the writer beside the queries failed: {self.error!r}, "
                               f"{self.accepted} writes accepted")


def first_line_and_rss(argv):
    """Seconds to the first byte of output, to the end, peak RSS and bytes (output discarded)."""
    started = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "__TIME__ %e %M"] + list(argv),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first, size = None, 0
    while True:
        chunk = proc.stdout.read1(1 << 20)
        if not chunk:
            break
        if first is None:
            first = time.monotonic() - started
        size += len(chunk)
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {stderr[-2000:]}")
    seconds, rss = parse_time_line(stderr)
    return {"first_byte_seconds": first, "seconds": time.monotonic() - started,
            "peak_rss_kb": rss, "bytes": size}


# ---------------------------------------------------------------- subledger steps


@dataclass
class Scale:
    subscriptions: int
    figures: dict = field(default_factory=dict)


def measure_subledger(binary, work, scale, seed, months, samples, log):
    f = scale.figures
    os.makedirs(work, exist_ok=True)
    commands = os.path.join(work, "commands.jsonl")
    db = os.path.join(work, "db")
    shutil.rmtree(db, ignore_errors=True)

    log(f"gen {scale.subscriptions} subscriptions")
    gen = run_step([binary, "gen", "--subscriptions", str(scale.subscriptions), "--seed",
                    str(seed), "--months", str(months), "-o", commands])
    stats = parse_gen_stats(gen.stderr)
    f["gen"] = stats

    chunks = split_billing(commands, work)
    apply_seconds = apply_commands = apply_events = 0
    apply_rss = bill_rss = 0
    runs = []
    open_seconds = []  # each process loads the projection rows before it works
    last_seq = 0
    # The last month's billing is also run with `bill --bounded-memory`, on a copy of the ledger
    # taken just before it: the same run holding only the customers it bills (RSS, opening).
    last_bill = max((i for i, c in enumerate(chunks) if c[1]), default=None)
    bounded_db = os.path.join(work, "db-bounded")
    for i, (chunk, through, request_id) in enumerate(chunks):
        results = chunk + ".results"
        n = sum(1 for _ in open(chunk))
        if n:
            s = timed([binary, "apply", "-v", "--db", db, chunk], stdout_path=results, check=False)
            if s.status not in (0, 1):
                raise RuntimeError(f"apply failed: {s.stderr[-2000:]}")
            rejected = count_rejected(results)
            if rejected:
                raise RuntimeError(f"{rejected} generated commands were rejected ({results})")
            seq = last_seq_of_results(results)
            commands, events, in_process, opening = parse_apply_speed(s.stderr)
            if commands != n or events != seq - last_seq:
                raise RuntimeError(f"apply reported {commands} commands / {events} events, "
                                   f"expected {n} / {seq - last_seq}")
            apply_seconds += in_process
            open_seconds.append(opening)
            apply_commands += n
            apply_events += events
            last_seq = max(last_seq, seq)
            apply_rss = max(apply_rss, s.peak_rss_kb)
        if through and i == last_bill:
            shutil.rmtree(bounded_db, ignore_errors=True)
            shutil.copytree(db, bounded_db)
        if through:
            s = timed([binary, "bill", "-v", "--db", db, "--through", through, "--request-id",
                       request_id])
            summary = json.loads(s.stdout.strip().splitlines()[-1])
            subs, run_seconds = parse_bill_speed(s.stderr)
            if parse_open_seconds(s.stderr) is not None:
                open_seconds.append(parse_open_seconds(s.stderr))
            events = summary["invoices_issued"] + summary["transitions"] + 1
            last_seq += events
            runs.append({"through": through, "subscriptions": subs, "seconds": run_seconds,
                         "process_seconds": s.seconds, "invoices": summary["invoices_issued"],
                         "peak_rss_kb": s.peak_rss_kb})
            bill_rss = max(bill_rss, s.peak_rss_kb)
        log(f"  month {i + 1}/{len(chunks)}: {last_seq} events")
    f["apply"] = {"commands": apply_commands, "events": apply_events, "seconds": apply_seconds,
                  "commands_per_second": apply_commands / apply_seconds,
                  "events_per_second": apply_events / apply_seconds, "peak_rss_kb": apply_rss}
    longest = max(runs, key=lambda r: r["seconds"])
    f["billing"] = {"runs": runs, "longest_seconds": longest["seconds"],
                    "longest_subscriptions": longest["subscriptions"],
                    "subscriptions_per_second": longest["subscriptions"] / longest["seconds"],
                    "peak_rss_kb": bill_rss}
    f["events"] = last_seq
    f["open_seconds"] = {"max": max(open_seconds), "mean": sum(open_seconds) / len(open_seconds)}
    if last_bill is not None:
        _, through, request_id = chunks[last_bill]
        log(f"the last month's billing again with --bounded-memory ({through})")
        s = timed([binary, "bill", "-v", "--bounded-memory", "--db", bounded_db, "--through",
                   through, "--request-id", request_id])
        subs, run_seconds = parse_bill_speed(s.stderr)
        f["billing_bounded"] = {"through": through, "subscriptions": subs, "seconds": run_seconds,
                                "subscriptions_per_second": subs / run_seconds,
                                "process_seconds": s.seconds, "peak_rss_kb": s.peak_rss_kb,
                                "open_seconds": parse_open_seconds(s.stderr),
                                "whole_state": runs[-1]}
        shutil.rmtree(bounded_db, ignore_errors=True)

    log("replay --verify")
    s = timed([binary, "replay", "--verify", "--db", db])
    report = json.loads(s.stdout)
    if not report["ok"]:
        raise RuntimeError(f"replay --verify failed: {s.stdout[:2000]}")
    f["replay"] = {"events": report["events"], "seconds": report["seconds"],
                   "events_per_second": report["events_per_second"],
                   "invoices_checked": report["invoices_checked"],
                   "rows_seconds": report.get("rows_seconds", 0),
                   "process_seconds": s.seconds, "peak_rss_kb": s.peak_rss_kb}

    log(f"state and explain latency ({samples} samples each)")
    rng = random.Random(seed)
    state_ms, explain_ms = [], []
    for _ in range(samples):
        sub = f"S{rng.randint(1, stats['subscriptions'])}"
        s = run_step([binary, "state", sub, "--db", db])
        state_ms.append(s.seconds * 1000)
    explained = 0
    attempts = 0
    while explained < samples and attempts < samples * 20:
        attempts += 1
        customer = f"C{rng.randint(1, stats['customers'])}"
        listing = run_step([binary, "invoices", "--customer", customer, "--db", db])
        ids = [json.loads(l)["invoice_id"] for l in listing.stdout.splitlines() if l]
        if not ids:
            continue
        s = run_step([binary, "explain", rng.choice(ids), "--db", db])
        explain_ms.append(s.seconds * 1000)
        explained += 1
    log(f"log --customer latency ({samples} samples)")
    log_ms = []
    for _ in range(samples):
        customer = f"C{rng.randint(1, stats['customers'])}"
        s = run_step([binary, "log", "--customer", customer, "--db", db])
        log_ms.append(s.seconds * 1000)
    f["log_customer_ms"] = {"p50": percentile(log_ms, 50), "p99": percentile(log_ms, 99)}

    log("invoices and reconcile: first line, whole listing, peak RSS")
    for name, argv in (("invoices", ["invoices"]),
                       ("reconcile", ["reconcile", "--from", "2000-01-01", "--to", "2099-12-31"])):
        f[name] = first_line_and_rss([binary] + argv + ["--db", db])

    log("a 10-command file applied to the ledger, end to end (3 times)")
    small = []
    for attempt in range(3):
        path = os.path.join(work, f"small-{attempt}.jsonl")
        write_small_apply(os.path.join(work, "commands.jsonl"), path, f"bench{attempt}")
        s = run_step([binary, "apply", "-v", "--db", db, path])
        small.append((s.seconds, parse_open_seconds(s.stderr)))
    f["small_apply"] = {"seconds": statistics.median(x[0] for x in small),
                        "open_seconds": statistics.median(x[1] for x in small)}
    f["state_ms"] = {"p50": percentile(state_ms, 50), "p99": percentile(state_ms, 99)}
    f["explain_ms"] = ({"p50": percentile(explain_ms, 50), "p99": percentile(explain_ms, 99)}
                       if explain_ms else None)

    f["disk_bytes"] = dir_bytes(db)
    f["bytes_per_event"] = f["disk_bytes"] / max(1, f["events"])
    # Last (its writes change the ledger the figures above describe): state beside a running
    # writer (serve, taking a new customer about 50 times a second). Its rows lag the log between
    # its row writes, so a query catches them up.
    with open(os.path.join(work, "commands.jsonl")) as lines:
        model = next(json.loads(l) for l in lines if '"cmd":"create_customer"' in l)
    beside_samples = max(1, samples // 5)
    beside_rng = random.Random(seed + 1)  # the other samples' choices stay as they were
    log(f"state latency beside a running writer ({beside_samples} samples)")
    writer = WriterBeside(binary, db, work, model)
    beside_ms = []
    try:
        time.sleep(1.0)
        for _ in range(beside_samples):
            sub = f"S{beside_rng.randint(1, stats['subscriptions'])}"
            s = run_step([binary, "state", sub, "--db", db])
            beside_ms.append(s.seconds * 1000)
    finally:
        writer.stop()
    f["state_beside_writer_ms"] = {"p50": percentile(beside_ms, 50),
                                   "p99": percentile(beside_ms, 99),
                                   "writes_accepted": writer.accepted}
    return db


# ---------------------------------------------------------------- peers


def export_events(binary, db, work):
    """Our stored values as TSV (seq, stream, hex) and their average size."""
    path = os.path.join(work, "events.tsv")
    run_step([binary, "export", "--db", db], stdout_path=path)
    n = total = 0
    with open(path) as f:
        for line in f:
            n += 1
            total += len(line.rsplit("\t", 1)[1].strip()) // 2
    return path, n, total / max(1, n)


def _sql_batches(tsv, batch, literal):
    """Yields multi-row INSERT statements of `batch` rows from the export."""
    rows = []
    with open(tsv) as f:
        for line in f:
            seq, stream, hexval = line.rstrip("\n").split("\t")
            rows.append(f"({seq},'{stream.replace(chr(39), chr(39) * 2)}',{literal(hexval)})")
            if len(rows) == batch:
                yield "INSERT INTO events VALUES " + ",".join(rows) + ";\n"
                rows = []
    if rows:
        yield "INSERT INTO events VALUES " + ",".join(rows) + ";\n"


def write_insert_sql(tsv, path, batch, literal, prologue=""):
    with open(path, "w") as out:
        out.write(prologue)
        for stmt in _sql_batches(tsv, batch, literal):
            out.write(stmt)


class Postgres:
    """A private PostgreSQL 15 cluster: its own data directory and Unix socket, stopped at the end."""

    def __init__(self, work, log):
        self.bin = "/usr/lib/postgresql/15/bin"
        self.dir = os.path.join(work, "pg")
        self.sock = os.path.join(work, "pgsock")
        self.port = "54329"
        self.log = log
        self.as_root = os.geteuid() == 0
        self.started = False

    def _as_owner(self, argv):
        return (["runuser", "-u", "postgres", "--"] + argv) if self.as_root else argv

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.sock, ignore_errors=True)
        os.makedirs(self.sock)
        os.makedirs(self.dir)
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
            os.chmod(os.path.dirname(self.dir), 0o755)
        run_step(self._as_owner([f"{self.bin}/initdb", "-D", self.dir, "--auth=trust", "-U",
                                 "postgres", "--no-sync"]))
        opts = (f"-k {self.sock} -p {self.port} -c listen_addresses='' -c fsync=on "
                f"-c synchronous_commit=on -c shared_buffers=1GB -c max_wal_size=8GB")
        run_step(self._as_owner([f"{self.bin}/pg_ctl", "-D", self.dir, "-o", opts, "-w", "-l",
                                 os.path.join(self.dir, "log"), "start"]))
        self.started = True

    def psql(self, sql=None, file=None, stdout_path=None):
        argv = ["psql", "-h", self.sock, "-p", self.port, "-U", "postgres", "-v",
                "ON_ERROR_STOP=1", "-q", "-At"]
        argv += ["-f", file] if file else ["-c", sql]
        return timed(argv, stdout_path=stdout_path)

    def stop(self):
        if self.started:
            run_step(self._as_owner([f"{self.bin}/pg_ctl", "-D", self.dir, "-m", "fast", "stop"]),
                     check=False)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_postgres(binary, work, tsv, events, log):
    pg = Postgres(work, log)
    fig = {}
    try:
        log("PostgreSQL: start a private cluster")
        pg.start()
        create = "CREATE TABLE events (seq bigint PRIMARY KEY, stream text NOT NULL, payload bytea NOT NULL);"
        pg.psql(create)
        sql = os.path.join(work, "pg-insert.sql")
        write_insert_sql(tsv, sql, 1000, lambda h: f"'\\x{h}'::bytea")
        log("PostgreSQL: batched INSERT, synchronous_commit=on, 1000 rows per transaction")
        s = pg.psql(file=sql)
        fig["insert_events_per_second"] = events / s.seconds
        fig["insert_seconds"] = s.seconds
        os.remove(sql)
        pg.psql("TRUNCATE events; CHECKPOINT;")
        copy = os.path.join(work, "pg-copy.tsv")
        with open(tsv) as src, open(copy, "w") as dst:
            for line in src:
                seq, stream, hexval = line.rstrip("\n").split("\t")
                dst.write(f"{seq}\t{stream}\t\\\\x{hexval}\n")
        log("PostgreSQL: COPY")
        s = pg.psql(f"\\copy events FROM '{copy}'")
        fig["copy_events_per_second"] = events / s.seconds
        os.remove(copy)
        pg.psql("VACUUM ANALYZE events;")
        log("PostgreSQL: ordered scan into subledger's projections")
        s = timed(["sh", "-c",
                   f"psql -h {pg.sock} -p {pg.port} -U postgres -At -c "
                   f"'COPY (SELECT payload FROM events ORDER BY seq) TO STDOUT' | "
                   f"{binary} replay --from-hex -"])
        report = json.loads(s.stdout.strip().splitlines()[-1])
        if not report["ok"] or report["events"] != events:
            raise RuntimeError(f"PostgreSQL scan did not fold cleanly: {s.stdout[:500]}")
        fig["scan_replay_events_per_second"] = events / s.seconds
    finally:
        pg.stop()
    return fig


def measure_sqlite(binary, work, tsv, events, log):
    fig = {}
    db = os.path.join(work, "events.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    sql = os.path.join(work, "sqlite-insert.sql")
    prologue = ("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n"
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, "
                "payload BLOB NOT NULL);\n")
    write_insert_sql(tsv, sql, 1000, lambda h: f"X'{h}'", prologue)
    log("SQLite WAL: batched INSERT, synchronous=FULL, 1000 rows per transaction")
    s = timed(["sqlite3", db], stdin_path=sql)
    fig["insert_events_per_second"] = events / s.seconds
    os.remove(sql)
    log("SQLite: ordered scan into subledger's projections")
    s = timed(["sh", "-c", f"sqlite3 -noheader {db} 'SELECT hex(payload) FROM events ORDER BY seq' "
                           f"| {binary} replay --from-hex -"])
    report = json.loads(s.stdout.strip().splitlines()[-1])
    if not report["ok"] or report["events"] != events:
        raise RuntimeError(f"SQLite scan did not fold cleanly: {s.stdout[:500]}")
    fig["scan_replay_events_per_second"] = events / s.seconds
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    return fig


def measure_db_bench(db_bench, work, events, value_size, batch, log):
    path = os.path.join(work, "db_bench")
    shutil.rmtree(path, ignore_errors=True)
    log(f"db_bench fillseq (sync, {batch} per batch) and readseq, value size {value_size}")
    s = timed([db_bench, f"--db={path}", "--benchmarks=fillseq,readseq", f"--num={events}",
               f"--value_size={int(value_size)}", "--sync=1", f"--batch_size={batch}",
               "--compression_type=lz4", "--compression_ratio=0.5", "--key_size=8"])
    ops = parse_db_bench(s.stdout)
    shutil.rmtree(path, ignore_errors=True)
    return {"fillseq_sync_ops_per_second": ops.get("fillseq"),
            "readseq_ops_per_second": ops.get("readseq")}


# ---------------------------------------------------------------- report


def rocksdb_linkage(readelf_dynamic):
    """Which RocksDB a binary runs on, from `readelf -d` of it: Debian's shared library (built
    with its assertions) or the static Release build of scripts/rocksdb_release.sh."""
    if re.search(r"\(NEEDED\)\s+Shared library: \[librocksdb\.so", readelf_dynamic):
        return "Debian's shared librocksdb"
    return "static Release build"


def machine_info(binary):
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    r = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True)
    info["rocksdb_linkage"] = rocksdb_linkage(r.stdout) if r.returncode == 0 else None
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1) if m else "?"
        with open("/proc/meminfo") as f:
            m = re.search(r"MemTotal:\s*(\d+) kB", f.read())
            info["memory_gib"] = round(int(m.group(1)) / 1024 / 1024, 1) if m else None
    except OSError:
        pass
    for pkg in ("librocksdb-dev", "postgresql-15", "sqlite3", "capnproto"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True)
        info[pkg] = r.stdout.strip() or None
    return info


def _k(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "-"


def render_markdown(results):
    lines = ["| figure | " + " | ".join(f"{s['subscriptions']:,} subs" for s in results["scales"]) + " |",
             "|---|" + "---|" * len(results["scales"])]

    def row(label, fn):
        cells = []
        for s in results["scales"]:
            try:
                cells.append(fn(s["figures"]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("events in the log", lambda f: f"{f['events']:,}")
    row("apply, commands/s (durable, in process)", lambda f: _k(f["apply"]["commands_per_second"]))
    row("apply, events/s (durable, in process)", lambda f: _k(f["apply"]["events_per_second"]))
    row("apply, peak RSS", lambda f: f"{f['apply']['peak_rss_kb'] / 1024:.0f} MB")
    row("opening the ledger (load rows), max s", lambda f: f"{f['open_seconds']['max']:.2f}")
    row("longest billing run, s", lambda f: f"{f['billing']['longest_seconds']:.2f}")
    row("billing, subscriptions/s", lambda f: _k(f["billing"]["subscriptions_per_second"]))
    row("bill process, peak RSS", lambda f: f"{f['billing']['peak_rss_kb'] / 1024:.0f} MB")
    row("last month's bill, whole state: run / process s, peak RSS",
        lambda f: (f"{f['billing_bounded']['whole_state']['seconds']:.2f} / "
                   f"{f['billing_bounded']['whole_state']['process_seconds']:.2f}, "
                   f"{f['billing_bounded']['whole_state']['peak_rss_kb'] / 1024:.0f} MB"))
    row("  the same with --bounded-memory: run / process s, peak RSS",
        lambda f: (f"{f['billing_bounded']['seconds']:.2f} / "
                   f"{f['billing_bounded']['process_seconds']:.2f}, "
                   f"{f['billing_bounded']['peak_rss_kb'] / 1024:.0f} MB"))
    row("  --bounded-memory: subscriptions/s, opening s",
        lambda f: (f"{_k(f['billing_bounded']['subscriptions_per_second'])}, "
                   f"{f['billing_bounded']['open_seconds']:.2f}"))
    row("replay --verify, events/s", lambda f: _k(f["replay"]["events_per_second"]))
    row("replay --verify, whole / stored-row check, s",
        lambda f: f"{f['replay']['process_seconds']:.1f} / {f['replay']['rows_seconds']:.1f}")
    row("replay, peak RSS", lambda f: f"{f['replay']['peak_rss_kb'] / 1024:.0f} MB")
    row("replay RSS per subscription", lambda f: f"{f['replay']['peak_rss_kb'] * 1024 / f['gen']['subscriptions']:.0f} B")
    row("state p50 / p99, ms", lambda f: f"{f['state_ms']['p50']:.1f} / {f['state_ms']['p99']:.1f}")
    row("state p50 / p99 beside a running writer, ms",
        lambda f: (f"{f['state_beside_writer_ms']['p50']:.1f} / {f['state_beside_writer_ms']['p99']:.1f}"
                   if f.get("state_beside_writer_ms") else "-"))
    row("explain p50 / p99, ms", lambda f: f"{f['explain_ms']['p50']:.1f} / {f['explain_ms']['p99']:.1f}")
    row("log --customer p50 / p99, ms", lambda f: f"{f['log_customer_ms']['p50']:.1f} / {f['log_customer_ms']['p99']:.1f}")
    row("10-command apply end to end, s", lambda f: f"{f['small_apply']['seconds']:.2f}")
    row("  of which opening the ledger, s", lambda f: f"{f['small_apply']['open_seconds']:.2f}")
    for name in ("invoices", "reconcile"):
        row(f"{name}: first line / whole, s",
            lambda f, n=name: f"{f[n]['first_byte_seconds']:.2f} / {f[n]['seconds']:.2f}")
        row(f"{name}: peak RSS / output",
            lambda f, n=name: f"{f[n]['peak_rss_kb'] / 1024:.0f} MB / {f[n]['bytes'] / 1e6:.0f} MB")
    row("bytes on disk per event", lambda f: f"{f['bytes_per_event']:.0f}")
    row("PostgreSQL batched INSERT, events/s", lambda f: _k(f["postgres"]["insert_events_per_second"]))
    row("  apply / PostgreSQL INSERT", lambda f: _ratio(f["apply"]["events_per_second"], f["postgres"]["insert_events_per_second"]))
    row("PostgreSQL COPY, events/s", lambda f: _k(f["postgres"]["copy_events_per_second"]))
    row("PostgreSQL scan + projections, events/s", lambda f: _k(f["postgres"]["scan_replay_events_per_second"]))
    row("  replay / PostgreSQL scan", lambda f: _ratio(f["replay"]["events_per_second"], f["postgres"]["scan_replay_events_per_second"]))
    row("SQLite WAL INSERT, events/s", lambda f: _k(f["sqlite"]["insert_events_per_second"]))
    row("  apply / SQLite INSERT", lambda f: _ratio(f["apply"]["events_per_second"], f["sqlite"]["insert_events_per_second"]))
    row("SQLite scan + projections, events/s", lambda f: _k(f["sqlite"]["scan_replay_events_per_second"]))
    row("db_bench fillseq (sync), ops/s", lambda f: _k(f["db_bench"]["fillseq_sync_ops_per_second"]))
    row("db_bench readseq, ops/s", lambda f: _k(f["db_bench"]["readseq_ops_per_second"]))
    row("  replay / readseq", lambda f: _ratio(f["replay"]["events_per_second"], f["db_bench"]["readseq_ops_per_second"]))
    return "\n".join(lines) + "\n"


def write_plot(results, out_dir, log):
    """Throughput and memory against scale, drawn by gnuplot (SVG terminal)."""
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no plot")
        return None
    data = os.path.join(out_dir, "results.dat")
    with open(data, "w") as f:
        f.write("# subscriptions apply_eps replay_eps billing_sps apply_rss_mb replay_rss_mb bill_rss_mb\n")
        for s in results["scales"]:
            g = s["figures"]
            try:
                f.write(f"{s['subscriptions']} {g['apply']['events_per_second']:.0f} "
                        f"{g['replay']['events_per_second']:.0f} "
                        f"{g['billing']['subscriptions_per_second']:.0f} "
                        f"{g['apply']['peak_rss_kb'] / 1024:.0f} {g['replay']['peak_rss_kb'] / 1024:.0f} "
                        f"{g['billing']['peak_rss_kb'] / 1024:.0f}\n")
            except (KeyError, TypeError):
                pass
    svg = os.path.join(out_dir, "results.svg")
    script = f"""
set terminal svg size 1000,450 dynamic
set output '{svg}'
set multiplot layout 1,2 title 'subledger: cost against scale'
set logscale x
set xlabel 'active subscriptions'
set key left top
set ylabel 'per second'
set title 'throughput'
plot '{data}' using 1:2 with linespoints title 'apply events/s', \
     '' using 1:3 with linespoints title 'replay --verify events/s', \
     '' using 1:4 with linespoints title 'billing subscriptions/s'
set logscale y
set ylabel 'MB (log scale: linear growth is a slope of 1)'
set title 'peak resident memory'
plot '{data}' using 1:5 with linespoints title 'apply', \
     '' using 1:6 with linespoints title 'replay --verify', \
     '' using 1:7 with linespoints title 'bill'
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    return svg
