"""cwltool 3.1.20210628163208 with every job handed to reana-site.

REANA's CWL engine (reana-workflow-engine-cwl 0.9.4) replaces cwltool's
job runner and rewrites the container paths in each command line. This
adapter lets cwltool build each job with its no-container path semantics
instead (the tmp and output directories inside the workspace, which every
backend mounts at the same path), and replaces only the step that starts
the command: the command line, with its redirections, goes to the daemon
as one job, and the adapter waits for its exit status. Staging, output
collection and the final status stay cwltool's own.
"""

import io
import json
import logging
import os
import shlex
import threading

import cwltool.job
import cwltool.loghandler
import cwltool.main
from cwltool.command_line_tool import CommandLineTool
from cwltool.context import LoadingContext
from cwltool.job import CommandLineJob
from cwltool.workflow import default_make_tool

from .client import RequestError, hints

# REANA's default image for tools without a DockerRequirement.
DEFAULT_IMAGE = "frolvlad/alpine-bash"

log = logging.getLogger("reana-site")
_current = threading.local()


def _reana_hints(tool):
    found = {}
    for h in list(tool.hints) + list(tool.requirements):
        if str(h.get("class", "")).rsplit("/", 1)[-1].lstrip("#") == "reana":
            found.update({k: v for k, v in h.items() if k != "class"})
    return found


def _job_class(tool):
    docker, _ = tool.get_requirement("DockerRequirement")
    image = (docker or {}).get("dockerPull") or DEFAULT_IMAGE
    fields = hints(_reana_hints(tool).get)

    class SiteJob(CommandLineJob):
        def run(self, runtimeContext, tmpdir_lock=None):
            _current.job = (image, fields)
            try:
                super().run(runtimeContext, tmpdir_lock)
            finally:
                _current.job = None

    return SiteJob


class SiteTool(CommandLineTool):
    def make_job_runner(self, runtimeContext):
        return _job_class(self)


def _make_tool(toolpath_object, loadingContext):
    if isinstance(toolpath_object, dict) and toolpath_object.get("class") == "CommandLineTool":
        return SiteTool(toolpath_object, loadingContext)
    return default_make_tool(toolpath_object, loadingContext)


def _popen(client, workspace, total):
    """Stands in for cwltool.job._job_popen: runs the job through the
    daemon and returns its exit status."""
    reported = []

    def popen(commands, stdin_path, stdout_path, stderr_path, env, cwd, make_job_dir, job_script_contents=None, timelimit=None, name=None, **_):
        image, fields = getattr(_current, "job", None) or (DEFAULT_IMAGE, {})
        cmd = "cd %s && %s" % (shlex.quote(cwd), " ".join(shlex.quote(c) for c in commands))
        if stdin_path:
            cmd += " < " + shlex.quote(stdin_path)
        if stdout_path:
            cmd += " > " + shlex.quote(stdout_path)
        if stderr_path:
            cmd += " 2> " + shlex.quote(stderr_path)
        env_vars = {k: v for k, v in env.items() if k != "PATH" and not k.startswith("REANA_SITE_")}
        if total and not reported:
            reported.append(True)
            try:
                client.progress(total)
            except RequestError as e:
                log.warning("could not report the number of jobs: %s", e)
        try:
            job_id = client.submit(name, job_name=name, docker_img=image.replace("docker://", ""), cmd=cmd, prettified_cmd=cmd, env_vars=env_vars, **fields)
        except RequestError as e:
            log.error("job %s could not be submitted: %s", name, e)
            return 1
        log.info("[job %s] submitted to reana-site as %s", name, job_id)
        while True:
            # Each question waits for the daemon's next round.
            st = client.status(job_id, wait=True)
            if st.get("status") in ("finished", "failed", "stopped"):
                break
        code = st.get("exit_code")
        if st.get("status") != "finished":
            log.error("[job %s] %s%s", name, st.get("status"), ": " + st["reason"] if st.get("reason") else "")
            return code if code else 1
        return code or 0

    return popen


def run(args, client):
    workspace = args["workspace"]
    cwltool.job._job_popen = _popen(client, workspace, int(args.get("total") or 0))
    argv = ["--no-container", "--disable-color"]
    target = (args.get("options") or {}).get("TARGET")
    if target:
        argv += ["--target", str(target)]
    argv += [
        "--tmpdir-prefix", os.path.join(workspace, "cwl", "tmpdir") + "/",
        "--tmp-outdir-prefix", os.path.join(workspace, "cwl", "outdir") + "/",
        "--outdir", os.path.join(workspace, "outputs"),
        os.path.join(workspace, args.get("file") or "workflow.cwl"),
        "-",
    ]
    os.makedirs(os.path.join(workspace, "cwl"), exist_ok=True)
    loading = LoadingContext()
    loading.construct_tool_object = _make_tool
    # The parameters are the job order, read from "standard input" so that
    # relative locations are relative to the workspace, as with REANA's
    # inputs.json there, without writing a file into it.
    params = dict(args.get("parameters") or {})
    # cwltool's own handler would print every line twice, in colour; its
    # records reach the root logger, in REANA's format, instead.
    for h in list(cwltool.loghandler._logger.handlers):
        cwltool.loghandler._logger.removeHandler(h)
    rc = cwltool.main.main(argsl=argv, stdin=io.StringIO(json.dumps(params)), loadingContext=loading, logger_handler=logging.NullHandler())
    return 0 if rc == 0 else 1
