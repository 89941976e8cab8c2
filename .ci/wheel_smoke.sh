#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it (not editable) into a fresh venv, and run the newcomer's
# commands from a folder outside the repository. Run alone with `.ci/wheel_smoke.sh` (about a minute on 2 cores).
#
# Offline on purpose, as CI and this machine are: the wheel is built the way `pip install .` builds it (pip's
# isolated build environment, setuptools from the configured index, as `make` already needs), then installed with
# --no-deps --no-index. Its third-party dependencies (torch & co., gigabytes) are not reinstalled: a .pth file in the
# fresh venv appends the repository venv's site-packages to sys.path *after* the wheel is installed. A path in a .pth
# file is only appended, its own .pth files are not run, so the repository's editable install (its finder hook)
# stays off and every `restyle` import resolves to the wheel's copy; the script checks that it does.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
make --quiet .venv/.installed
tmp=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "wheel smoke: FAILED: $*" >&2; [ -f "$tmp/serve.log" ] && tail -20 "$tmp/serve.log" >&2; exit 1; }
step() { echo "wheel smoke: $*"; }

step "building the wheel"
.venv/bin/python -m pip wheel --quiet --no-deps -w "$tmp/dist" . 2>"$tmp/build.log" || { cat "$tmp/build.log"; fail "pip wheel"; }
wheel=$(ls "$tmp"/dist/restyle-*.whl)

step "installing $(basename "$wheel") into a fresh venv"
.venv/bin/python -m venv "$tmp/venv"
venv_python="$tmp/venv/bin/python"
"$venv_python" -m pip install --quiet --no-deps --no-index "$wheel" || fail "pip install of the wheel"
site=$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
deps=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" > "$site/restyle-ci-dependencies.pth"

step "checking that only the 'restyle' import package is installed"
dist_info=$(ls -d "$site"/restyle-*.dist-info)
[ "$(cat "$dist_info/top_level.txt")" = "restyle" ] || fail "top_level.txt lists $(tr '\n' ' ' < "$dist_info/top_level.txt")"
others=$(cut -d, -f1 "$dist_info/RECORD" | cut -d/ -f1 | sort -u | grep -v -x -e restyle -e "$(basename "$dist_info")" -e .. || true)
[ -z "$others" ] || fail "the wheel installs other top-level names: $others"
for name in engine bridge presets daw_templates; do
  [ ! -e "$site/$name" ] || fail "site-packages holds a top-level '$name'"
done

work="$tmp/work"  # outside the repository; HOME and the style library are throwaway folders too
mkdir -p "$work" "$tmp/home"
cd "$work"
export HOME="$tmp/home" RESTYLE_HOME="$tmp/restyle-home" HF_HUB_OFFLINE=1
restyle="$tmp/venv/bin/restyle"

step "restyle --version"
version=$("$restyle" --version) || fail "restyle --version"
[ "$version" = "restyle $(basename "$wheel" | cut -d- -f2)" ] || fail "restyle --version printed '$version'"
where=$("$venv_python" -c 'import restyle.engine, restyle.bridge, restyle.presets; print(restyle.engine.__file__)')
case "$where" in "$site"/*) ;; *) fail "restyle.engine was imported from $where, not from the wheel" ;; esac
case "$where" in "$repo"/*) fail "restyle.engine was imported from the repository" ;; esac
step "restyle.engine imported from $where"

step "restyle demo"
"$restyle" demo --out demo || fail "restyle demo"
for file in demo/*.wav demo/*.png; do [ -s "$file" ] || fail "restyle demo wrote no $file"; done

step "restyle serve --model mini, then send and status"
port=$("$venv_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$restyle" serve --model mini --style accordion --port "$port" >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 240); do
  grep -q "listening" "$tmp/serve.log" && break
  kill -0 "$server" 2>/dev/null || fail "restyle serve exited"
  sleep 0.5
done
grep -q "listening" "$tmp/serve.log" || fail "restyle serve did not start listening within 2 minutes"
content=$(ls demo/*.wav | head -1)
result=$("$restyle" send "$work/$content" --port "$port" --steps 10 --timeout 300) || fail "restyle send"
[ -s "$result" ] || fail "restyle send printed '$result', which is no file"
status=$("$restyle" status --port "$port") || fail "restyle status"
grep -q "accordion" <<<"$status" || fail "restyle status does not list the accordion style: $status"
kill "$server"
wait "$server" || fail "restyle serve did not stop cleanly on SIGTERM"
server=""

step "restyle daw install reaper --dry-run"
out=$("$restyle" daw install reaper --dry-run) || fail "restyle daw install reaper --dry-run"
grep -q "^would copy: $HOME/.config/REAPER/Scripts/Restyle/" <<<"$out" || fail "daw install printed: $out"
[ ! -e "$HOME/.config/REAPER" ] || fail "a dry run wrote files"
"$restyle" daw path >/dev/null || fail "restyle daw path"

step "passed"
