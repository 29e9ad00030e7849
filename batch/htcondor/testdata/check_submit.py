"""Parse a submit description from stdin with HTCondor's own Python
bindings (htcondor2) and print, as JSON, what HTCondor makes of each
command: macros expanded, and custom attributes (+Name) evaluated as the
ClassAd expressions they are. Used by submit_test.go when the bindings are
installed; it never contacts a schedd."""
import json
import sys

import classad2
import htcondor2

sub = htcondor2.Submit(sys.stdin.read())
out = {}
for key in sub.keys():
    value = sub.expand(key)
    if key.upper().startswith("MY."):
        value = classad2.ExprTree(value).eval()
        if not isinstance(value, (str, int, float, bool)):
            value = repr(value)
    out[key.lower()] = value
json.dump(out, sys.stdout)
