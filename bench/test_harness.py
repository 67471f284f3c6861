"""Checks the harness's parsing of every output it reads (run by ctest; no timing involved).

The outputs come from the real programs where that is cheap: `subledger gen` and `bill` on a small
ledger (SUBLEDGER_BIN), and recorded lines for db_bench and GNU time.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import server_bench  # noqa: E402

BIN = os.environ.get("SUBLEDGER_BIN", "")


class ParsingTest(unittest.TestCase):
    def test_db_bench_lines(self):
        out = ("fillseq      :       2.345 micros/op 426440 ops/sec 0.234 seconds 100000 operations;"
               "   46.8 MB/s\nreadseq      :       0.135 micros/op 7384615 ops/sec 0.013 seconds "
               "100000 operations;  810.2 MB/s\n")
        self.assertEqual(harness.parse_db_bench(out), {"fillseq": 426440, "readseq": 7384615})
        self.assertEqual(harness.parse_db_bench("nothing here"), {})

    def test_rocksdb_linkage_from_readelf(self):
        shared = (" 0x0000000000000001 (NEEDED)             Shared library: [librocksdb.so.7.8]\n"
                  " 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n")
        static = " 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n"
        self.assertEqual(harness.rocksdb_linkage(shared), "Debian's shared librocksdb")
        self.assertEqual(harness.rocksdb_linkage(static), "static Release build")

    def test_gnu_time_line(self):
        self.assertEqual(harness.parse_time_line("x\n__TIME__ 12.34 56789\n"), (12.34, 56789))
        self.assertEqual(harness.parse_time_line("no time"), (None, None))

    def test_percentile_is_nearest_rank(self):
        values = list(range(1, 101))
        self.assertEqual(harness.percentile(values, 50), 50)
        self.assertEqual(harness.percentile(values, 99), 99)
        self.assertEqual(harness.percentile([7.0], 99), 7.0)
        self.assertEqual(harness.percentile([3, 1, 2], 50), 2)

    def test_markdown_has_a_row_per_figure_and_dashes_for_missing_peers(self):
        figures = {"events": 10, "gen": {"subscriptions": 5},
                   "apply": {"commands_per_second": 1000, "events_per_second": 2000,
                             "peak_rss_kb": 2048},
                   "billing": {"longest_seconds": 0.5, "subscriptions_per_second": 10,
                               "peak_rss_kb": 1024},
                   "replay": {"events_per_second": 3e6, "peak_rss_kb": 4096,
                              "process_seconds": 12.34, "rows_seconds": 5.0},
                   "state_ms": {"p50": 1, "p99": 2}, "explain_ms": {"p50": 3, "p99": 4},
                   "bytes_per_event": 100, "log_customer_ms": {"p50": 5, "p99": 7.25},
                   "small_apply": {"seconds": 0.5, "open_seconds": 0.25},
                   "invoices": {"first_byte_seconds": 0.01, "seconds": 2, "peak_rss_kb": 51200,
                                "bytes": 3e6}}
        table = harness.render_markdown({"scales": [{"subscriptions": 5, "figures": figures}]})
        self.assertIn("| log --customer p50 / p99, ms | 5.0 / 7.2 |", table)
        self.assertIn("| 10-command apply end to end, s | 0.50 |", table)
        self.assertIn("|   of which opening the ledger, s | 0.25 |", table)
        self.assertIn("| invoices: first line / whole, s | 0.01 / 2.00 |", table)
        self.assertIn("| invoices: peak RSS / output | 50 MB / 3 MB |", table)
        self.assertIn("| reconcile: peak RSS / output | - |", table)
        self.assertIn("| apply, events/s (durable, in process) | 2.0k |", table)
        self.assertIn("| replay --verify, events/s | 3.00M |", table)
        self.assertIn("| replay --verify, whole / stored-row check, s | 12.3 / 5.0 |", table)
        self.assertIn("| PostgreSQL batched INSERT, events/s | - |", table)
        self.assertIn("| replay RSS per subscription | 838861 B |", table)


class PaceTest(unittest.TestCase):
    def test_paced_connections_wait_a_seeded_spread_of_the_same_mean(self):
        spread = server_bench.pace(10, spread=True)
        self.assertIn("math.randomseed(7919 + tid)", spread)
        self.assertIn("math.random(5, 15)", spread)  # mean 10 ms: the same rate as in step
        self.assertIn("math.random(10, 30)", server_bench.pace(20, spread=True))
        self.assertEqual(server_bench.pace(10), "function delay() return 10 end")
        self.assertEqual(server_bench.pace(None), "")
        self.assertIn("math.random(5, 15)", server_bench.lua_reads("K", 10, spread=True))
        self.assertIn("return 10 end", server_bench.lua_reads("K", 10))
        self.assertIn("return 20 end", server_bench.lua_writes("K", "b", 20))  # the neighbours
        self.assertNotIn("delay", server_bench.lua_reads("K"))  # saturated: no pause at all


@unittest.skipUnless(BIN, "SUBLEDGER_BIN not set")
class OwnOutputsTest(unittest.TestCase):
    def test_gen_split_apply_bill_round_trip(self):
        with tempfile.TemporaryDirectory() as tmp:
            commands = os.path.join(tmp, "c.jsonl")
            gen = harness.run_step([BIN, "gen", "--subscriptions", "200", "--seed", "5",
                                    "--months", "3", "-o", commands])
            stats = harness.parse_gen_stats(gen.stderr)
            self.assertEqual(stats["subscriptions"], 200)
            self.assertEqual(stats["billing_runs"], 3)
            chunks = harness.split_billing(commands, tmp)
            self.assertEqual([c[1] for c in chunks if c[1]], ["2025-01-31", "2025-02-28", "2025-03-31"])
            lines = sum(sum(1 for _ in open(c[0])) for c in chunks)
            self.assertEqual(lines + 3, stats["commands"], "every command is in one chunk")
            db = os.path.join(tmp, "db")
            results = os.path.join(tmp, "r.jsonl")
            applied = harness.run_step([BIN, "apply", "-v", "--db", db, chunks[0][0]],
                                       stdout_path=results)
            self.assertEqual(harness.count_rejected(results), 0)
            seq = harness.last_seq_of_results(results)
            self.assertGreater(seq, 200)
            commands, events, seconds, opening = harness.parse_apply_speed(applied.stderr)
            self.assertEqual(commands, sum(1 for _ in open(chunks[0][0])))
            self.assertEqual(events, seq)
            self.assertGreaterEqual(opening, 0)
            bill = harness.run_step([BIN, "bill", "-v", "--db", db, "--through", chunks[0][1],
                                     "--request-id", chunks[0][2]])
            subs, seconds = harness.parse_bill_speed(bill.stderr)
            self.assertIsNotNone(harness.parse_open_seconds(bill.stderr))
            self.assertTrue(0 < subs <= 200, subs)  # those created by the first month end
            self.assertGreaterEqual(seconds, 0)
            summary = json.loads(bill.stdout.strip().splitlines()[-1])
            self.assertGreater(summary["invoices_issued"], 0)
            listing = harness.first_line_and_rss([BIN, "invoices", "--db", db])
            self.assertEqual(listing["bytes"], len(harness.run_step(
                [BIN, "invoices", "--db", db]).stdout.encode()))
            self.assertGreater(listing["peak_rss_kb"], 0)
            self.assertLessEqual(listing["first_byte_seconds"], listing["seconds"])
            small = os.path.join(tmp, "small.jsonl")
            harness.write_small_apply(os.path.join(tmp, "c.jsonl"), small, "t")
            small_results = os.path.join(tmp, "small.results")
            s = harness.run_step([BIN, "apply", "-v", "--db", db, small], stdout_path=small_results)
            self.assertEqual(harness.count_rejected(small_results), 0)
            self.assertEqual(sum(1 for _ in open(small_results)), 10)
            self.assertIsNotNone(harness.parse_open_seconds(s.stderr))
            tsv, n, size = harness.export_events(BIN, db, tmp)
            self.assertEqual(n, seq + summary["invoices_issued"] + summary["transitions"] + 1 + 10)
            self.assertGreater(size, 32)


if __name__ == "__main__":
    unittest.main()
