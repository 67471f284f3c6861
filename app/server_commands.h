// The server's subcommands: `keys add|list|revoke` and `serve` (SERVER.md "Running it").
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace subledger::cli {

// Registers them on `app`; `db` is the shared --db value, `status` receives the exit status.
void add_server_commands(CLI::App& app, std::string& db, int& status);

}  // namespace subledger::cli
