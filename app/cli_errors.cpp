#include "app/cli_errors.h"

#include <algorithm>
#include <numeric>

#include "app/subcommands.h"

namespace subledger::cli {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::vector<CLI::App*> commands_of(CLI::App& app) {
  return app.get_subcommands([](CLI::App*) { return true; });
}

std::vector<std::string> command_names(CLI::App& app) {
  std::vector<std::string> names;
  for (CLI::App* sub : commands_of(app)) names.push_back(sub->get_name());
  return names;
}

CLI::App* command_named(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : commands_of(app))
    if (sub->get_name() == name) return sub;
  return nullptr;
}

std::vector<std::string> option_names(CLI::App& command) {
  std::vector<std::string> names;
  for (const CLI::Option* opt : command.get_options()) {
    for (const auto& n : opt->get_lnames()) names.push_back("--" + n);
    for (const auto& n : opt->get_snames()) names.push_back("-" + n);
  }
  return names;
}

// "invoices" or "keys add": how the help of `command` is asked for.
std::string path_of(const CLI::App* command) {
  std::string path;
  for (const CLI::App* a = command; a && a->get_parent(); a = a->get_parent())
    path = a->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

int unknown(const std::string& what, const std::string& word, const std::vector<std::string>& known,
            const std::string& help) {
  std::string hint = nearest(word, known);
  return fail("unknown " + what + " '" + word + "'" +
              (hint.empty() ? "" : "; did you mean '" + hint + "'?") + " (" + help + ")");
}

// The options of `command` in args[i..]: an unknown one is reported. Values are skipped.
int check_options(CLI::App& command, const std::vector<std::string>& args, size_t i) {
  const std::string help = "subledger " + path_of(&command) + " --help lists its options";
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") return 0;
    if (arg.size() < 2 || arg[0] != '-' || (arg[1] >= '0' && arg[1] <= '9')) {
      if (CLI::App* sub = command_named(command, arg)) return check_options(*sub, args, i + 1);
      continue;
    }
    const std::string name = arg.substr(0, arg.find('='));
    if (name == "-h" || name == "--help") return 0;
    const CLI::Option* opt = command.get_option_no_throw(name);
    if (!opt && arg[1] != '-') {  // -qv: short flags together
      bool all_flags = std::all_of(arg.begin() + 1, arg.end(), [&](char c) {
        const CLI::Option* o = command.get_option_no_throw(std::string("-") + c);
        return o && o->get_type_size_max() == 0;
      });
      if (all_flags) continue;
    }
    if (!opt) return unknown("option of " + path_of(&command), name, option_names(command), help);
    if (opt->get_type_size_max() > 0 && name.size() == arg.size()) ++i;  // its value
  }
  return 0;
}

bool is_option(const std::string& arg) { return arg.size() > 1 && arg[0] == '-'; }

// Where the leading --db DIR / --db=DIR of `args` end: the position of the first other word (or
// args.size()); npos when the line ends with --db and no directory after it.
size_t after_db_options(const std::vector<std::string>& args) {
  size_t i = 0;
  while (i < args.size()) {
    if (args[i] == "--db") {
      if (i + 1 == args.size()) return std::string::npos;
      i += 2;
    } else if (args[i].rfind("--db=", 0) == 0) {
      ++i;
    } else {
      break;
    }
  }
  return i;
}

}  // namespace

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    // A prefix ("invoice" of "invoices") is a near miss however long the rest.
    if (c.rfind(word, 0) == 0 && word.size() >= 3) d = std::min<size_t>(d, 1);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

std::string_view command_word(const std::vector<std::string>& args) {
  const size_t i = after_db_options(args);
  if (i == std::string::npos || i == args.size() || is_option(args[i])) return {};
  return args[i];
}

int check_arguments(CLI::App& app, const std::vector<std::string>& args) {
  const size_t i = after_db_options(args);
  if (i == std::string::npos)
    return fail("--db needs the ledger's directory after it: subledger --db DIR COMMAND");
  if (i < args.size() && is_option(args[i])) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h" || arg == "--version") return 0;  // CLI11 answers
    return unknown("option", arg.substr(0, arg.find('=')), {"--db", "--help", "--version"},
                   "options of a command come after it: subledger COMMAND --help");
  }
  const std::string help = "subledger --help describes each";
  if (i == args.size())
    return fail("a command is required: " + joined(command_names(app)) + " (" + help + ")");
  CLI::App* command = command_named(app, args[i]);
  if (!command) return unknown("command", args[i], command_names(app), help);
  return check_options(*command, args, i + 1);
}

int report_parse_error(CLI::App& app, const CLI::ParseError& error) {
  const CLI::App* command = &app;
  while (!command->get_subcommands().empty()) command = command->get_subcommands().front();
  const std::string path = path_of(command);
  std::string what = error.what();
  if (!what.empty() && what.back() == '\n') what.pop_back();
  return fail((path.empty() ? "" : path + ": ") + what + " (subledger " +
              (path.empty() ? "" : path + " ") + "--help describes the options)");
}

}  // namespace subledger::cli
