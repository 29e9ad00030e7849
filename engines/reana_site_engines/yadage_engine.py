"""yadage 0.20.1 with every packtivity handed to reana-site.

Like REANA's engine (reana-workflow-engine-yadage 0.9.5), this runs
yadage's steering with a packtivity backend of its own: each stage's job
(its command, or its script piped to its interpreter) goes to the daemon,
and its publisher runs here, as the user, once the job finished. The
specification is loaded here too, from the workspace (the toplevel
option), never in the daemon.
"""

import base64
import logging
import os
import shutil

import yadageschemas
import yaml
from packtivity.asyncbackends import ExternalAsyncProxy
from packtivity.syncbackends import build_job, finalize_inputs, packconfig, publish
from yadage.backends.packtivitybackend import PacktivityBackend
from yadage.steering_api import steering_ctx

from .client import RequestError, hints

log = logging.getLogger("reana-site")
TERMINAL = ("finished", "failed", "stopped")
SCHEMA = "yadage/workflow-schema"


def make_script(job):
    """A script stage's command, as REANA's engine makes it."""
    encoded = base64.b64encode(job["script"].encode("utf-8")).decode("utf-8")
    return "echo {}|base64 -d|{}".format(encoded, job["interpreter"])


def _resources(items, kerberos):
    found = {}
    for item in items or []:
        if isinstance(item, dict):
            found.update(item)
        else:
            log.info('only dictionary entries are supported for resources; "%s" is ignored', item)
    fields = hints(found.get)
    fields.setdefault("kerberos", kerberos)
    return fields


class SiteProxy(ExternalAsyncProxy):
    """A submitted job, as yadage stores it with the workflow's state."""

    def details(self):
        return {
            "resultdata": self.resultdata,
            "jobproxy": self.jobproxy,
            "spec": self.spec,
            "statedata": self.statedata.json(),
            "pardata": self.pardata.json(),
        }


class SiteBackend:
    """A packtivity asynchronous backend that runs each job through the
    reana-site daemon."""

    def __init__(self, client, kerberos=False, total=0):
        self.config = packconfig()
        self.client = client
        self.kerberos = kerberos
        self.total = total
        self.submitted = 0
        self.states = {}

    def submit(self, spec, parameters, state, metadata):
        parameters, state = finalize_inputs(parameters, state)
        job = build_job(spec["process"], parameters, state, self.config)
        state.ensure()
        if "command" in job:
            prettified = cmd = job["command"]
        else:
            prettified, cmd = job["script"], make_script(job)
        env = spec["environment"]
        image = env.get("image", "")
        if env.get("imagetag"):
            image = "%s:%s" % (image, env["imagetag"])
        name = metadata["name"]
        # The node id is unique in the run and the same if this submission
        # is retried.
        key = str(metadata.get("id") or metadata.get("nodeid") or name)
        if self.submitted == 0 and self.total:
            try:
                self.client.progress(self.total)
            except RequestError as e:
                log.warning("could not report the number of jobs: %s", e)
        self.submitted += 1
        job_id = self.client.submit(
            key, job_name=name, docker_img=image, cmd=cmd, prettified_cmd=prettified, **_resources(env.get("resources"), self.kerberos)
        )
        log.info("Submitted job %s with reana-site job id %s.", name, job_id)
        return SiteProxy(jobproxy={"job_id": job_id}, spec=spec, pardata=parameters, statedata=state)

    def _state(self, proxy):
        job_id = proxy.jobproxy["job_id"]
        if self.states.get(job_id) not in TERMINAL:
            try:
                self.states[job_id] = self.client.status(job_id).get("status")
            except RequestError as e:
                log.error("status of job %s: %s", job_id, e)
                self.states[job_id] = "failed"
        return self.states[job_id]

    def ready(self, proxy):
        return self._state(proxy) in TERMINAL

    def successful(self, proxy):
        return self._state(proxy) == "finished"

    def result(self, proxy):
        proxy.pardata, proxy.statedata = finalize_inputs(proxy.pardata, proxy.statedata)
        return publish(proxy.spec["publisher"], proxy.pardata, proxy.statedata, self.config)

    def fail_info(self, proxy):
        return "job %s %s" % (proxy.jobproxy.get("job_id"), self.states.get(proxy.jobproxy.get("job_id")))


def run(args, client):
    workspace = args["workspace"]
    opts = args.get("options") or {}
    toplevel = str(opts.get("toplevel") or "")
    if toplevel.startswith("github:"):
        log.info("loading the workflow from %s: this needs network access to GitHub", toplevel)
    else:
        toplevel = os.path.join(workspace, toplevel)
    initdata = {}
    for f in opts.get("initfiles") or []:
        with open(os.path.join(workspace, f)) as fh:
            initdata.update(yaml.safe_load(fh) or {})
    initdata.update(args.get("parameters") or {})
    initdir = os.path.join(workspace, str(opts.get("initdir") or ""))
    # Loaded as reana-commons' yadage_load_from_workspace does (its $refs
    # resolved against the toplevel), here as the user.
    try:
        spec = yadageschemas.load(
            spec=args.get("file") or "workflow.yaml",
            specopts={"toplevel": toplevel, "schema_name": SCHEMA, "schemadir": None, "load_as_ref": False},
            validopts={"schema_name": SCHEMA, "schemadir": None},
            validate=True,
        )
    except Exception as e:
        log.error("the workflow specification could not be loaded: %s", e)
        return 1
    total = len(spec.get("stages") or [])
    backend = PacktivityBackend(packtivity_backend=SiteBackend(client, bool(args.get("kerberos")), total), backendopts={})
    # Without Graphviz, yadage's drawing would crash the engine after every
    # stage succeeded.
    visualize = shutil.which("dot") is not None
    try:
        with steering_ctx(
            dataarg=workspace,
            dataopts={"initdir": initdir},
            workflow_json=spec,
            initdata=initdata,
            visualize=visualize,
            updateinterval=0.2,
            loginterval=15,
            backend=backend,
            accept_metadir=True,
        ) as ys:
            ys.adage_argument(default_trackers=visualize)
    except Exception as e:
        log.error("workflow failed: %s", e)
        return 1
    log.info("workflow completed successfully.")
    return 0
