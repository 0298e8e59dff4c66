#!/usr/bin/env bash
# The direct path, scenario "change" (see lab/direct.sh).
exec "$(dirname "$0")/direct.sh" change "$@"
