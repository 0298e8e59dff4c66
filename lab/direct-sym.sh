#!/usr/bin/env bash
# The direct path, scenario "sym" (see lab/direct.sh).
exec "$(dirname "$0")/direct.sh" sym "$@"
