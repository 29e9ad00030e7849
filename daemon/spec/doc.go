// Package spec parses and validates the REANA specification (reana.yaml,
// received as the JSON body of POST /api/workflows) and holds the pure parts
// of REANA's serial engine: parameter expansion, operational options,
// TARGET/FROM step selection, workflow-name and retention-rule checks.
//
// The server re-validates everything: reana-client validates before it
// posts, but anyone can POST anything. A document is accepted exactly when
// reana-client 0.9.6 would have sent it, i.e. when it passes
//
//   - reana_commons' reana_analysis_schema.json (additionalProperties
//     violations are only warnings, as in REANA), and, for serial workflows,
//   - reana_commons.serial.serial_load, which the client always runs:
//     check_htcondor_max_runtime and serial_workflow_schema (steps required
//     and non-empty, kubernetes_uid an integer, kubernetes_memory_limit
//     matching KUBERNETES_MEMORY_FORMAT, ...).
//
// Deliberate differences from REANA, and why:
//
//   - compute_backend also accepts "slurm", "htcondor" and "local": a site
//     runs on its own batch systems, not on CERN's (see CanonicalBackend).
//   - A serial workflow must carry workflow.specification; the server
//     cannot read workflow.file from the user's machine (the client always
//     inlines it for serial workflows anyway).
//   - For other workflow types a null specification counts as absent,
//     because reana-client posts "specification": null for yadage.
//     Parse accepts such documents; SerialSteps refuses them.
//   - Integers (retention days, kubernetes_job_timeout, kubernetes_uid)
//     must fit in an int32; REANA stores them in int4 columns or passes
//     them to Kubernetes, where larger values fail later anyway.
//   - htcondor_max_runtime digits must be ASCII ('²' passes Python's
//     str.isdigit), and CVMFS repository names may not end in a newline
//     (Python's "$" in the schema pattern allows one).
//   - Where REANA iterates a dict in insertion order (operational options,
//     input parameters, retention rules) we go in sorted key order, so the
//     first error reported can differ when there are several.
//   - An empty step name behaves like a missing one in SelectSteps.
//
// Numbers in decoded documents are json.Number, so that integers and
// floats keep the distinction Python makes when it str()s them.
package spec
