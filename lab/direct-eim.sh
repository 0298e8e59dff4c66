#!/usr/bin/env bash
# The direct path, scenario "eim" (see lab/direct.sh).
exec "$(dirname "$0")/direct.sh" eim "$@"
