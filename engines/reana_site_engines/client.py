"""The engine socket's client: REANA's job-controller calls, for one run.

Every call is retried while the daemon cannot be reached (it may be
restarting: the engine process outlives it), so a run survives a daemon
restart. A submission carries a key of the adapter's choosing, and the
daemon keeps at most one job per key, so a submission retried after a
lost answer never starts a second job.
"""

import http.client
import json
import logging
import os
import socket
import time

log = logging.getLogger("reana-site")

# REANA's log format (reana_commons.config.REANA_LOG_FORMAT).
LOG_FORMAT = "%(asctime)s | %(name)s | %(threadName)s | %(levelname)s | %(message)s"

# How long the daemon may be away before the engine gives up.
UNREACHABLE_LIMIT = 30 * 60


class RequestError(Exception):
    """The daemon refused a request; status is its HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


class Client:
    def __init__(self, sock, token, workflow_id):
        self.sock, self.token, self.workflow_id = sock, token, workflow_id

    @classmethod
    def from_env(cls):
        args = json.loads(os.environ["REANA_SITE_ENGINE_ARGS"])
        return cls(os.environ["REANA_SITE_ENGINE_SOCKET"], os.environ["REANA_SITE_ENGINE_TOKEN"], args["workflow_uuid"])

    def _call(self, method, path, body=None):
        url = "/v1/workflows/%s%s" % (self.workflow_id, path)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}
        deadline = time.monotonic() + UNREACHABLE_LIMIT
        delay, told = 0.2, False
        while True:
            try:
                conn = _UnixConnection(self.sock, timeout=120)
                try:
                    conn.request(method, url, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                if time.monotonic() > deadline:
                    raise RequestError(0, "the reana-site daemon could not be reached for %d s: %s" % (UNREACHABLE_LIMIT, e))
                if not told:
                    log.warning("the reana-site daemon cannot be reached (%s); trying again", e)
                    told = True
                time.sleep(delay)
                delay = min(2 * delay, 5)
                continue
            if resp.status == 429 or resp.status == 503:
                time.sleep(delay)
                delay = min(2 * delay, 5)
                continue
            try:
                doc = json.loads(raw or b"{}")
            except ValueError:
                doc = {"message": raw.decode(errors="replace")}
            if resp.status >= 400:
                raise RequestError(resp.status, doc.get("message", "HTTP %d" % resp.status))
            if told:
                log.info("the reana-site daemon answers again")
            return doc

    def submit(self, key, **job):
        """Submits a job (REANA's job-request fields) and returns its id."""
        job["key"] = key
        return self._call("POST", "/jobs", job)["job_id"]

    def status(self, job_id, wait=False):
        """Returns {status: queued|running|finished|failed|stopped, exit_code, reason}.

        With wait, a job that is still queued or running is answered only
        after the daemon's next round of status queries (at most a few
        seconds), so a caller that loops on it learns of a job's end as
        soon as the daemon does, without a timer of its own.
        """
        return self._call("GET", "/jobs/" + job_id + ("?wait=round" if wait else ""))

    def progress(self, total):
        self._call("POST", "/progress", {"total": int(total)})


# REANA's job-request fields that hints (snakemake resources, CWL "reana"
# hints, yadage stage resources) may set, with their types.
HINT_FIELDS = {
    "compute_backend": str,
    "kerberos": bool,
    "voms_proxy": bool,
    "rucio": bool,
    "unpacked_img": bool,
    "kubernetes_uid": int,
    "kubernetes_cpu_request": str,
    "kubernetes_cpu_limit": str,
    "kubernetes_memory_request": str,
    "kubernetes_memory_limit": str,
    "kubernetes_job_timeout": int,
    "htcondor_max_runtime": str,
    "htcondor_accounting_group": str,
    "slurm_partition": str,
    "slurm_time": str,
    "c4p_cpu_cores": str,
    "c4p_memory_limit": str,
    "c4p_additional_requirements": str,
}


def hints(get):
    """The job-request fields that get(name) gives a value for."""
    out = {}
    for name, kind in HINT_FIELDS.items():
        v = get(name)
        if v is None or v == "":
            continue
        out[name] = kind(v) if kind is not bool else v in (True, "true", "True", 1, "1")
    return out
