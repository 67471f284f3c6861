#!/usr/bin/env python3
"""Shell completion and the man page's COMMANDS section, generated from the binary's own help.

Run at build time (packaging/CMakeLists.txt) against the `subledger` just built, so what a shell
completes and what the man page lists are what `--help` says, and cannot drift from it:

    cli_docs.py BINARY --bash OUT --zsh OUT --man-include OUT

The help is CLI11's: a description, `Usage:`, then sections headed by a line ending in ':'
(`Positionals:`, `Options:`, `Subcommands:`; any other section, such as examples or exit codes, is
kept for the man page but not parsed). An option's entry starts with two spaces and `-`; its names
are the comma-separated first word; a following upper-case word (`TEXT`, `UINT:INT in [1 - 64]`,
`TEXT:{a,b}`) says it takes a value, and `{a,b}` lists the values it accepts.
Standard library only.
"""

import argparse
import os
import re
import subprocess
import sys

SECTION = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
ENTRY = re.compile(r"^  (\S.*)$")
CONTINUATION = re.compile(r"^ {3,}(\S.*)$")
NOT_A_TYPE = {"REQUIRED", "Excludes:", "Needs:"}


class Command:
    def __init__(self, path, description):
        self.path = path  # ["keys", "add"]; [] for the program itself
        self.description = description
        self.usage = ""
        self.options = []  # dicts: names, value (bool), choices, help
        self.positionals = []  # dicts: name, help
        self.subcommands = []  # Command
        self.other_sections = []  # (title, [lines]) not parsed: examples, exit codes, ...


