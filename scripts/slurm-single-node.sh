#!/usr/bin/env bash
# Start a real single-node Slurm on this machine (Debian's slurm-wlm + munge) for the `slurm` tests:
#
#   sudo bash scripts/slurm-single-node.sh          # install (if needed), configure, start; idempotent
#   .venv/bin/python -m pytest -m slurm tests/test_slurm_real.py
#   sudo bash scripts/slurm-single-node.sh stop
#
# Needs root and Debian/Ubuntu apt. One node (this host) with all its CPUs and 80 % of its memory, one
# partition `debug`, ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no cgroups, so it runs in a
# container), no accounting. Not for production: a test harness for the sbatch scripts in slurm/.
set -euo pipefail
# the daemons live in /usr/sbin, which a non-login root PATH (e.g. /usr/local/bin:/usr/bin:/bin) lacks
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
ACTION=${1:-start}
CONF_DIR=/etc/slurm
HOST=$(hostname -s)

stop() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
}

if [ "$ACTION" = stop ]; then stop; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "run as root (installs packages, starts daemons)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# the host name must resolve for slurmctld/slurmd to find each other
getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >>/etc/hosts

# at least 4 CPUs (oversubscribed on smaller machines, SlurmdParameters=config_overrides) so that the
# one-allocation script's scheduler step + worker step + driver fit on a 2-core CI runner
CPUS=$(( $(nproc) < 4 ? 4 : $(nproc) ))
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/munge
cat >"$CONF_DIR/slurm.conf" <<EOF
ClusterName=heattrack-test
SlurmctldHost=$HOST
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SlurmdParameters=config_overrides
SlurmUser=root
SlurmdUser=root
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force

pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 1
slurmctld -c   # -c: start clean (no saved jobs from an earlier test)
slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "slurm is up: $(sinfo -h -o '%P %D %c %m %t')"
    exit 0
  fi
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
