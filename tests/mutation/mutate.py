#!/usr/bin/env python3
"""Mutation testing of the rule code (issue 10). Python 3 standard library only.

For each sampled mutant: write the mutated source file, rebuild incrementally (its own build
directory, only the targets the tests need), run the GoogleTest binary with --gtest_fail_fast
and a per-mutant timeout, restore the file. Writes report.md and report.json.

    python3 tests/mutation/mutate.py --seed 10 --count 150

Status of a mutant:
  killed         a test failed (the first failing test is recorded)
  timeout        the suite ran past --timeout (counted as detected, the usual convention)
  survived       every test passed
  build-failure  the mutant does not compile (counted apart, neither killed nor survived)
  equivalent     listed in equivalent.txt with a reason (counted apart)

The kill rate is (killed + timeout) / (killed + timeout + survived).

The same --seed, --count and --files give the same mutants (the candidate list is built in a
fixed order and sampled with random.Random(seed)). Mutant ids are a hash of the file, the
original line and the mutated line, so they survive edits elsewhere in the file; equivalent.txt
names mutants by that id.

With --baseline-filter F, each mutant is first run against the tests selected by F (the suite as
it stood before some tests were added) and, only when that survives, against the full filter:
one build gives both a "before" and an "after" figure.

Data tables (the ISO 4217 minor-unit table, the registration-number lengths) are not mutated:
they are data checked against the spec, not logic with boundaries.
"""

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

DEFAULT_FILES = [
    "ledger/decide.cpp",
    "projections/subscription.cpp",
    "projections/charge_line.cpp",
    "events/money.cpp",
    "projections/invoice.cpp",
    "ledger/billing_run.cpp",
    "projections/ledger_state.cpp",
    "ledger/catalog_rules.cpp",  # BILLING_RULES 12 and 13 (issue 18)
    "projections/catalog.cpp",
]

# The slow tests that exercise crash recovery, backups and the workload generator at scale; they
# do not look at the rule code's boundaries and would multiply the cost of every mutant.
# Excluded from every mutant's run: the crash test (12 s of killed processes), the backup tests
# and the workload generator at scale, which do not look at the rule code's boundaries, and the
# shared_* scenario instances, byte-identical copies of the project_* ones.
DEFAULT_FILTER = "-Crash.*:Backup.*:Workload.*:*shared_*"

# ---------------------------------------------------------------------------------------------
# Candidate generation
# ---------------------------------------------------------------------------------------------

# Regions that are data, not logic (start regex, end regex), per file.
DATA_REGIONS = {
    "events/money.cpp": [(r"constexpr CurrencyInfo kCurrencies\[\]", r"^};")],
    "ledger/countries.cpp": [(r"static const std::map<std::string_view, std::vector<int>> kLengths",
                           r"^\s*};")],
}

SKIP_LINE = re.compile(r"^\s*(#|//|namespace\b|}\s*//\s*namespace|using\b|case\b.*:\s*$|default:)")


def code_mask(line):
    """The line with string/char literals and // comments blanked, same length."""
    out = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "/" and i + 1 < n and line[i + 1] == "/":
            out.append(" " * (n - i))
            break
        if c in "\"'":
            # raw strings are not used on rule lines; plain literals with escapes
            q = c
            out.append(" ")
            i += 1
            while i < n and line[i] != q:
                if line[i] == "\\":
                    out.append(" ")
                    i += 1
                out.append(" ")
                i += 1
            out.append(" ")
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)[:n].ljust(n)


