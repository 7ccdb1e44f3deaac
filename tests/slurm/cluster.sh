#!/usr/bin/env bash
# A single-node SLURM cluster for the tests, from Debian's packages: munge,
# slurmctld and slurmd with a minimal config (no cgroups, linuxproc tracking,
# no accounting), everything under one folder.
#   cluster.sh start DIR   installs what is missing, starts the daemons, waits for an idle node;
#                          prints the SLURM_CONF path. Exit 77: not root, so no cluster can run
#                          here; exit 1 within a minute, with the daemons' own last log lines,
#                          when they do not come up.
#   cluster.sh stop DIR    stops the daemons.
set -u
cmd=${1:?start|stop}; dir=${2:?folder}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)

stop() {
  for pid in "$dir"/run/slurmd.pid "$dir"/run/slurmctld.pid "$dir"/munge/munged.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
  done
  sleep 1
}
if [ "$cmd" = stop ]; then stop; exit 0; fi

[ "$(id -u)" -eq 0 ] || { echo "cluster.sh: needs root to run slurmd" >&2; exit 77; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >/dev/null 2>&1 ||
    { echo "cluster.sh: cannot install slurm-wlm and munge" >&2; exit 1; }
fi
# Why a daemon is not up: its own last log lines, not a timeout.
daemon_log() { tail -n 5 "$1" 2>/dev/null | sed 's/^/    /'; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

mkdir -p "$dir"/{state,spool,log,munge,run}
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chown -R munge:munge "$dir/munge" 2>/dev/null; chmod 700 "$dir/munge"; chmod 400 "$dir/munge/munge.key"
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" --force 2>"$dir/log/munged.err" ||
  { echo "cluster.sh: munged did not start: $(cat "$dir/log/munged.err")" >&2; exit 1; }

host=$(hostname -s)
cat > "$dir/slurm.conf" <<CONF
ClusterName=runner-test
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ReturnToService=2
KillWait=10
MpiDefault=none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -c -f "$SLURM_CONF" && slurmd -f "$SLURM_CONF" ||
  { echo "cluster.sh: slurmctld/slurmd did not start:" >&2; daemon_log "$dir/log/slurmctld.log" >&2;
    daemon_log "$dir/log/slurmd.log" >&2; stop; exit 1; }
# Both daemons fork before they initialize their plugins, so a start that
# returned 0 can still end in a daemon that stopped: watch the pids, and ask
# sinfo with a short timeout (each unanswered sinfo otherwise waits out SLURM's
# message timeout and its retries, ~20 s, so 30 tries took ~10 minutes).
deadline=$((SECONDS + 45))
while [ $SECONDS -lt $deadline ]; do
  sleep 1
  for d in slurmctld slurmd; do
    if [ $SECONDS -gt 3 ] && ! alive "$dir/run/$d.pid" && ! pgrep -x "$d" >/dev/null; then
      echo "cluster.sh: $d stopped; its log ($dir/log/$d.log) ends:" >&2
      daemon_log "$dir/log/$d.log" >&2
      stop
      exit 1
    fi
  done
  if timeout 5 sinfo -h -o %t 2>/dev/null | grep -q idle; then echo "$SLURM_CONF"; exit 0; fi
done
echo "cluster.sh: the node did not become idle within 45 s; the daemons' logs end:" >&2
daemon_log "$dir/log/slurmctld.log" >&2
daemon_log "$dir/log/slurmd.log" >&2
stop
exit 1
