#!/usr/bin/env bash
# Runs a make target of this repository on a clean Debian 13 (trixie) system:
# a debootstrap root built from the Debian mirror apt already uses, a fresh clone
# of this repository's HEAD inside it, and ../shared (the seed, the CIFAR-10 copy) beside it.
#   scripts/debian13.sh [TARGET...]      default: test (the README's test command)
# Environment:
#   DEBIAN13_ROOT   where the root lives (default /var/tmp/runner-debian13); reused by
#                   the next run, so only the first one pays for debootstrap
#   DEBIAN13_FRESH=1  delete the root and build it again
#   DEBIAN13_KEEP_BUILD=1  keep the previous clone's build/ folder (a quicker rebuild
#                   while iterating; the default is a fresh clone and a clean build)
#   DEBIAN13_WORKTREE=1  the clone gets this working tree's uncommitted changes too
# Needs root (debootstrap, chroot, mounts). Every mount is undone on any exit.
# Disk: the root with the build packages is ~3.5 GB, the clone and its build ~1 GB.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root_dir=${DEBIAN13_ROOT:-/var/tmp/runner-debian13}
root=$root_dir/root
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(test)

[ "$(id -u)" -eq 0 ] || { echo "debian13: needs root (debootstrap, chroot, mount)" >&2; exit 2; }
step_start=$SECONDS
step() {  # the time the last step took, then the next one's name
  echo "debian13: [$((SECONDS - step_start)) s] $*" >&2
  step_start=$SECONDS
}

# The mirror apt uses here (deb822 .sources or a one-line sources.list); Debian's own otherwise.
mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
[ -n "$mirror" ] || mirror=$(grep -hs '^deb ' /etc/apt/sources.list | awk '$3 !~ /security/ {print $2; exit}' || true)
mirror=${mirror:-http://deb.debian.org/debian}

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
bind() {  # bind SRC DEST [ro]
  mkdir -p "$2"
  mount --rbind "$1" "$2"
  mount --make-rslave "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

# One run at a time per root: a second would delete the first's clone and mounts.
mkdir -p "$root_dir"
exec 9>"$root_dir/.lock"
flock -n 9 || { echo "debian13: another run is using $root_dir (wait for it, or set DEBIAN13_ROOT)" >&2; exit 2; }
if [ "${DEBIAN13_FRESH:-}" = 1 ] || [ ! -f "$root_dir/.complete" ]; then
  # A half-made root (an interrupted debootstrap) is never reused.
  step "debootstrap trixie from $mirror into $root"
  rm -rf "$root" "$root_dir/.complete"
  mkdir -p "$root_dir"
  command -v debootstrap >/dev/null ||
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null)
  debootstrap --variant=minbase --include=git,make,ca-certificates trixie "$root" "$mirror" >"$root_dir/debootstrap.log" 2>&1 ||
    { tail -n 20 "$root_dir/debootstrap.log" >&2; echo "debian13: debootstrap failed (log: $root_dir/debootstrap.log)" >&2; exit 1; }
  echo "deb $mirror trixie main" >"$root/etc/apt/sources.list"
  touch "$root_dir/.complete"
fi

# A run killed with SIGKILL (a CI timeout) could not undo its mounts, and binding
# ../shared again onto a stale mount fails ("mount(2) system call failed"): undo them first.
awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r stale; do
  umount -l "$stale" 2>/dev/null || true
done
step "mounts: /proc, /sys, /dev, /tmp, ../shared (read-only)"
mount -t proc proc "$root/proc"; mounts+=("$root/proc")
bind /sys "$root/sys"
bind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/tmp"; mounts+=("$root/tmp")
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/hosts "$root/etc/hosts"
# The host's own certificate authorities (a proxy's, where the network goes through one), so
# npm inside reaches its registry as it does outside (seen: SELF_SIGNED_CERT_IN_CHAIN without them).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || echo "debian13: update-ca-certificates failed in the root" >&2
fi
# ../shared as the tests expect it beside the clone (the seed's tables, CIFAR-10); a
# $CIFAR10_ROOT elsewhere goes to the same place inside.
shared=$(cd "$here/.." && pwd)/shared
if [ -d "$shared" ]; then bind "$shared" "$root/work/shared" ro; fi
if [ -n "${CIFAR10_ROOT:-}" ] && [ -d "$CIFAR10_ROOT" ] && [ "$(realpath "$CIFAR10_ROOT")" != "$(realpath "$shared/data/cifar-10-batches-bin" 2>/dev/null)" ]; then
  bind "$CIFAR10_ROOT" "$root/work/cifar-10-batches-bin" ro
  inner_cifar=/work/cifar-10-batches-bin
else
  inner_cifar=/work/shared/data/cifar-10-batches-bin
fi

step "fresh clone of $(git -C "$here" rev-parse --short HEAD) into $root/work/runner"
if [ "${DEBIAN13_KEEP_BUILD:-}" = 1 ] && [ -d "$root/work/runner/build" ]; then
  rm -rf "$root/work/build.keep"; mv "$root/work/runner/build" "$root/work/build.keep"
fi
rm -rf "$root/work/runner"
git clone -q --no-hardlinks "$here" "$root/work/runner"
if [ "${DEBIAN13_WORKTREE:-}" = 1 ]; then
  (cd "$here" && git ls-files -z -c -o --exclude-standard | tar --null -T - -cf -) | tar -C "$root/work/runner" -m -xf -  # -m: now as mtime, so a kept build/ recompiles them
fi
if [ -d "$root/work/build.keep" ]; then mv "$root/work/build.keep" "$root/work/runner/build"; fi

for target in "${targets[@]}"; do
  step "make $target (Debian 13)"
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 CI="${CI:-}" TERM="${TERM:-dumb}" CIFAR10_ROOT="$inner_cifar" \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    bash -c "cd /work/runner && make $target" 9>&-  # the lock stays ours: a daemon a test leaves must not hold it
done
step "done: make ${targets[*]} passed on Debian 13"