def matching_paren(mask, open_idx):
    depth = 0
    for j in range(open_idx, len(mask)):
        if mask[j] == "(":
            depth += 1
        elif mask[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return -1


def split_args(mask, open_idx, close_idx):
    """Top-level argument spans (start, end) between the parentheses."""
    spans, depth, start = [], 0, open_idx + 1
    for j in range(open_idx + 1, close_idx):
        c = mask[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            spans.append((start, j))
            start = j + 1
    spans.append((start, close_idx))
    return spans


ROR = {" < ": [" <= "], " <= ": [" < "], " > ": [" >= "], " >= ": [" > "],
       " == ": [" != "], " != ": [" == "]}
LCR = {" && ": [" || "], " || ": [" && "]}
AOR = {" + ": [" - "], " - ": [" + "], " * ": [" / "], " += ": [" -= "], " -= ": [" += "]}
STATEMENT = re.compile(
    r"^(\s*)((\+\+|--)[\w.\->\[\]]+|[\w.\->\[\]]+(\+\+|--)|[\w.\->\[\]*]+ (=|\+=|-=|\*=) .+|"
    r"[\w.:\->\[\]]+\(.*\)|std::\w+\(.*\))\s*;\s*$")
INT = re.compile(r"(?<![\w.'])(\d[\d']*)(?![\w.'])")
MESSAGE = re.compile(r"(return |= )?(Decision::reject|reject_state)\(|return CommandResult\{|"
                     r"return \"|mismatches_\.push_back")
UNARY_MINUS = re.compile(r"(?<=[(=?:,] )-(?=[A-Za-z_(])|(?<=\()-(?=[A-Za-z_(])|(?<=return )-(?=[A-Za-z_(])")


def candidates_for(rel, text):
    lines = text.split("\n")
    in_data = None
    in_message = False
    regions = DATA_REGIONS.get(rel, [])
    out = []
    for idx, line in enumerate(lines):
        if in_data is not None:
            if re.search(in_data, line):
                in_data = None
            continue
        started = False
        for start, end in regions:
            if re.search(start, line):
                in_data = end
                started = True
        if started or SKIP_LINE.match(line) or not line.strip():
            continue
        mask = code_mask(line)
        if "static_assert" in mask or "assert(" in mask:
            continue
        # Rejection messages and error texts: what is rejected is decided by the condition before
        # them (mutated); the wording is not a rule. Mask the message from its call to its ';'.
        if in_message:
            if mask.rstrip().endswith(";"):
                in_message = False
            continue
        mm = MESSAGE.search(mask)
        if mm:
            if not mask.rstrip().endswith(";"):
                in_message = True
            mask = mask[:mm.start()] + " " * (len(mask) - mm.start())
        has_literal = mask != line

        def add(op, s, e, repl, note=None):
            mutated = line[:s] + repl + line[e:]
            if mutated != line:
                out.append((idx, op, mutated, note or f"{line[s:e].strip()} -> {repl.strip()}"))

        for table, op in ((ROR, "ROR"), (LCR, "LCR"), (AOR, "AOR")):
            if op == "AOR" and has_literal:
                continue  # string concatenation, not arithmetic
            for tok, repls in table.items():
                for m in re.finditer(re.escape(tok), mask):
                    # skip stream operators and pointer arrows mistaken for comparisons
                    if tok in (" < ", " > ") and (mask[m.start():m.start() + 4] in (" << ", " >> ")):
                        continue
                    for r in repls:
                        add(op, m.start(), m.end(), r)
        # negated conditions: if (...) / while (...) (not init-statements)
        for m in re.finditer(r"\b(if|while) \(", mask):
            o = m.end() - 1
            c = matching_paren(mask, o)
            if c < 0:
                continue
            cond = line[o + 1:c]
            if re.match(r"\s*(auto|const|std::|int|bool|Date)\b", cond) or ";" in cond:
                continue
            add("NEG", o + 1, c, "!(" + cond + ")", f"if ({cond.strip()}) -> if (!({cond.strip()}))")
        # integer constants +-1
        for m in INT.finditer(mask):
            lit = line[m.start():m.end()]
            val = int(lit.replace("'", ""))
            before = mask[:m.start()].rstrip()
            if before.endswith("[") or "std::get<" in before[-12:]:
                continue
            for nv in (val + 1, val - 1):
                if nv < 0:
                    continue
                add("CONST", m.start(), m.end(), str(nv), f"{lit} -> {nv}")
        # true/false
        for m in re.finditer(r"\b(true|false)\b", mask):
            add("CONST", m.start(), m.end(), "false" if m.group(1) == "true" else "true")
        # unary minus removed (sign flip)
        for m in UNARY_MINUS.finditer(mask):
            add("SIGN", m.start(), m.end(), "", "unary - removed")
        # ternary branches swapped: c ? a : b -> c ? b : a (one-line forms)
        tm = re.search(r"\? ([^?:;]+?) : ([^?:;]+?)(?=;|\)\s*;)", mask)
        if tm:
            a, b = line[tm.start(1):tm.end(1)], line[tm.start(2):tm.end(2)]
            add("SWAP", tm.start(1), tm.end(2), f"{b} : {a}", "ternary branches swapped")
        # swapped adjacent call arguments
        for m in re.finditer(r"[\w>]\(", mask):
            o = m.end() - 1
            c = matching_paren(mask, o)
            if c < 0:
                continue
            spans = split_args(mask, o, c)
            if len(spans) < 2:
                continue
            for k in range(len(spans) - 1):
                (s1, e1), (s2, e2) = spans[k], spans[k + 1]
                a1, a2 = line[s1:e1].strip(), line[s2:e2].strip()
                if not a1 or not a2 or a1 == a2 or " " in a1 or " " in a2:
                    continue  # declarations ("Date d") and expressions are not swapped
                pre = line[s1:e1][: len(line[s1:e1]) - len(line[s1:e1].lstrip())]
                mutated_args = pre + a2 + "," + line[s2:e2][: len(line[s2:e2]) - len(line[s2:e2].lstrip())] + a1
                add("SWAP", s1, e2, mutated_args, f"arguments swapped: {a1} <-> {a2}")
        # removed statements
        sm = STATEMENT.match(mask)
        prev = code_mask(lines[idx - 1]).strip() if idx else ";"
        starts_statement = prev.endswith((";", "{", "}")) or (
            prev.endswith(")") and re.match(r"(} )?(if|for|while|else)\b", prev))
        if sm and starts_statement and not mask.lstrip().startswith(".") and not re.match(r"^\s*(return|auto|const|int|bool|std::string |Date |uint|int64_t)\b", mask):
            if mask.count("(") == mask.count(")"):
                indent = line[: len(line) - len(line.lstrip())]
                out.append((idx, "DEL", indent + "/* removed */;", "statement removed: " + line.strip()))
    return lines, out


def signature(rel, original, mutated):
    h = hashlib.sha1(f"{rel}\n{original.strip()}\n{mutated.strip()}".encode()).hexdigest()
    return h[:12]


def build_pool(files):
    pool = []
    for rel in files:
        text = (ROOT / rel).read_text()
        lines, cands = candidates_for(rel, text)
        seen = set()
        for idx, op, mutated, note in cands:
            sig = signature(rel, lines[idx], mutated)
            if sig in seen:
                continue
            seen.add(sig)
            pool.append({"id": sig, "file": rel, "line": idx + 1, "op": op, "change": note,
                         "original": lines[idx].strip(), "mutated": mutated.strip(),
                         "_mutated_line": mutated})
    return pool


def sample(pool, files, count, seed):
    """Stratified by file, proportional to each file's candidates (at least 5 where available),
    deterministic for a seed."""
    rng = random.Random(seed)
    by_file = {f: [m for m in pool if m["file"] == f] for f in files}
    total = sum(len(v) for v in by_file.values())
    if count >= total:
        chosen = [m for f in files for m in by_file[f]]
    else:
        quota = {f: max(min(5, len(v)), round(count * len(v) / total)) for f, v in by_file.items()}
        while sum(quota.values()) > count:
            f = max(quota, key=lambda k: quota[k])
            quota[f] -= 1
        while sum(quota.values()) < count:
            f = max(by_file, key=lambda k: len(by_file[k]) - quota[k])
            quota[f] += 1
        chosen = []
        for f in files:
            chosen += rng.sample(by_file[f], min(quota[f], len(by_file[f])))
    return sorted(chosen, key=lambda m: (files.index(m["file"]), m["line"], m["id"]))


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

class Restorer:
    """Keeps the original of the file being mutated, on disk too, so that an interrupted run
    (Ctrl-C, SIGTERM, even SIGKILL then a rerun) never leaves a mutant in the tree."""

    def __init__(self, backup_dir):
        self.backup_dir = backup_dir
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        self.current = None

    def recover(self):
        for b in self.backup_dir.glob("*.orig"):
            rel = b.name[:-5].replace("__", "/")
            (ROOT / rel).write_bytes(b.read_bytes())
            b.unlink()
            print(f"restored {rel} from an interrupted run", file=sys.stderr)

    def mutate(self, rel, line_idx, new_line):
        path = ROOT / rel
        original = path.read_bytes()
        (self.backup_dir / (rel.replace("/", "__") + ".orig")).write_bytes(original)
        self.current = (rel, original)
        lines = original.decode().split("\n")
        lines[line_idx] = new_line
        path.write_text("\n".join(lines))

    def restore(self):
        if self.current is None:
            return
        rel, original = self.current
        (ROOT / rel).write_bytes(original)
        (self.backup_dir / (rel.replace("/", "__") + ".orig")).unlink(missing_ok=True)
        self.current = None


def run(cmd, timeout=None, cwd=ROOT):
    """Runs cmd in its own process group; kills the whole group on timeout."""
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True, errors="replace")
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out, False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return None, out, True
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise


def copy_tree(scratch):
    """Mirrors the project's files into scratch/src (deleting files no longer in the project,
    keeping the build directory and the mtimes of unchanged files, so rebuilds stay incremental)."""
    src = scratch / "src"
    src.mkdir(parents=True, exist_ok=True)
    # The tests find the acceptance scenarios at ${PROJECT_SOURCE_DIR}/../shared/scenarios.
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (scratch / "shared").exists():
        (scratch / "shared").symlink_to(shared)
    rc, out, _ = run(["git", "ls-files", "-co", "--exclude-standard", "-z"])
    if rc != 0:
        sys.exit("git ls-files failed: " + out)
    files = [f for f in out.split("\0") if f and not f.startswith("build")]
    wanted = set(files)
    for f in files:
        a, b = ROOT / f, src / f
        if not a.is_file():
            continue
        data = a.read_bytes()
        if b.is_file() and b.read_bytes() == data:
            continue
        b.parent.mkdir(parents=True, exist_ok=True)
        b.write_bytes(data)
    for b in list(src.rglob("*")):
        rel = b.relative_to(src).as_posix()
        if b.is_file() and rel not in wanted:
            b.unlink()
    return src


def build(args):
    env_cmd = ["cmake", "--build", str(args.build_dir), "-j", str(args.build_jobs),
               "--target", "subledger", "subledger_tests"]
    rc, out, _ = run(env_cmd, timeout=args.build_timeout)
    return rc == 0, out


def first_failure(out):
    m = re.search(r"^\[  FAILED  \] ([\w./]+)", out, re.M)
    if m:
        return m.group(1)
    runs = re.findall(r"^\[ RUN      \] ([\w./]+)", out, re.M)
    return (runs[-1] + " (crashed)") if runs else "(no test ran)"


def run_tests(args, gfilter):
    binary = args.build_dir / "tests" / "subledger_tests"
    cmd = [str(binary), "--gtest_fail_fast", f"--gtest_filter={gfilter}"]
    t0 = time.time()
    rc, out, timed_out = run(cmd, timeout=args.timeout)
    secs = time.time() - t0
    if timed_out:
        return "timeout", first_failure(out).replace(" (crashed)", " (timed out)"), secs
    if rc == 0:
        return "survived", None, secs
    return "killed", first_failure(out), secs


def load_equivalents():
    eq = {}
    path = HERE / "equivalent.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            sig, _, reason = line.partition(" ")
            eq[sig] = reason.strip()
    return eq


def rates(mutants, key):
    per = {}
    for m in mutants:
        st = m.get(key)
        if st is None:
            continue
        d = per.setdefault(m["file"], {"killed": 0, "timeout": 0, "survived": 0,
                                        "build-failure": 0, "equivalent": 0})
        d[st] += 1
    total = {"killed": 0, "timeout": 0, "survived": 0, "build-failure": 0, "equivalent": 0}
    for d in per.values():
        for k, v in d.items():
            total[k] += v
    for d in list(per.values()) + [total]:
        det = d["killed"] + d["timeout"]
        denom = det + d["survived"]
        d["kill_rate"] = round(100.0 * det / denom, 1) if denom else None
    return per, total


def write_report(args, mutants, meta):
    per, total = rates(mutants, "status")
    report = {"meta": meta, "per_file": per, "total": total,
              "mutants": [{k: v for k, v in m.items() if not k.startswith("_")} for m in mutants]}
    if args.baseline_filter:
        bper, btotal = rates(mutants, "status_before")
        report["per_file_before"] = bper
        report["total_before"] = btotal
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")

    def fmt_rate(d):
        return "n/a" if d.get("kill_rate") is None else f"{d['kill_rate']}%"

    md = ["# Mutation report", "",
          f"Command: `{meta['command']}`  ",
          f"Seed {meta['seed']}, {len(mutants)} mutants over {len(meta['files'])} files; test filter "
          f"`{meta['filter']}`; per-mutant timeout {meta['timeout']} s; "
          f"{meta.get('elapsed_s', 0)} s in all.", "",
          *( [f"Mutated sources: {meta['sources']}.", ""] if meta.get("sources") else [] ),
          "Kill rate = (killed + timeout) / (killed + timeout + survived); build failures and "
          "mutants listed in equivalent.txt are counted apart.", ""]
    header = "| file | mutants | killed | timeout | survived | build failure | equivalent | kill rate |"
    if args.baseline_filter:
        md += [f"Before (filter `{args.baseline_filter}`, the suite before the boundary tests) and "
               "after (the whole filter):", ""]
        header += " before (judged) |"
    md += [header, "|" + "---|" * (header.count("|") - 1)]
    for f in meta["files"] + ["TOTAL"]:
        d = total if f == "TOTAL" else per.get(f)
        if not d:
            continue
        n = sum(d[k] for k in ("killed", "timeout", "survived", "build-failure", "equivalent"))
        row = (f"| {f} | {n} | {d['killed']} | {d['timeout']} | {d['survived']} | "
               f"{d['build-failure']} | {d['equivalent']} | {fmt_rate(d)} |")
        if args.baseline_filter:
            bd = report["total_before"] if f == "TOTAL" else report["per_file_before"].get(f, {})
            judged = sum(bd.get(k, 0) for k in ("killed", "timeout", "survived"))
            row += f" {fmt_rate(bd)} of {judged} |" if judged else " n/a |"
        md.append(row)
    md += ["", "## Survivors", ""]
    surv = [m for m in mutants if m["status"] == "survived"]
    md += [f"- `{m['id']}` {m['file']}:{m['line']} {m['op']}: {m['change']}  \n"
           f"  `{m['original']}` -> `{m['mutated']}`" for m in surv] or ["none"]
    md += ["", "## Equivalent (equivalent.txt)", ""]
    eqs = [m for m in mutants if m["status"] == "equivalent"]
    md += [f"- `{m['id']}` {m['file']}:{m['line']} {m['op']}: {m['change']}: {m['reason']}"
           for m in eqs] or ["none"]
    md += ["", "## Every mutant", "",
           "| id | where | op | change | status | first killing test |" +
           (" before |" if args.baseline_filter else ""),
           "|---|---|---|---|---|---|" + ("---|" if args.baseline_filter else "")]
    for m in mutants:
        change = m["change"].replace("|", "\\|").replace("`", "'")
        row = (f"| `{m['id']}` | {m['file']}:{m['line']} | {m['op']} | `{change}` | {m['status']} | "
               f"{m.get('killer') or ''} |")
        if args.baseline_filter:
            row += f" {m.get('status_before', '')} |"
        md.append(row)
    (out / "report.md").write_text("\n".join(md) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    ap.add_argument("--jobs", type=int, default=1, help="mutants at a time (only 1: one source tree)")
    ap.add_argument("--build-dir", default="build-mutation")
    ap.add_argument("--build-jobs", type=int, default=2, help="cmake --build -j for each mutant")
    ap.add_argument("--build-timeout", type=int, default=900)
    ap.add_argument("--timeout", type=int, default=240, help="seconds for one mutant's test run")
    ap.add_argument("--filter", default=DEFAULT_FILTER, help="gtest filter of the suite")
    ap.add_argument("--baseline-filter", default=None,
                    help="gtest filter of the suite before new tests: report a 'before' figure too")
    ap.add_argument("--added-filter", default=None,
                    help="with --baseline-filter: the tests added since (the filter minus the "
                         "baseline); a mutant the baseline does not kill is run against these only")
    ap.add_argument("--baseline-every", type=int, default=1,
                    help="judge only every K-th mutant of the sample against --baseline-filter "
                         "(the 'before' figure on a sample: a survivor of the baseline costs a "
                         "whole extra suite run)")
    ap.add_argument("--rerun-survivors", action="store_true",
                    help="run again only the survivors of the existing report.json (same seed, "
                         "count and files) against the current tests, keeping every other result")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite report.md/report.json from the existing report.json and the "
                         "current equivalent.txt, running nothing")
    ap.add_argument("--ids", nargs="*", help="run only these mutant ids (of the sample)")
    ap.add_argument("--list", action="store_true", help="list the sampled mutants and exit")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--scratch", default=None,
                    help="copy the project (git ls-files: tracked and untracked, not ignored) into "
                         "DIR/src and mutate and build there, so the checkout stays usable")
    args = ap.parse_args()
    if args.jobs != 1:
        ap.error("--jobs must be 1: mutants share one source tree and build directory")
    if args.report_only:
        report = json.loads((Path(args.out) / "report.json").read_text())
        equivalents = load_equivalents()
        mutants = report["mutants"]
        for m in mutants:
            if m["status"] in ("survived", "equivalent"):
                if m["id"] in equivalents:
                    m["status"], m["reason"] = "equivalent", equivalents[m["id"]]
                else:
                    m["status"] = "survived"
                    m.pop("reason", None)
            if m.get("status_before") in ("survived", "equivalent"):
                m["status_before"] = "equivalent" if m["id"] in equivalents else "survived"
        args.baseline_filter = report["meta"].get("baseline_filter")
        write_report(args, mutants, report["meta"])
        per, total = rates(mutants, "status")
        print(f"kill rate {total['kill_rate']}%; {total['equivalent']} equivalent")
        return 0
    global ROOT
    if args.scratch:
        scratch = Path(args.scratch).resolve()
        ROOT = copy_tree(scratch)
        args.build_dir = scratch / "build"
    else:
        args.build_dir = (ROOT / args.build_dir).resolve()
    if not (args.build_dir / "CMakeCache.txt").exists():
        # Unoptimized, no debug info, asserts off as in the release build: a mutant compiles
        # and links several times faster; behaviour is the same code's.
        rc, out, _ = run(["cmake", "-S", str(ROOT), "-B", str(args.build_dir),
                          "-DCMAKE_BUILD_TYPE=Mutation",
                          "-DCMAKE_CXX_FLAGS_MUTATION=-O0 -DNDEBUG",
                          "-DCMAKE_C_FLAGS_MUTATION=-O0 -DNDEBUG",
                          "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache",
                          "-DCMAKE_C_COMPILER_LAUNCHER=ccache"])
        if rc != 0:
            sys.exit("cmake configure failed:\n" + out[-3000:])

    restorer = Restorer(args.build_dir / "mutation-backup")
    restorer.recover()

    pool = build_pool(args.files)
    mutants = sample(pool, args.files, args.count, args.seed)
    if args.ids:
        mutants = [m for m in mutants if m["id"] in set(args.ids)]
    previous = {}
    if args.rerun_survivors:
        old_report = json.loads((Path(args.out) / "report.json").read_text())
        previous = {m["id"]: m for m in old_report["mutants"]}
        missing = [m["id"] for m in mutants if m["id"] not in previous]
        if missing:
            sys.exit(f"report.json is not of this sample (missing {missing[:3]}...)")
    if args.list:
        for m in mutants:
            print(f"{m['id']} {m['file']}:{m['line']} {m['op']} {m['change']}")
        print(f"{len(mutants)} of {len(pool)} candidates", file=sys.stderr)
        return 0

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    equivalents = load_equivalents()
    meta = {"command": "python3 tests/mutation/mutate.py " + " ".join(sys.argv[1:]),
            "seed": args.seed, "count": args.count, "files": args.files, "filter": args.filter,
            "baseline_filter": args.baseline_filter, "timeout": args.timeout,
            "candidates": len(pool), "git_head": run(["git", "rev-parse", "HEAD"])[1].strip()}
    t_start = time.time()
    done = []
    try:
        ok, out = build(args)
        if not ok:
            print(out[-3000:], file=sys.stderr)
            print("the unmutated tree does not build", file=sys.stderr)
            return 2
        for i, m in enumerate(mutants, 1):
            if previous:
                old = previous[m["id"]]
                if old["status"] not in ("survived", "equivalent") or m["id"] in equivalents:
                    # killed stays killed (tests were only added); an equivalent stays equivalent
                    m.update(old)
                    if m["id"] in equivalents:
                        m["status"], m["reason"] = "equivalent", equivalents[m["id"]]
                    done.append(m)
                    continue
                # keep the baseline's verdict; judge the current tests again
                for k in ("status_before", "killer_before"):
                    if k in old:
                        m[k] = "survived" if old[k] == "equivalent" else old[k]
            t0 = time.time()
            restorer.mutate(m["file"], m["line"] - 1, m["_mutated_line"])
            try:
                ok, out = build(args)
                if not ok:
                    m["status"] = "build-failure"
                    if args.baseline_filter:
                        m["status_before"] = "build-failure"
                else:
                    judge_before = args.baseline_filter and (i - 1) % args.baseline_every == 0
                    if judge_before and "status_before" not in m:
                        st, killer, _ = run_tests(args, args.baseline_filter)
                        m["status_before"], m["killer_before"] = st, killer
                        if st != "survived":
                            m["status"], m["killer"] = st, killer
                    if "status" not in m:
                        # The baseline passed: only the tests added since can still kill it.
                        gfilter = args.added_filter if (judge_before and args.added_filter) \
                            else args.filter
                        st, killer, _ = run_tests(args, gfilter)
                        m["status"], m["killer"] = st, killer
                if m["status"] == "survived" and m["id"] in equivalents:
                    m["status"], m["reason"] = "equivalent", equivalents[m["id"]]
                    if m.get("status_before") == "survived":
                        m["status_before"] = "equivalent"
            finally:
                restorer.restore()
            m["seconds"] = round(time.time() - t0, 1)
            done.append(m)
            print(f"[{i}/{len(mutants)}] {m['id']} {m['file']}:{m['line']} {m['op']} "
                  f"{m['status']}{(' by ' + m['killer']) if m.get('killer') else ''} "
                  f"({m['seconds']} s)", flush=True)
            meta["elapsed_s"] = round(time.time() - t_start)
            write_report(args, done, meta)
    except KeyboardInterrupt:
        print("interrupted: source restored; partial report written", file=sys.stderr)
        restorer.restore()
        meta["interrupted"] = True
        meta["elapsed_s"] = round(time.time() - t_start)
        write_report(args, done, meta)
        return 130
    finally:
        restorer.restore()
    # Leave the build directory matching the restored tree.
    build(args)
    meta["elapsed_s"] = round(time.time() - t_start)
    write_report(args, done, meta)
    per, total = rates(done, "status")
    print(f"kill rate {total['kill_rate']}% ({total['killed'] + total['timeout']} of "
          f"{total['killed'] + total['timeout'] + total['survived']}); "
          f"{total['build-failure']} build failures; {total['equivalent']} equivalent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