def run_help(binary, path):
    # The program is run by its name so that `Usage:` says `subledger`, not the build path.
    env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(binary)) + os.pathsep + os.environ.get("PATH", ""),
               NO_COLOR="1", COLUMNS="100")
    name = os.path.basename(binary)
    done = subprocess.run([name, *path, "--help"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit(f"cli_docs: `{name} {' '.join(path)} --help` failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def split_entry(text):
    """'--partner TEXT Excludes: --operator   the partner' -> ('--partner TEXT Excludes: --operator', 'the partner')"""
    parts = re.split(r"\s{2,}", text.strip(), maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def parse_option(head, help_text):
    words = head.split()
    names = [n for n in words[0].split(",") if n.startswith("-")]
    value = len(words) > 1 and words[1] not in NOT_A_TYPE and re.match(r"^[A-Z]", words[1]) is not None
    choices = []
    # What the value is: TEXT may be a file or a directory; a number has nothing to complete.
    kind = "text" if value and words[1].startswith("TEXT") else "number" if value else ""
    if value:
        m = re.search(r"\{([^}]*)\}", words[1])
        if m:
            choices = [c for c in m.group(1).split(",") if c]
    return {"names": names, "value": value, "kind": kind, "choices": choices, "help": help_text.strip()}


def parse(binary, path, description=""):
    text = run_help(binary, path)
    lines = text.splitlines()
    cmd = Command(path, description)
    section = None
    entries = []  # (section, [head, help]) in order, continuation lines appended to help
    for i, line in enumerate(lines):
        if line.startswith("Usage:"):
            cmd.usage = line[len("Usage:"):].strip()
            continue
        if not cmd.description and i == 0 and line.strip():
            cmd.description = line.strip()
            continue
        m = SECTION.match(line)
        if m:
            section = m.group(1).strip().lower()
            if section not in ("options", "positionals", "subcommands"):
                cmd.other_sections.append((m.group(1).strip(), []))
            continue
        if section is None:
            continue
        if section not in ("options", "positionals", "subcommands"):
            cmd.other_sections[-1][1].append(line)
            continue
        c = CONTINUATION.match(line)
        if c and entries and entries[-1][0] == section:
            entries[-1][1][1] = (entries[-1][1][1] + " " + c.group(1)).strip()
            continue
        e = ENTRY.match(line)
        if e:
            head, help_text = split_entry(e.group(1))
            entries.append((section, [head, help_text]))
    for section, (head, help_text) in entries:
        if section == "options" and head.startswith("-"):
            cmd.options.append(parse_option(head, help_text))
        elif section == "positionals":
            cmd.positionals.append({"name": head.split()[0], "help": help_text})
        elif section == "subcommands":
            cmd.subcommands.append(parse(binary, path + [head.split()[0]], help_text))
    for title, body in cmd.other_sections:
        while body and not body[-1].strip():
            body.pop()
    return cmd


def walk(cmd):
    yield cmd
    for sub in cmd.subcommands:
        yield from walk(sub)


# ---- bash -----------------------------------------------------------------------------------

def bash_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def bash(root, prog):
    out = [f"# bash completion for {prog}: generated from `{prog} --help` by packaging/cli_docs.py",
           "# at build time; do not edit (rebuild instead).", ""]
    tables = {"subs": [], "opts": [], "valued": [], "choices": []}
    for cmd in walk(root):
        key = bash_quote(" ".join([prog] + cmd.path))  # bash refuses an empty key
        tables["subs"].append(f"[{key}]={bash_quote(' '.join(s.path[-1] for s in cmd.subcommands))}")
        tables["opts"].append(f"[{key}]={bash_quote(' '.join(n for o in cmd.options for n in o['names']))}")
        tables["valued"].append(
            f"[{key}]={bash_quote(' ' + ' '.join(n for o in cmd.options if o['value'] for n in o['names']) + ' ')}")
        for o in cmd.options:
            if o["choices"]:
                for n in o["names"]:
                    tables["choices"].append(
                        f"[{bash_quote(' '.join([prog] + cmd.path + [n]))}]={bash_quote(' '.join(o['choices']))}")
    for name, entries in tables.items():
        out.append(f"declare -gA _{prog}_{name}=(")
        out.extend("  " + e for e in entries)
        out.append(")")
    out.append(f"""
_{prog}() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  local path={prog} word i
  # The subcommand path so far, skipping options and the values of those that take one.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${{COMP_WORDS[i]}}
    if [[ $word == -* ]]; then
      [[ ${{_{prog}_valued[$path]}} == *" $word "* ]] && ((i++))
    elif [[ " ${{_{prog}_subs[$path]}} " == *" $word "* ]]; then
      path="$path $word"
    fi
  done
  if [[ $prev == -* && ${{_{prog}_valued[$path]}} == *" $prev "* ]]; then
    local key="$path $prev"
    if [[ -n ${{_{prog}_choices[$key]}} ]]; then
      COMPREPLY=($(compgen -W "${{_{prog}_choices[$key]}}" -- "$cur"))
    else
      compopt -o default 2>/dev/null; COMPREPLY=()
    fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "${{_{prog}_opts[$path]}}" -- "$cur"))
  elif [[ -n ${{_{prog}_subs[$path]}} ]]; then
    COMPREPLY=($(compgen -W "${{_{prog}_subs[$path]}}" -- "$cur"))
  else
    compopt -o default 2>/dev/null; COMPREPLY=()
  fi
  return 0
}}
complete -F _{prog} {prog}""")
    return "\n".join(out) + "\n"


# ---- zsh ------------------------------------------------------------------------------------

def zsh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def zsh_help(s):
    return s.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def zsh_function(cmd, prog):
    return "_" + "_".join([prog] + [re.sub(r"\W", "_", p) for p in cmd.path])


def zsh(root, prog):
    out = [f"#compdef {prog}",
           f"# zsh completion for {prog}: generated from `{prog} --help` by packaging/cli_docs.py",
           "# at build time; do not edit (rebuild instead).", ""]
    for cmd in reversed(list(walk(root))):
        specs = []
        for o in cmd.options:
            names = o["names"]
            help_text = zsh_help(o["help"] or names[-1])
            exclusive = "(" + " ".join(names) + ")" if len(names) > 1 else ""
            name_part = "{" + ",".join(names) + "}" if len(names) > 1 else names[0]
            action = ""
            if o["value"]:
                what = "value"
                if o["choices"]:
                    action = f":{what}:({' '.join(o['choices'])})"
                elif o["kind"] == "text":
                    action = f":{what}:_files"
                else:
                    action = f":{what}: "
            if len(names) > 1:
                specs.append(zsh_quote(exclusive) + name_part + zsh_quote(f"[{help_text}]{action}"))
            else:
                specs.append(zsh_quote(f"{name_part}[{help_text}]{action}"))
        fn = zsh_function(cmd, prog)
        out.append(f"{fn}() {{")
        if cmd.subcommands:
            out.append("  local curcontext=$curcontext state line ret=1")
            out.append("  local -a commands")
            out.append("  commands=(")
            for s in cmd.subcommands:
                out.append("    " + zsh_quote(f"{s.path[-1]}:{s.description}"))
            out.append("  )")
            out.append("  _arguments -C \\")
            for spec in specs:
                out.append(f"    {spec} \\")
            out.append("    '1: :->command' '*:: :->argument' && ret=0")
            out.append("  case $state in")
            out.append(f"    command) _describe -t commands {zsh_quote(' '.join([prog] + cmd.path) + ' command')} commands && ret=0 ;;")
            out.append("    argument)")
            out.append("      case $line[1] in")
            for s in cmd.subcommands:
                out.append(f"        {s.path[-1]}) {zsh_function(s, prog)} && ret=0 ;;")
            out.append("      esac ;;")
            out.append("  esac")
            out.append("  return ret")
        else:
            for p in cmd.positionals:
                specs.append(zsh_quote(f"*:{p['name']}:_files"))
            out.append("  _arguments \\")
            out.append("\n".join(f"    {spec} \\" for spec in specs).rstrip(" \\"))
        out.append("}")
        out.append("")
    out.append(f'if [[ $funcstack[1] == _{prog} ]]; then')
    out.append(f'  _{prog} "$@"')
    out.append("else")
    out.append(f"  compdef _{prog} {prog}")
    out.append("fi")
    return "\n".join(out) + "\n"


# ---- man page: the COMMANDS section for help2man --include -----------------------------------

def roff(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + s if s.startswith((".", "'")) else s


def man_include(root, prog):
    out = ["[COMMANDS]",
           f"Each command has its own \\fB\\-\\-help\\fR; \\fB{prog} \\fIcommand\\fB \\-\\-help\\fR prints what follows."]
    for cmd in walk(root):
        if not cmd.path:
            continue
        out.append(f'.SS "{prog} {" ".join(cmd.path)}"')
        out.append(roff(cmd.description))
        if cmd.usage:
            out.append(".PP")
            out.append(".B Usage:")
            out.append(roff(cmd.usage))
        for p in cmd.positionals:
            out.append(".TP")
            out.append(f"\\fI{roff(p['name'])}\\fR")
            out.append(roff(p["help"]) if p["help"] else "")
        for o in cmd.options:
            if "--help" in o["names"]:
                continue
            out.append(".TP")
            names = ", ".join(f"\\fB{roff(n)}\\fR" for n in o["names"])
            out.append(names + (" \\fIVALUE\\fR" if o["value"] else ""))
            help_text = o["help"]
            if o["choices"]:
                help_text = (help_text + " " if help_text else "") + "(one of " + ", ".join(o["choices"]) + ")"
            out.append(roff(help_text) if help_text else "")
        if cmd.subcommands:
            out.append(".PP")
            out.append("Subcommands: " + ", ".join(f"\\fB{s.path[-1]}\\fR" for s in cmd.subcommands) + ".")
        for title, body in cmd.other_sections:
            out.append(".PP")
            out.append(f".B {roff(title)}")
            out.append(".nf")
            out.extend(roff(l) for l in body)
            out.append(".fi")
    return "\n".join(l for l in out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--bash", required=True)
    ap.add_argument("--zsh", required=True)
    ap.add_argument("--man-include", required=True)
    args = ap.parse_args()
    prog = os.path.basename(args.binary)
    root = parse(args.binary, [])
    if not root.subcommands:
        sys.exit(f"cli_docs: no subcommands found in `{prog} --help`; has its format changed?")
    for path, text in ((args.bash, bash(root, prog)), (args.zsh, zsh(root, prog)),
                       (args.man_include, man_include(root, prog))):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
