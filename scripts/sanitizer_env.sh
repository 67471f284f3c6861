# Sourced: how sanitizer reports end a run. Every report aborts (a failing test); leaks are
# reported at exit (LeakSanitizer works in this environment); stack traces name the source line.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
