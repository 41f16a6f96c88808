#!/usr/bin/env bash
# The optional Rasa NLU backend: a Rasa 3.6 server in its own Python 3.10 venv, trained on
# the same dialogue/classifiers/data/nlu.yml as the embedded classifier. tsur talks to it
# over HTTP only (dialogue/classifiers/rasa.py); nothing of Rasa is imported by tsur.
#
#   tools/rasa.sh setup                               rasa/.venv from rasa/requirements.txt
#   tools/rasa.sh train [--config F] [--out DIR] [--data NLU.yml] [--name NAME]
#   tools/rasa.sh serve [--model DIR|FILE] [--port N]
#
# Environment: TSUR_RASA_PYTHON (a Python 3.10 interpreter), TSUR_RASA_VENV (default
# rasa/.venv). Telemetry is always off; the server listens on 127.0.0.1 only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RASA_DIR=$ROOT/rasa
VENV=${TSUR_RASA_VENV:-$RASA_DIR/.venv}
REQUIREMENTS=$RASA_DIR/requirements.txt
STAMP=$VENV/.requirements-sha256
DEFAULT_DATA=$ROOT/dialogue/classifiers/data/nlu.yml
DEFAULT_OUT=$ROOT/var/rasa/models
#: DIET pads every batch to its longest text: long appeals blow up memory and time.
MAX_WORDS=256

export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export SQLALCHEMY_SILENCE_UBER_WARNING=1
# Rasa 3.6 and its pins emit pages of DeprecationWarnings on every start.
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}

die() { echo "tools/rasa.sh: $*" >&2; exit 1; }

usage() { sed -n '5,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

find_python310() {
    local candidate
    for candidate in "${TSUR_RASA_PYTHON:-}" "$(command -v python3.10 || true)" \
            "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python \
            /root/.pyenv/versions/3.10.*/bin/python; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null
        then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

requirements_hash() { sha256sum "$REQUIREMENTS" | cut -d' ' -f1; }

cmd_setup() {
    [ $# -eq 0 ] || usage
    # One setup at a time (parallel test runs share the venv): lock the rasa/ directory.
    exec 9<"$RASA_DIR"
    flock 9
    local want
    want=$(requirements_hash)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/rasa" ]; then
        echo "rasa venv up to date: $VENV"
        return 0
    fi
    local python
    python=$(find_python310) || die "Rasa 3.6 needs Python 3.10: none found (set TSUR_RASA_PYTHON)"
    echo "creating $VENV with $python (a few minutes, about 2.5 GB)"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    # The lock is complete, so --no-deps: rasa's own tensorflow pin is replaced by
    # tensorflow-cpu (see rasa/requirements.txt).
    local log
    log=$(mktemp)
    # pip names every file:// index that lacks a package: noise, filtered out.
    if ! "$VENV/bin/python" -m pip install --quiet --no-deps --no-input -r "$REQUIREMENTS" \
            >"$log" 2>&1; then
        grep -v "^WARNING: Location 'file:" "$log" >&2 || true
        rm -f "$log"
        die "pip could not install $REQUIREMENTS"
    fi
    grep -v "^WARNING: Location 'file:" "$log" || true
    rm -f "$log"
    "$VENV/bin/python" -c 'import rasa, tensorflow, rasa.nlu.classifiers.diet_classifier' \
        || die "the rasa venv does not import; see the errors above"
    echo "$want" > "$STAMP"
    echo "rasa venv ready: $("$VENV/bin/rasa" --version 2>/dev/null | head -1 | tr -s ' ')"
}

require_venv() {
    [ -x "$VENV/bin/rasa" ] || die "no rasa venv at $VENV: run 'tools/rasa.sh setup' first"
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(requirements_hash)" ] \
        || die "the rasa venv is outdated: run 'tools/rasa.sh setup'"
}

# Copies a Rasa NLU YAML file, cutting every list item ("    - text") to MAX_WORDS words.
# Line-based so that the file's other blocks (lookup tables, synonyms) pass unchanged.
cut_examples() {
    "$VENV/bin/python" - "$1" "$2" "$MAX_WORDS" <<'PY'
import re, sys
src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
item = re.compile(r"^(\s+- )(.*)$")
cut = 0
with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
    for line in fin:
        m = item.match(line.rstrip("\n"))
        if m and len(m.group(2).split()) > limit:
            line = m.group(1) + " ".join(m.group(2).split()[:limit]) + "\n"
            cut += 1
        fout.write(line)
if cut:
    print(f"cut {cut} examples to {limit} words", file=sys.stderr)
PY
}

cmd_train() {
    local config=$RASA_DIR/config.yml out=$DEFAULT_OUT data=$DEFAULT_DATA name=tsur-nlu
    while [ $# -gt 0 ]; do
        case $1 in
            --config) config=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --data) data=$2; shift 2 ;;
            --name) name=$2; shift 2 ;;
            *) usage ;;
        esac
    done
    require_venv
    config=$(realpath -m "$config") out=$(realpath -m "$out") data=$(realpath -m "$data")
    [ -f "$config" ] || die "no config $config"
    [ -f "$data" ] || die "no training data $data"
    # global, not local: the EXIT trap runs after this function has returned
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cut_examples "$data" "$work/nlu.yml"
    mkdir -p "$out"
    # --fixed-model-name: the model is $out/$name.tar.gz, so serve finds it by name.
    (cd "$work" && "$VENV/bin/rasa" train nlu --config "$config" --nlu "$work/nlu.yml" \
        --out "$out" --fixed-model-name "$name")
    [ -f "$out/$name.tar.gz" ] || die "training wrote no $out/$name.tar.gz"
    echo "model: $out/$name.tar.gz"
}

cmd_serve() {
    local model=$DEFAULT_OUT/tsur-nlu.tar.gz port=5005
    while [ $# -gt 0 ]; do
        case $1 in
            --model) model=$2; shift 2 ;;
            --port) port=$2; shift 2 ;;
            *) usage ;;
        esac
    done
    require_venv
    [ -e "$model" ] || die "no model at $model: run 'tools/rasa.sh train' first"
    model=$(realpath "$model")
    # Run from the model's parent directory: rasa reads endpoints.yml and credentials.yml
    # from the working directory when present, and there are none there.
    cd "$(dirname "$model")"
    exec "$VENV/bin/rasa" run --enable-api -m "$model" -p "$port" -i 127.0.0.1
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    setup) cmd_setup "$@" ;;
    train) cmd_train "$@" ;;
    serve) cmd_serve "$@" ;;
    *) usage ;;
esac
