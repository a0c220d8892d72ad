#!/usr/bin/env bash
# Install what is missing for `make run` (runtime) or `make test` (runtime + test peers).
# Idempotent and quick when everything is present: Debian packages are checked with dpkg,
# the virtualenv is rebuilt only when the pinned requirements change.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-run}
PYTHON=${PYTHON:-python3}
VENV=.venv

RUN_PACKAGES=(slapd ldap-utils)
# openssh-server and snmpd are the real peers of the monitoring probe tests (tests/peers/sshd.py,
# snmpd.py); the simulated switches that `make run` also starts are pure Python (fake-switches).
TEST_PACKAGES=(chromium postgresql openssh-server snmpd redis-server)

missing_packages() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "install: need root (or sudo) to run: $*" >&2; exit 1; fi
}

packages=("${RUN_PACKAGES[@]}")
[ "$MODE" = test ] && packages+=("${TEST_PACKAGES[@]}")
# Debian's python3 needs python3-venv for `python -m venv` (ensurepip).
"$PYTHON" -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
mapfile -t wanted < <(missing_packages "${packages[@]}")
if [ "${#wanted[@]}" -gt 0 ]; then
  echo "install: Debian packages: ${wanted[*]}"
  # Answer slapd's questions up front: itops builds its own slapd configuration under var/.
  echo 'slapd slapd/no_configuration boolean true' | as_root debconf-set-selections
  as_root apt-get -o DPkg::Lock::Timeout=900 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq \
    --no-install-recommends "${wanted[@]}"
fi

requirements=requirements.txt
[ "$MODE" = test ] && requirements=requirements-dev.txt
stamp="$VENV/.installed-$MODE"
digest=$(cat requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  echo "install: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo "install: Python packages from $requirements"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" -c constraints.txt
  # fake-switches declares Twisted<17 (no Python 3.11 build); its real dependencies are in requirements.txt
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt \
    -c constraints.txt
  echo "$digest" > "$stamp"
fi
