#!/usr/bin/env bash
# The direct path, scenario "public" (see lab/direct.sh).
exec "$(dirname "$0")/direct.sh" public "$@"
