# Shortens `go test -v` output for a CI log: the test names, results and
# every line a test logs, each with up to 40 of its continuation lines
# (a failure's command output, the tail of a server log), so that a failure
# can be read from the CI log alone.
/^(=== RUN|--- |PASS|FAIL|ok|panic)/ { print; more = 0; next }
/_test\.go:[0-9]+:/ { print; more = 40; next }
/^        / && more > 0 { print; more--; next }
{ more = 0 }
