#!/usr/bin/env bash
# Install parkgrid on an edge box, as a box: the runtime lock (requirements.lock, hashed, no
# test tools) into a virtual environment in the first release slot, /opt/parkgrid/releases/a
# (/opt/parkgrid/current points at it; `parkgrid edge update` installs later releases into the
# other slot, docs/fleet.md), the systemd unit and the udev rule.
# Run it as root from an unpacked release or a checkout:
#
#   sudo deploy/install-box.sh                      # /opt/parkgrid, /etc/...
#   sudo deploy/install-box.sh --prefix /opt/pg2    # another place for the software
#   sudo deploy/install-box.sh --release-key release-key.pub   # the key updates are signed with
#
# Needs only python3 (3.11+) with its venv module (Debian 12: apt-get install python3-venv)
# and the package index: every dependency is installed from a wheel (--only-binary), so no
# compiler is needed. Running it again upgrades in place. It does not enable the service:
# that waits for /etc/parkgrid/edge.toml (docs/field-guide.md).
#
# --root DIR puts /etc files under DIR and skips the system changes (user, systemctl, udev):
# for packaging and for the test (tests/test_install_box.py). Developers use `make install`.
set -euo pipefail

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    echo "usage: $0 [--prefix DIR] [--root DIR] [--python PYTHON] [--release-key FILE]"
}

prefix=/opt/parkgrid
root=/
python=python3
release_key=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --root) root=${2:?--root needs a directory}; shift 2 ;;
        --python) python=${2:?--python needs an interpreter}; shift 2 ;;
        --release-key) release_key=${2:?--release-key needs the public key file}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install-box: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install-box: --prefix must be an absolute path" >&2; exit 2 ;; esac
root=${root%/}
src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$src/requirements.lock" ] && [ -f "$src/pyproject.toml" ] \
    || { echo "install-box: run it from parkgrid's source tree ($src has no requirements.lock)" >&2; exit 2; }
system=0
if [ -z "$root" ] && [ "$(id -u)" = 0 ]; then system=1; fi
if [ -z "$root" ] && [ "$system" = 0 ]; then
    echo "install-box: installing into / needs root (sudo $0 ...)" >&2; exit 2
fi

step() { printf '== %s\n' "$*"; }

"$python" -c 'import sys; assert sys.version_info >= (3, 11), "parkgrid needs Python 3.11 or newer"' \
    || { echo "install-box: $python is older than 3.11" >&2; exit 2; }
"$python" -c 'import ensurepip, venv' 2>/dev/null \
    || { echo "install-box: $python has no venv module (Debian: apt-get install python3-venv)" >&2; exit 2; }

# The slot current points at (a on a new box); running this again reinstalls it in place.
slot=a
if [ -L "$prefix/current" ]; then slot=$(basename "$(readlink "$prefix/current")"); fi
case "$slot" in a|b) ;; *) echo "install-box: $prefix/current points at $slot, not a slot" >&2; exit 2 ;; esac
venv="$prefix/releases/$slot"
step "software: a virtual environment in $venv (runtime lock only)"
install -d "$prefix/releases"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
"${pip[@]}" install --quiet --require-hashes --only-binary :all: -r "$src/requirements.lock"
# parkgrid itself is pure Python: built here from its source, no compiler involved.
"${pip[@]}" install --quiet --no-deps --force-reinstall "$src"
version=$("$venv/bin/parkgrid" --version)
sync
# written last: the slot is complete (the boot check and `edge update` read it)
printf '{"version": "%s", "installed_by": "install-box.sh"}\n' "$version" > "$venv/parkgrid-release.json"
ln -sfn "releases/$slot" "$prefix/current.new" && mv -T "$prefix/current.new" "$prefix/current"
# the technician's path to the command, whichever slot runs: <prefix>/bin/parkgrid
install -d "$prefix/bin"
ln -sfn ../current/bin/parkgrid "$prefix/bin/parkgrid"
install -d "$prefix/share/doc/parkgrid"
install -m 0644 "$src"/docs/field-guide*.md "$src"/docs/fleet*.md "$src/deploy/README.md" \
    "$prefix/share/doc/parkgrid/"

step "systemd unit and udev rule"
unit_dir="$root/etc/systemd/system"
rules_dir="$root/etc/udev/rules.d"
install -d "$unit_dir" "$rules_dir"
for unit in parkgrid-edge.service parkgrid-edge-release.service parkgrid-edge-release.path; do
    sed -e "s#/opt/parkgrid#$prefix#g" "$src/deploy/systemd/$unit" > "$unit_dir/$unit.new"
    chmod 0644 "$unit_dir/$unit.new"
    mv "$unit_dir/$unit.new" "$unit_dir/$unit"
done
rule="$rules_dir/99-parkgrid-serial.rules"
if [ -e "$rule" ]; then
    echo "   $rule exists (adapted to this box's adapters): kept"
else
    install -m 0644 "$src/deploy/udev/99-parkgrid-serial.rules" "$rule"
fi

if [ "$system" = 1 ]; then
    step "the parkgrid user, /etc/parkgrid, systemd and udev"
    getent passwd parkgrid >/dev/null \
        || adduser --system --group --home /var/lib/parkgrid --no-create-home parkgrid
    adduser parkgrid dialout >/dev/null
    install -d -o root -g parkgrid -m 0750 /etc/parkgrid
    systemctl daemon-reload
    udevadm control --reload && udevadm trigger --subsystem-match=tty
else
    install -d -m 0750 "$root/etc/parkgrid"
    echo "   --root $root: no user, systemctl or udev changes"
fi
if [ -n "$release_key" ]; then
    install -m 0644 "$release_key" "$root/etc/parkgrid/release.pub"
    echo "   the release public key: $root/etc/parkgrid/release.pub"
fi

echo "parkgrid $version installed in $prefix."
echo "Next (docs/field-guide.md): put edge.toml, mqtt-password and ca.crt from provision-box"
echo "in /etc/parkgrid (0640 root:parkgrid), check with"
echo "  sudo -u parkgrid $prefix/current/bin/parkgrid edge check-config /etc/parkgrid/edge.toml"
echo "then: sudo systemctl enable --now parkgrid-edge parkgrid-edge-release.path"
