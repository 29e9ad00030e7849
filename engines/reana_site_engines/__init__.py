"""reana-site's adapters for the workflow engines REANA runs.

Each adapter plugs into its engine where REANA's own does and hands every
job to the reana-site daemon over its local engine socket, instead of to
REANA's job controller. The daemon runs the job as the workflow's owner on
the backend the job asks for. This package runs as that owner too, with the
site's engine interpreter (REANA_SITE_ENGINE_PYTHON).
"""
