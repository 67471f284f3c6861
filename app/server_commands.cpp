#include "app/server_commands.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>

#include "app/subcommands.h"
#include "ledger/ledger.h"
#include "ledger/queries.h"
#include "server/http_server.h"
#include "server/keys.h"
#include "server/throttle.h"

namespace subledger::cli {

void add_server_commands(CLI::App& app, std::string& db, int& status) {
  auto* keys = app.add_subcommand("keys", "API keys of the server: add, list, revoke");
  keys->require_subcommand(1);
  static std::string file, partner, key_id;
  static bool operator_key = false;

  auto* add = keys->add_subcommand("add", "create a key; prints it once, alone on stdout");
  add->add_option("--file", file, "the keys file (created with mode 0600)")->required();
  auto* partner_opt = add->add_option("--partner", partner, "the partner the key acts for");
  auto* operator_opt = add->add_flag("--operator", operator_key, "a key for the operator routes");
  partner_opt->excludes(operator_opt);
  auto* add_db = add->add_option(
      "--db", db, "the ledger the partner must be registered in (checked when given)");
  add->callback([&status, &db, add_db] {
    if (partner.empty() && !operator_key) {
      status = fail("keys add needs --partner P or --operator");
      return;
    }
    // A key for a partner the ledger does not know would authenticate and find nothing: refused
    // when the ledger is named (--db) and readable. Without --db the key is added unchecked (keys
    // are often made before the ledger exists).
    if (!operator_key && add_db->count() > 0) {
      auto store = Ledger::open_rows_for_reading(db);
      if (!store.ok()) {
        status = fail("cannot check --partner " + partner + " against the ledger: " +
                      std::string(store.status().message()));
        return;
      }
      auto state = catalog_only(**store);
      if (!state.ok()) {
        status = fail("cannot check --partner " + partner + " against the ledger: " +
                      std::string(state.status().message()));
        return;
      }
      if (!state->catalog().partner(partner)) {
        status = fail("--partner " + partner + " is not registered in the ledger at " + db +
                      " (register_partner it first): keys are for registered partners");
        return;
      }
    }
    std::string key;
    server::KeyRecord record;
    std::optional<std::string> who;
    if (!operator_key) who = partner;
    if (std::string e = server::add_key(file, who, key, record); !e.empty()) {
      status = fail(e);
      return;
    }
    std::cout << key << std::endl;
    if (!std::cout) status = fail("cannot write standard output");
  });

  auto* list = keys->add_subcommand("list", "key_id, partner_id, created, revoked of every key");
  list->add_option("--file", file, "the keys file")->required();
  list->callback([&status] {
    std::vector<server::KeyRecord> records;
    if (std::string e = server::read_keys(file, records); !e.empty()) {
      status = fail(e);
      return;
    }
    for (auto& r : records) {
      r.sha256_hex.clear();
      std::string line = server::key_record_json(r);
      // The hash stays in the file: listing shows who holds which key, not what could verify it.
      size_t at = line.find(",\"sha256\":\"\"");
      if (at != std::string::npos) line.erase(at, std::string(",\"sha256\":\"\"").size());
      std::cout << line << '\n';
    }
  });

  auto* revoke = keys->add_subcommand("revoke", "revoke KEY_ID (a running server stops taking "
                                                "it within a second)");
  revoke->add_option("--file", file, "the keys file")->required();
  revoke->add_option("key_id", key_id, "the key to revoke")->required();
  revoke->callback([&status] {
    if (std::string e = server::revoke_key(file, key_id); !e.empty()) status = fail(e);
  });

  static server::ServeOptions serve;
  static int verbose = 0, quiet = 0;
  auto* sv = app.add_subcommand("serve", "the ledger as an HTTP/JSON service (SERVER.md)");
  sv->add_option("--db", db, "ledger directory");
  sv->add_option("--keys", serve.keys_file, "the keys file (mode 0600)")->required();
  sv->add_option("--listen", serve.listen, "HOST:PORT (default 127.0.0.1:8080; port 0: any)");
  sv->add_option("--tls-cert", serve.tls_cert, "PEM certificate chain: serve HTTPS only");
  sv->add_option("--tls-key", serve.tls_key, "PEM private key of --tls-cert");
  sv->add_option("--read-rate", serve.read_rate, "reads per second per partner (0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
  sv->add_option("--write-rate", serve.write_rate, "writes per second per partner (0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
  sv->add_option("--customer-rate", serve.customer_rate,
                 "requests per second per partner and customer (0: no limit)")
      ->check(CLI::Range(0.0, 1e9));
  auto* max_connections =
      sv->add_option("--max-connections", serve.max_connections, "open connections at most")
          ->check(CLI::Range(1, 1 << 20));
  sv->add_option("--unauthenticated-timeout", serve.unauthenticated_seconds,
                 "seconds a connection may stay open without sending a key (default 5)")
      ->check(CLI::Range(1, 3600));
  sv->add_option("--threads", serve.threads, "I/O threads")->check(CLI::Range(1, 64));
  sv->add_option("--batch", serve.batch_commands_max, "commands per synced write at most")
      ->check(CLI::Range(1, 1 << 20));
  sv->add_flag("-v,--verbose", verbose, "debug logging");
  sv->add_flag("-q,--quiet", quiet, "warnings only (no access log)");
  sv->callback([&db, &status, max_connections] {
    serve.db = db;
    serve.max_connections_given = max_connections->count() > 0;
    // A bucket holds two seconds' worth and a request needs a whole token: a rate below 0.5 could
    // never serve anything.
    for (auto [name, rate] : {std::pair{"--read-rate", serve.read_rate},
                              std::pair{"--write-rate", serve.write_rate},
                              std::pair{"--customer-rate", serve.customer_rate}}) {
      if (rate > 0 && rate < server::TokenBuckets::kRateMin) {
        status = fail(std::string(name) + " " + std::to_string(rate) +
                      " could never serve a request (a bucket holds two seconds' worth and a "
                      "request takes one token): give 0 (no limit) or at least 0.5");
        return;
      }
    }
    serve.verbosity = quiet ? -1 : verbose ? 1 : 0;
    status = server::serve(serve, std::cout);
  });
}

}  // namespace subledger::cli
