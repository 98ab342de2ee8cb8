#!/usr/bin/env bash
# Installs the coding agents the end-to-end tests drive (tests/agents) at pinned versions, with npm, into a private
# folder (POOLGATE_AGENTS_DIR, default .cache/agents in the repository); prints the folder of their executables.
#
# Idempotent and quick when both are installed at the pinned versions (no npm call then). Needs Node 20+ and npm.
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.332"
CODEX_VERSION="0.171.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${POOLGATE_AGENTS_DIR:-$ROOT/.cache/agents}"

say() { echo "install-agents: $*" >&2; }

installed() {  # installed <package> <version>: the package.json under node_modules names that version
    local file="$DIR/node_modules/$1/package.json"
    [ -f "$file" ] && grep -q "\"version\": *\"$2\"" "$file"
}

if installed @anthropic-ai/claude-code "$CLAUDE_CODE_VERSION" && installed @openai/codex "$CODEX_VERSION" \
        && [ -x "$DIR/node_modules/.bin/claude" ] && [ -x "$DIR/node_modules/.bin/codex" ]; then
    echo "$DIR/node_modules/.bin"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    say "npm and node are needed to install Claude Code and Codex CLI for the coding-agent tests:"
    say "install Node 20 or later with npm (e.g. 'apt-get install nodejs npm', or from https://nodejs.org)"
    exit 1
fi
say "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION and @openai/codex@$CODEX_VERSION into $DIR"
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"private": true}' > "$DIR/package.json"
npm install --prefix "$DIR" --no-audit --no-fund --no-update-notifier --loglevel=error --save-exact \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION" >&2
if ! installed @anthropic-ai/claude-code "$CLAUDE_CODE_VERSION" || ! installed @openai/codex "$CODEX_VERSION"; then
    say "npm finished but $DIR/node_modules does not hold the pinned versions"
    exit 1
fi
echo "$DIR/node_modules/.bin"
