// The CLI's own mistakes, answered in its words: one line on stderr beginning `subledger:`, what
// was wrong, what would be accepted, and "did you mean" for a near miss (edit distance).
// Main thread only.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace subledger::cli {

// The candidate nearest `word` by edit distance, or "" when none is near enough to be a typo.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);

// Looks at the arguments before CLI11 does: a missing or unknown command, or an option that the
// command does not have, is reported (exit 2). Returns 0 when CLI11 may parse them.
int check_arguments(CLI::App& app, const std::vector<std::string>& args);

// The subcommand `args` (argv after the program's name) names: the word after the leading
// --db DIR (or --db=DIR). Empty when there is none, or when another option comes first (help,
// --version, or one check_arguments refuses).
std::string_view command_word(const std::vector<std::string>& args);

// A parse error of CLI11, said as one line naming the command and where its help is (exit 2).
int report_parse_error(CLI::App& app, const CLI::ParseError& error);

}  // namespace subledger::cli
