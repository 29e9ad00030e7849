"""Read a user event log with HTCondor's own reader (htcondor2.JobEventLog)
and print its events as JSON, for eventlog_test.go. stop_after=0 reads what
is there now and returns instead of waiting for more."""
import json
import sys

import htcondor2

KEYS = ("ReturnValue", "TerminatedNormally", "TerminatedBySignal", "HoldReason",
        "HoldReasonCode", "HoldReasonSubCode", "Reason")
out = []
for e in htcondor2.JobEventLog(sys.argv[1]).events(stop_after=0):
    d = {"code": int(e.type), "cluster": e.cluster, "proc": e.proc, "time": e.timestamp}
    for k in KEYS:
        if k in e:
            d[k] = e[k]
    out.append(d)
json.dump(out, sys.stdout)
