#!/bin/sh
# kubox installer. Not written yet: until it is, build kubox from source
# (`make build`) and run `bin/kubox server` as root.
set -e
echo "install.sh: the kubox installer is not available yet; build from source with 'make build'." >&2
exit 1
