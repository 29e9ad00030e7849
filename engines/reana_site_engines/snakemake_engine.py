"""Snakemake 7.32.4 with every job handed to reana-site.

Like REANA's engine (reana-workflow-engine-snakemake 0.9.4), this replaces
Snakemake's generic cluster executor with one that submits each job's
shell command to the job API and polls it, and runs snakemake() with
REANA's arguments. Two differences: the status is polled every fifth
of a second (the daemon is local), and the working directory is not locked
(the daemon runs one run per workspace at a time, and a killed engine
must not leave a lock that blocks the restart).
"""

import asyncio
import logging
import os
import subprocess
import sys

import snakemake
import snakemake.scheduler
from snakemake.executors import ClusterExecutor, GenericClusterExecutor
from snakemake.logging import logger
from snakemake.resources import DefaultResources

from .client import RequestError, hints

# REANA's default image for rules without a container.
DEFAULT_IMAGE = "docker.io/snakemake/snakemake:v7.32.4"
# How long the sweep sleeps while the run has no active job.
POLL_SECONDS = 0.2
REPORT_TIMEOUT = 120

log = logging.getLogger("reana-site")


def _executor(client, workspace, kerberos, cvmfs):
    class SiteExecutor(GenericClusterExecutor):
        """Submits each job to reana-site and follows it there."""

        published = False

        def run(self, job, callback=None, submit_callback=None, error_callback=None):
            super()._run(job)
            if not self.published:
                self._publish_total()
            if job.is_group() or not job.is_shell:
                logger.error("Python code execution is not supported yet.")
                error_callback(job)
                return
            image = (job.container_img_url or DEFAULT_IMAGE).replace("docker://", "")
            res = job.resources
            fields = hints(lambda k: res.get(k) if hasattr(res, "get") else None)
            fields.setdefault("kerberos", kerberos)
            try:
                job_id = client.submit(
                    "%s:%s" % (job.jobid, getattr(job, "attempt", 1)),
                    job_name=job.rule.name,
                    docker_img=image,
                    cmd="cd %s && %s" % (workspace, job.shellcmd),
                    prettified_cmd=job.shellcmd,
                    **fields,
                )
            except RequestError as e:
                logger.error("Job %s (%s) could not be submitted: %s" % (job.jobid, job.rule.name, e))
                error_callback(job)
                return
            logger.info("Submitted job %s (%s) with reana-site job id %s." % (job.jobid, job.rule.name, job_id))
            self.workflow.persistence.started(job, external_jobid=job_id)
            submit_callback(job)
            with self.lock:
                self.active_jobs.append((job, job_id, callback, error_callback))

        def _publish_total(self):
            self.published = True
            try:
                dag = self.dag
                total = len([j for j in dag.needrun_jobs(exclude_finished=False) if not j.is_norun])
                client.progress(total)
            except Exception as e:  # progress is informative only
                log.warning("could not report the number of jobs: %s", e)

        async def _wait_for_jobs(self):
            while True:
                with self.lock:
                    if not self.wait:
                        return
                    active, self.active_jobs = self.active_jobs, []
                still = []
                for i, entry in enumerate(active):
                    job, job_id, callback, error_callback = entry
                    try:
                        # The first question of a sweep waits for the
                        # daemon's next round; the others read what that
                        # round recorded.
                        st = client.status(job_id, wait=(i == 0))
                    except RequestError as e:
                        st = {"status": "failed", "reason": str(e)}
                    status = st.get("status")
                    if status == "finished":
                        callback(job)
                    elif status in ("failed", "stopped"):
                        self.print_job_error(job, cluster_jobid=job_id)
                        if st.get("reason"):
                            logger.error("reana-site: %s" % st["reason"])
                        error_callback(job)
                    else:
                        still.append(entry)
                with self.lock:
                    self.active_jobs.extend(still)
                if not active:
                    await asyncio.sleep(POLL_SECONDS)

        def handle_job_success(self, job):
            # The job ran elsewhere: no remote upload, its log stays with
            # the daemon; outputs are touched as REANA's engine does.
            super(ClusterExecutor, self).handle_job_success(
                job, upload_remote=False, handle_log=False, handle_touch=True
            )

        def cancel(self):
            # The daemon cancels the jobs of a stopped run itself.
            self.shutdown()

    return SiteExecutor


def run(args, client):
    workspace = args["workspace"]
    snakefile = os.path.join(workspace, args.get("file") or "Snakefile")
    snakemake.scheduler.GenericClusterExecutor = _executor(
        client, workspace, bool(args.get("kerberos")), args.get("cvmfs") or []
    )
    ok = snakemake.snakemake(
        snakefile=snakefile,
        config=args.get("parameters") or {},
        workdir=workspace,
        keep_logger=True,
        default_resources=DefaultResources(mode="bare"),
        printshellcmds=True,
        cluster="reana-site",
        notemp=True,
        nodes=int(os.environ.get("REANA_SITE_ENGINE_MAX_JOBS", "300")),
        lock=False,
    )
    report(args, snakefile)
    return 0 if ok else 1


def report(args, snakefile):
    """Writes the report as REANA does, never failing the run for it: in a
    child process with a time limit, since Snakemake fetches licence texts
    from the network for it, without a timeout."""
    target = (args.get("options") or {}).get("report", "report.html")
    code = (
        "import sys, snakemake; sys.exit(0 if snakemake.snakemake("
        "snakefile=sys.argv[1], config=__import__('json').loads(sys.argv[2]), workdir=sys.argv[3], "
        "report=sys.argv[4], lock=False, quiet=True) else 1)"
    )
    import json

    try:
        res = subprocess.run(
            [sys.executable, "-s", "-c", code, snakefile, json.dumps(args.get("parameters") or {}), args["workspace"], target],
            timeout=REPORT_TIMEOUT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if res.returncode != 0:
            log.warning("the report %s could not be written: %s", target, res.stderr.decode(errors="replace")[-2000:])
        else:
            log.info("report written to %s", target)
    except subprocess.TimeoutExpired:
        log.warning("the report %s was not written within %d s", target, REPORT_TIMEOUT)
