#!/usr/bin/env bash
# A one-host Slurm cluster for tune's tests and benchmarks: munge with its own key and socket,
# slurmctld and slurmd for this host's cores and memory, all state, logs and the config in DIR.
# Clients find it through SLURM_CONF=DIR/slurm.conf (`scripts/slurm-cluster.sh env DIR` prints
# the line); /etc is left alone, so the host's own Slurm, if any, is untouched.
#
#   scripts/slurm-cluster.sh start DIR    install slurm-wlm and munge if missing, start (idempotent)
#   scripts/slurm-cluster.sh stop DIR     stop the daemons started in DIR (by their PID files)
#   scripts/slurm-cluster.sh env DIR      SLURM_CONF=DIR/slurm.conf
#
# Accounting: no slurmdbd (it needs a MySQL server); job completions go to a text file
# (jobcomp/filetxt), which `sacct --completion` reads, and squeue knows jobs for MinJobAge.
# The daemons run as root (slurmd must, to start jobs as their users): run this as root, or
# with sudo. The ports come from DIR's path, so two build trees run two clusters side by side.
set -euo pipefail

usage() { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
command=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)

stop() {
  # The jobs first: a job's processes (slurmstepd's) outlive slurmd.
  if running slurmctld && [ -f "$dir/slurm.conf" ]; then
    export SLURM_CONF=$dir/slurm.conf
    squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null || true
    for _ in $(seq 150); do
      [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  # slurmd before the controller, so that it does not report the controller missing.
  for daemon in slurmd slurmctld munged; do
    local pid_file=$dir/$daemon.pid
    [ -f "$pid_file" ] || continue
    local pid
    pid=$(cat "$pid_file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      "${as_root[@]}" kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && "${as_root[@]}" kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_file"
  done
}

running() {
  local pid_file=$dir/$1.pid
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

install_missing() {
  local missing=()
  for package in slurm-wlm munge; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq >/dev/null
  "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

write_config() {
  # The node as slurmd sees this host (cores, memory), named as the host calls itself.
  local node_line host
  host=$(hostname -s)
  node_line=$(slurmd -C | head -n 1)
  node_line=${node_line/NodeName=* CPUs=/NodeName=$host NodeAddr=127.0.0.1 CPUs=}
  # Ports from the folder's path: two build trees (release, asan) may test at once.
  local base=$(( 20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000 / 2 * 2 ))
  cat > "$dir/slurm.conf" <<CONF
# Written by scripts/slurm-cluster.sh for tune's tests: one host, state in $dir.
ClusterName=tune
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$(( base + 1 ))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
# Start jobs as soon as they are submitted (the default batches submissions for 3 s).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MinJobAge=600
KillWait=10
InactiveLimit=0
$node_line State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install_missing
  export SLURM_CONF=$dir/slurm.conf
  if running munged && running slurmctld && running slurmd; then return; fi
  stop
  mkdir -p "$dir/state" "$dir/spool"
  chmod 700 "$dir"
  write_config
  if [ ! -f "$dir/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge.key"
  fi
  "${as_root[@]}" munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"
  # -c: a fresh controller state, so a job of an earlier run never comes back.
  "${as_root[@]}" slurmctld -c -f "$dir/slurm.conf"
  "${as_root[@]}" slurmd -f "$dir/slurm.conf"
  # Up once the node is idle: the controller has heard from slurmd.
  for _ in $(seq 300); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then return; fi
    sleep 0.1
  done
  echo "error: the Slurm cluster in $dir did not come up in 30 s; see $dir/slurmctld.log and" \
    "$dir/slurmd.log" >&2
  sinfo >&2 || true
  exit 1
}

case $command in
  start) start ;;
  stop) stop ;;
  env) echo "SLURM_CONF=$dir/slurm.conf" ;;
  *) usage ;;
esac
