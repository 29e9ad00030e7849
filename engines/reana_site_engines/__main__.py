"""Entry point of a run's engine process: python -m reana_site_engines.

The daemon passes everything in the environment: REANA_SITE_ENGINE_ARGS
(JSON: type, workflow_uuid, workspace, file, parameters, options, cvmfs,
kerberos), REANA_SITE_ENGINE_SOCKET and REANA_SITE_ENGINE_TOKEN. The exit
status decides the run: 0 finished, anything else failed.
"""

import json
import logging
import os
import sys

from .client import LOG_FORMAT, Client


def main():
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    log = logging.getLogger("reana-site")
    try:
        args = json.loads(os.environ["REANA_SITE_ENGINE_ARGS"])
    except (KeyError, ValueError) as e:
        log.error("no usable engine arguments: %s", e)
        return 2
    kind = args.get("type")
    if kind == "snakemake":
        from . import snakemake_engine as engine
    elif kind == "cwl":
        from . import cwl_engine as engine
    elif kind == "yadage":
        from . import yadage_engine as engine
    else:
        log.error("unknown workflow type %r", kind)
        return 2
    os.chdir(args["workspace"])
    return engine.run(args, Client.from_env())


if __name__ == "__main__":
    sys.exit(main())
