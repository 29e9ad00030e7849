#!/usr/bin/python3 -I
# standin.py — a TEST STAND-IN for the HTCondor command-line tools
# (https://htcondor.org), used by reana-site's tests because HTCondor cannot
# be installed on the test machine. It is NOT HTCondor: there is no schedd,
# no collector, no negotiator and no startd. It accepts the subset of the
# command line reana-site's HTCondor backend uses, refuses the rest in
# HTCondor's style, and really runs each job on this machine as the user who
# submitted it, writing the job event log ("user log") in HTCondor's text
# format. Production code must not know it exists.
#
# One file, dispatched on the program name (test/htcondor/bin/condor_* are
# symlinks to it). Only the Python standard library is used; it runs as the
# calling user (it is never setuid) with /usr/bin/python3 -I.
#
# Supported (everything else is refused with exit 1):
#   condor_submit  [-terse] [-name S] [-pool P] [-batch-name N]
#                  [-append|-a CMD]... [-file] FILE|-
#   condor_q       [-allusers] [-name S] [-pool P] [-constraint EXPR]...
#                  [-af[:jtlVrng,] EXPR...] [-long] [-nobatch]
#                  [OWNER | CLUSTER | CLUSTER.PROC]...
#   condor_history [-name S] [-pool P] [-constraint EXPR]... [-limit|-match N]
#                  [-af[:jtlVrng,] EXPR...] [-long] [-forwards|-backwards]
#                  [OWNER | CLUSTER | CLUSTER.PROC]...
#   condor_rm | condor_hold | condor_release
#                  [-name S] [-pool P] [-reason R] [-subcode N (hold only)]
#                  [-totals] CLUSTER | CLUSTER.PROC | OWNER | -constraint EXPR | -all ...
# Configuration: CONDOR_CONFIG names a file of "NAME = value" lines
# (# comments, trailing-backslash continuation, $(NAME) references,
# _CONDOR_NAME environment overrides). Keys read: SPOOL (required: the
# shared state directory, mode 1777), SCHEDD_NAME (default: the host name).
# Test-only keys (real HTCondor has none of these; all start with STANDIN_):
#   STANDIN_MATCH_DELAY        seconds from submit/release to execute (0.2)
#   STANDIN_PERIODIC_INTERVAL  seconds between periodic_remove checks (1;
#                              real: PERIODIC_EXPR_INTERVAL, 60)
#   STANDIN_MAX_VACATE_TIME    seconds between the soft kill of condor_rm
#                              and the hard kill (2; real: job_max_vacate_time)
#   $(SPOOL)/schedd_down       if this file exists the "schedd" is down:
#                              every command that talks to it fails as
#                              HTCondor's does; running jobs continue, and
#                              a job that ends meanwhile logs its terminate
#                              event only when the schedd is back (after 022
#                              and 023), as a real 24.0 pool does. Empty, the
#                              schedd is stopped (condor_off: "Can't find
#                              address for schedd"); "crashed" in it gives
#                              the texts of a schedd that died (CEDAR:6001).
#
# Deliberately not emulated (see test/htcondor/README.md): matchmaking and
# requirements, authentication and QUEUE_SUPER_USERS beyond root, file
# transfer (jobs always run in their initialdir), evictions, shadow
# exceptions, retries, JSON/XML logs, late materialisation, queue-statement
# forms beyond "queue [N]", most submit commands' side effects.

import errno
import fcntl
import json
import math
import os
import pwd
import re
import signal
import socket
import sys
import time

PROGRAMS = ("condor_submit", "condor_q", "condor_history", "condor_rm", "condor_hold", "condor_release")

# Job status codes (HTCondor manual, "Job Status Codes").
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
STATUS_LETTER = {1: "I", 2: "R", 3: "X", 4: "C", 5: "H", 6: ">", 7: "S"}

# Hold reason codes (HTCondor manual, "Hold Reason Codes").
HOLD_USER_REQUEST = 1
HOLD_FAILED_TO_CREATE_PROCESS = 6
HOLD_UNABLE_TO_OPEN_OUTPUT = 7
HOLD_UNABLE_TO_OPEN_INPUT = 8
HOLD_IWD_ERROR = 14

POLL = 0.1  # seconds between the shadow's looks at its request files


def die(msg, code=1):
    sys.stderr.write(msg)
    sys.stderr.flush()
    sys.exit(code)


def standin_refuse(prog, what):
    # Not an HTCondor message: the stand-in's own refusal of a real feature.
    die("\nERROR: stand-in: %s (test/htcondor/%s is a test stand-in, not HTCondor; see test/htcondor/README.md)\n"
        % (what, prog))


# ---------------------------------------------------------------------------
# ClassAd expressions: the subset the tests and the backend use.
# HTCondor manual, "ClassAd Mechanism" -> "ClassAd Syntax"/"ClassAd
# Evaluation Semantics": attribute names are case-insensitive; == and !=
# compare strings case-insensitively and are UNDEFINED when an operand is;
# =?= / =!= (and is / isnt) never are; && and || are three-valued.
# ---------------------------------------------------------------------------

class _Undefined:
    def __repr__(self):
        return "undefined"


class _Error:
    def __repr__(self):
        return "error"


UNDEFINED = _Undefined()
ERROR = _Error()


class ParseError(Exception):
    pass


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
  | (?P<int>\d+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<op>=\?=|=!=|==|!=|<=|>=|&&|\|\||[<>!+\-*/%(),.])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.X | re.S)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "b": "\b", "f": "\f", "/": "/"}
_FUNCS = {"time": (0, 0), "isundefined": (1, 1), "iserror": (1, 1), "ifthenelse": (3, 3)}


def _tokenize(text):
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError("unexpected character %r" % text[pos])
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group()))
    out.append(("end", ""))
    return out


def _unquote(lit):
    body, out, i = lit[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Parser:
    # precedence climbing; binary operators and their binding power
    BIN = {"||": 1, "&&": 2, "==": 3, "!=": 3, "=?=": 3, "=!=": 3, "is": 3, "isnt": 3,
           "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}

    def __init__(self, text):
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self):
        return self.toks[self.i]

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def binop(self):
        kind, val = self.peek()
        if kind == "op" and val in self.BIN:
            return val
        if kind == "name" and val.lower() in ("is", "isnt"):
            return val.lower()
        return None

    def expr(self, minprec=1):
        left = self.unary()
        while True:
            op = self.binop()
            if op is None or self.BIN[op] < minprec:
                return left
            self.take()
            right = self.expr(self.BIN[op] + 1)
            left = ("bin", op, left, right)

    def unary(self):
        kind, val = self.peek()
        if kind == "op" and val in ("!", "-", "+"):
            self.take()
            return ("un", val, self.unary())
        return self.primary()

    def primary(self):
        kind, val = self.take()
        if kind == "int":
            return ("lit", int(val))
        if kind == "real":
            return ("lit", float(val))
        if kind == "str":
            return ("lit", _unquote(val))
        if kind == "op" and val == "(":
            e = self.expr()
            if self.take() != ("op", ")"):
                raise ParseError("missing )")
            return ("paren", e)
        if kind == "name":
            low = val.lower()
            if self.peek() == ("op", "("):
                if low not in _FUNCS:
                    raise ParseError("function %s() is not in the stand-in's ClassAd subset" % val)
                self.take()
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.expr())
                    while self.peek() == ("op", ","):
                        self.take()
                        args.append(self.expr())
                if self.take() != ("op", ")"):
                    raise ParseError("missing ) after arguments")
                lo, hi = _FUNCS[low]
                if not lo <= len(args) <= hi:
                    raise ParseError("wrong number of arguments to %s()" % val)
                return ("call", val, args)
            if low == "true":
                return ("lit", True)
            if low == "false":
                return ("lit", False)
            if low == "undefined":
                return ("lit", UNDEFINED)
            if low == "error":
                return ("lit", ERROR)
            if low in ("my", "target") and self.peek() == ("op", "."):
                self.take()
                k2, name = self.take()
                if k2 != "name":
                    raise ParseError("attribute name expected after %s." % val)
                return ("attr", name, low)
            return ("attr", val, None)
        raise ParseError("unexpected %r" % (val or "end of expression"))


def parse_expr(text):
    if not text.strip():
        raise ParseError("empty expression")
    p = _Parser(text)
    e = p.expr()
    if p.peek()[0] != "end":
        raise ParseError("unexpected %r" % p.peek()[1])
    return e


def quote_string(s):
    out = []
    for c in s:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20:
            out.append("\\%03o" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def literal(v):
    """The ClassAd text of a value (what condor_q -long and -af:V print)."""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    if isinstance(v, str):
        return quote_string(v)
    if v is UNDEFINED:
        return "undefined"
    return "error"


def unparse(e):
    """ClassAd unparsing as HTCondor prints expressions (spaces around binary
    operators, parentheses where written): for
    (JobStatus == 2) && ((time() - EnteredCurrentStatus) > 60) it gives the
    same text as classad2.ExprTree(...).__str__()."""
    k = e[0]
    if k == "lit":
        return literal(e[1])
    if k == "attr":
        return ("%s.%s" % (e[2].upper() if e[2] == "my" else "TARGET", e[1])) if e[2] else e[1]
    if k == "paren":
        return "(" + unparse(e[1]) + ")"
    if k == "un":
        return e[1] + unparse(e[2])
    if k == "call":
        return e[1] + "(" + ",".join(unparse(a) for a in e[2]) + ")"
    return "%s %s %s" % (unparse(e[2]), e[1], unparse(e[3]))


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_bool(v):
    if isinstance(v, bool):
        return v
    if _num(v):
        return v != 0
    if v is UNDEFINED:
        return UNDEFINED
    return ERROR


class Ad:
    """A job ad: attribute name -> ClassAd expression text (case-insensitive
    names, the first spelling kept)."""

    def __init__(self, attrs=None):
        self.attrs = {}
        self.names = {}
        for k, v in (attrs or {}).items():
            self.set_expr(k, v)

    def set_expr(self, name, text):
        low = name.lower()
        if low in self.names:
            name = self.names[low]
        self.names[low] = name
        self.attrs[name] = text

    def set(self, name, value):
        self.set_expr(name, literal(value))

    def delete(self, name):
        real = self.names.pop(name.lower(), None)
        if real is not None:
            del self.attrs[real]

    def raw(self, name):
        real = self.names.get(name.lower())
        return None if real is None else self.attrs[real]

    def get(self, name, default=UNDEFINED):
        v = self.eval_attr(name)
        return default if v is UNDEFINED else v

    def eval_attr(self, name, depth=0):
        text = self.raw(name)
        if text is None:
            return UNDEFINED
        if depth > 30:
            return ERROR
        try:
            tree = parse_expr(text)
        except ParseError:
            return ERROR
        return self.eval(tree, depth + 1)

    def eval(self, e, depth=0):
        k = e[0]
        if k == "lit":
            return e[1]
        if k == "attr":
            if e[2] == "target":
                return UNDEFINED
            return self.eval_attr(e[1], depth)
        if k == "paren":
            return self.eval(e[1], depth)
        if k == "call":
            name = e[1].lower()
            if name == "time":
                return int(time.time())
            if name == "isundefined":
                return self.eval(e[2][0], depth) is UNDEFINED
            if name == "iserror":
                return self.eval(e[2][0], depth) is ERROR
            c = _as_bool(self.eval(e[2][0], depth))
            if c is UNDEFINED or c is ERROR:
                return c
            return self.eval(e[2][1] if c else e[2][2], depth)
        if k == "un":
            v = self.eval(e[2], depth)
            if v is UNDEFINED or v is ERROR:
                return v
            if e[1] == "!":
                b = _as_bool(v)
                return b if b is ERROR else (not b)
            if not _num(v):
                return ERROR
            return -v if e[1] == "-" else v
        op = e[1]
        if op in ("&&", "||"):
            left = _as_bool(self.eval(e[2], depth))
            if left is ERROR:
                return ERROR
            if op == "&&" and left is False:
                return False
            if op == "||" and left is True:
                return True
            right = _as_bool(self.eval(e[3], depth))
            if right is ERROR:
                return ERROR
            if left is UNDEFINED:
                if (op == "&&" and right is False) or (op == "||" and right is True):
                    return right
                return UNDEFINED
            return right
        a, b = self.eval(e[2], depth), self.eval(e[3], depth)
        if op in ("=?=", "=!=", "is", "isnt"):
            same = (type(a) is type(b)) and (a == b if not isinstance(a, (_Undefined, _Error)) else True)
            return same if op in ("=?=", "is") else not same
        if a is ERROR or b is ERROR:
            return ERROR
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if isinstance(a, str) and isinstance(b, str):
                a, b = a.lower(), b.lower()
            elif isinstance(a, bool) and isinstance(b, bool):
                pass
            elif _num(a) or isinstance(a, bool):
                if not (_num(b) or isinstance(b, bool)):
                    return ERROR
                a, b = float(a), float(b)
            else:
                return ERROR
            return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if not (_num(a) and _num(b)):
            return ERROR
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return ERROR
        if op == "/":
            if isinstance(a, int) and isinstance(b, int):
                q = abs(a) // abs(b)
                return q if (a >= 0) == (b >= 0) else -q
            return a / b
        if isinstance(a, int) and isinstance(b, int):
            return int(math.fmod(a, b))
        return math.fmod(a, b)

    def matches(self, tree):
        v = self.eval(tree)
        return v is True or (_num(v) and v != 0)


# ---------------------------------------------------------------------------
# Configuration (HTCondor manual, "Introduction to Configuration" and
# "Ordered Evaluation to Set the Configuration"; source
# src/condor_utils/condor_config.cpp: find_file(), real_config(),
# process_config_source() for the error texts).
# ---------------------------------------------------------------------------

class Config:
    def __init__(self, path, values):
        self.path = path
        self.values = values

    def get(self, name, default=None):
        v = self.values.get(name.upper())
        return default if v is None or v == "" else self.expand(v)

    def expand(self, text, depth=0):
        def sub(m):
            name, _, dflt = m.group(1).partition(":")
            v = self.values.get(name.upper())
            if v is None or depth > 20:
                return dflt
            return self.expand(v, depth + 1)
        return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_.]*(?::[^)]*)?)\)", sub, text)

    def number(self, name, default):
        v = self.get(name)
        if v is None:
            return default
        try:
            return float(v)
        except ValueError:
            die("stand-in: configuration %s = %r is not a number\n" % (name, v))


def load_config():
    path = os.environ.get("CONDOR_CONFIG")
    if path is None or path == "":
        # real_config(): no CONDOR_CONFIG and no /etc/condor/condor_config,
        # /usr/local/etc/condor_config or ~condor/condor_config. The
        # stand-in never looks at those places (a real installation's config
        # must not leak into tests).
        die("\nNeither the environment variable CONDOR_CONFIG,\n"
            "/etc/condor/, /usr/local/etc/, nor ~condor/ contain a condor_config source.\n"
            "Either set CONDOR_CONFIG to point to a valid config source,\n"
            "or put a \"condor_config\" file in /etc/condor/ /usr/local/etc/ or ~condor/\n"
            "Exiting.\n\n")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        die('File specified in CONDOR_CONFIG environment variable:\n"%s" does not exist.\n' % path)
    except OSError as e:
        die('Cannot stat file specified in CONDOR_CONFIG environment variable:\n"%s", errno: %d\n'
            % (path, e.errno))
    if os.path.isdir(path):
        die('File specified in CONDOR_CONFIG environment variable:\n"%s" is a directory.  Please specify a file.\n'
            % path)
    del st
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        die("ERROR: Can't read global config source %s\n" % path)
    values = {}
    for lineno, s in logical_lines(text):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$", s)
        if not m:
            die("Configuration Error Line %d while reading global config source %s\n" % (lineno, path))
        values[m.group(1).upper()] = m.group(2).strip()
    # _CONDOR_<NAME> environment variables override the files (manual,
    # "Configuration File Macros": "environment variables ... _CONDOR_").
    for k, v in os.environ.items():
        if k.lower().startswith("_condor_") and len(k) > 8:
            values[k[8:].upper()] = v.strip()
    return Config(path, values)


# ---------------------------------------------------------------------------
# The "schedd": state in $(SPOOL)
#   $(SPOOL)/cluster<N>/               one per cluster, mkdir'ed by the
#                                      submitter (the atomic id allocation),
#                                      owned by the job's owner, mode 0755
#   $(SPOOL)/cluster<N>/proc<P>.json   the job record (world-readable)
#   $(SPOOL)/cluster<N>/req.<P>.*      rm/hold/release requests to the shadow
#   $(SPOOL)/cluster<N>/shadow.<P>.log the shadow's own diagnostics
#   $(SPOOL)/schedd_down               test knob: the schedd is down
# ---------------------------------------------------------------------------

class Schedd:
    def __init__(self, cfg, prog):
        self.cfg = cfg
        self.prog = prog
        spool = cfg.get("SPOOL")
        if not spool:
            die("stand-in: SPOOL is not set in %s (test/htcondor/README.md)\n" % cfg.path)
        self.spool = spool
        self.name = cfg.get("SCHEDD_NAME") or socket.gethostname()
        token = sum(spool.encode()) % 0xFFFF
        self.sinful = "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=%s&noUDP&sock=schedd_%d_%04x>" % (
            self.name, 4242, token)
        self.startd_sinful = "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=%s&noUDP&sock=startd_%d_%04x>" % (
            self.name, 4243, token)
        self.match_delay = cfg.number("STANDIN_MATCH_DELAY", 0.2)
        self.periodic_interval = cfg.number("STANDIN_PERIODIC_INTERVAL", 1.0)
        self.vacate_time = cfg.number("STANDIN_MAX_VACATE_TIME", 2.0)

    def down(self):
        return os.path.exists(os.path.join(self.spool, "schedd_down"))

    def crashed(self):
        """The schedd died rather than being stopped: the collector still
        has its address, so the tools fail to connect instead."""
        try:
            with open(os.path.join(self.spool, "schedd_down")) as f:
                return f.read().strip() == "crashed"
        except OSError:
            return False

    def name_ok(self, name):
        if name is None:
            return True
        n = name.lower()
        return n in (self.name.lower(), self.name.lower().split(".")[0], socket.gethostname().lower())

    def cluster_dir(self, c):
        return os.path.join(self.spool, "cluster%d" % c)

    def cluster_ids(self):
        ids = []
        try:
            names = os.listdir(self.spool)
        except OSError as e:
            die("stand-in: cannot read SPOOL %s: %s\n" % (self.spool, e.strerror))
        for n in names:
            m = re.match(r"^cluster(\d+)$", n)
            if m:
                ids.append(int(m.group(1)))
        return sorted(ids)

    def new_cluster(self):
        """Allocate the next cluster id: mkdir is atomic, so two submitters
        (any uids; SPOOL is 1777) never get the same one."""
        n = (max(self.cluster_ids()) if self.cluster_ids() else 0) + 1
        while True:
            try:
                os.mkdir(self.cluster_dir(n), 0o755)
                os.chmod(self.cluster_dir(n), 0o755)
                return n
            except FileExistsError:
                n += 1

    def record_path(self, c, p):
        return os.path.join(self.cluster_dir(c), "proc%d.json" % p)

    def load(self, c, p):
        try:
            with open(self.record_path(c, p)) as f:
                return Record(self, json.load(f))
        except (OSError, ValueError):
            return None

    def records(self):
        out = []
        for c in self.cluster_ids():
            d = self.cluster_dir(c)
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                m = re.match(r"^proc(\d+)\.json$", n)
                if m:
                    r = self.load(c, int(m.group(1)))
                    if r is not None:
                        out.append(r)
        out.sort(key=lambda r: (r.cluster, r.proc))
        return out


class Record:
    """A job: its ad and the stand-in's own bookkeeping (never shown)."""

    def __init__(self, schedd, data):
        self.schedd = schedd
        self.ad = Ad(data["ad"])
        self.hidden = data.get("hidden", {})

    @property
    def cluster(self):
        return self.ad.get("ClusterId")

    @property
    def proc(self):
        return self.ad.get("ProcId")

    @property
    def status(self):
        return self.ad.get("JobStatus")

    @property
    def in_queue(self):
        return self.hidden.get("where") == "queue"

    def save(self):
        path = self.schedd.record_path(self.cluster, self.proc)
        tmp = "%s.tmp.%d" % (path, os.getpid())
        data = json.dumps({"ad": self.ad.attrs, "hidden": self.hidden}, indent=1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data.encode())
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        os.rename(tmp, path)

    def shadow_alive(self):
        pid, start = self.hidden.get("shadow_pid"), self.hidden.get("shadow_start")
        return bool(pid) and proc_start_time(pid) == start


def proc_start_time(pid):
    """The start time of a live process (None if it is gone or a zombie),
    to tell a shadow from a later process that reused its pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        fields = data[data.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):
            return None
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


# ---------------------------------------------------------------------------
# Job event log (HTCondor manual, "Job Event Log Codes"; source
# src/condor_utils/condor_event.cpp formatHeader/formatBody; notes section 2)
# ---------------------------------------------------------------------------

def event_text(code, cluster, proc, body_first, body_lines=(), when=None):
    t = time.localtime(when if when is not None else time.time())
    head = "%03d (%03d.%03d.%03d) %s %s\n" % (code, cluster, proc, 0, time.strftime("%Y-%m-%d %H:%M:%S", t),
                                               body_first)
    return head + "".join(l + "\n" for l in body_lines) + "...\n"


def append_event(path, text):
    """Append one whole event with a single write(), as the calling user."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def usage_line(utime, stime, what):
    def hms(s):
        s = int(s)
        return "%d %02d:%02d:%02d" % (s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60)
    return "\t\tUsr %s, Sys %s  -  %s" % (hms(utime), hms(stime), what)


# ---------------------------------------------------------------------------
# condor_submit (man page condor_submit; source src/condor_submit.V6/submit.cpp
# for the output and error texts, notes section 1)
# ---------------------------------------------------------------------------

class SubmitError(Exception):
    """Printed as-is to stderr, exit 1."""


# Commands turned into job attributes or otherwise acted on.
KNOWN = {
    "universe", "executable", "arguments", "args", "initialdir", "initial_dir", "iwd", "output", "error", "input",
    "log", "user_log", "getenv", "environment", "env", "request_cpus", "request_memory", "request_disk",
    "accounting_group", "accounting_group_user", "requirements", "periodic_remove", "should_transfer_files",
    "when_to_transfer_output", "transfer_executable", "transfer_input_files", "transfer_output_files",
    "notification", "notify_user", "batch_name", "priority", "kill_sig", "job_max_vacate_time", "description",
    "stream_output", "stream_error", "rank", "request_gpus",
}
# Real commands that change a job's life in ways the stand-in does not
# emulate: refused rather than silently ignored.
NOT_EMULATED = {
    "hold", "max_retries", "retry_until", "success_exit_code", "on_exit_remove", "on_exit_hold",
    "periodic_hold", "periodic_release", "periodic_vacate", "leave_in_queue", "deferral_time", "cron_minute",
    "cron_hour", "cron_day_of_month", "cron_month", "cron_day_of_week", "next_job_start_delay",
    "max_materialize", "max_idle", "log_xml", "docker_image", "container_image", "dagman_log",
    "job_lease_duration", "want_graceful_removal", "checkpoint_exit_code",
}
PREDEFINED = {"cluster", "clusterid", "process", "procid", "step", "row", "node", "dollar", "item"}


def logical_lines(text):
    """Yields (line number, text) of each command line of a configuration
    file or submit description: a trailing backslash continues a line on
    the next one (both languages), and blank and '#' lines are skipped."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i]
        i += 1
        while line.rstrip().endswith("\\") and i < len(lines):
            line = line.rstrip()[:-1] + lines[i].lstrip()
            i += 1
        s = line.strip()
        if s and not s.startswith("#"):
            yield lineno, s


def parse_submit_file(text, fname):
    """Returns [(lineno, key, value)] and [(lineno, count)] queue statements in
    order, as a list of ("cmd", lineno, key, value) / ("queue", lineno, n)."""
    items = []
    for lineno, s in logical_lines(text):
        q = re.match(r"(?i)^queue(?:\s+(.*))?$", s)
        if q:
            arg = (q.group(1) or "").strip()
            if arg == "":
                n = 1
            elif re.match(r"^\d+$", arg):
                n = int(arg)
            else:
                raise SubmitError("\nERROR: on Line %d of submit file: stand-in: only \"queue\" and \"queue N\" are "
                                  "emulated, not \"queue %s\"\n" % (lineno, arg))
            items.append(("queue", lineno, n))
            continue
        m = re.match(r"^(\+[A-Za-z_][A-Za-z0-9_]*|(?i:my)\.[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_.]*)\s*=(.*)$", s)
        if not m:
            word = s.split()[0].lower()
            if word in ("include", "if", "elif", "else", "endif", "use", "error", "warning"):
                raise SubmitError("\nERROR: on Line %d of submit file: stand-in: the %r statement is not emulated\n"
                                  % (lineno, word))
            raise SubmitError("\nERROR: on Line %d of submit file: Macro syntax error: %s\n" % (lineno, s))
        items.append(("cmd", lineno, m.group(1), m.group(2).strip()))
    return items


class Macros:
    """Submit-language macro expansion (man page condor_submit, "Submit
    Description File Macros"): $(NAME), $(NAME:default), $ENV(NAME),
    $(DOLLAR) -> '$' (not expanded again); $$(...) is left for match time."""

    def __init__(self, cmds, predefined):
        self.cmds = cmds  # lower key -> value
        self.pre = predefined
        self.used = set()

    def lookup(self, name, depth):
        low = name.lower()
        if low == "dollar":
            return "\0DOLLAR\0"
        if low in self.pre:
            return self.pre[low]
        if low in self.cmds:
            self.used.add(low)
            return self.expand(self.cmds[low], depth + 1, final=False)
        return None

    def expand(self, text, depth=0, final=True):
        if depth > 40:
            raise SubmitError("\nERROR: stand-in: macro expansion too deep in %r\n" % text)
        out, i = [], 0
        while i < len(text):
            if text.startswith("$$(", i):
                j = text.find(")", i)
                j = len(text) - 1 if j < 0 else j
                out.append(text[i:j + 1])
                i = j + 1
                continue
            m = re.compile(r"\$(ENV)?\(([A-Za-z_][A-Za-z0-9_.]*)(?::([^)]*))?\)").match(text, i)
            if m:
                if m.group(1):
                    v = os.environ.get(m.group(2), m.group(3) or "")
                else:
                    v = self.lookup(m.group(2), depth)
                    if v is None:
                        v = m.group(3) or ""
                out.append(v)
                i = m.end()
                continue
            m = re.compile(r"\$([A-Z_]+)\(").match(text, i)
            if m:
                raise SubmitError("\nERROR: stand-in: macro function $%s() is not emulated\n" % m.group(1))
            out.append(text[i])
            i += 1
        s = "".join(out)
        return s.replace("\0DOLLAR\0", "$") if final else s


def split_quoted(inner, what):
    """New-syntax arguments/environment (man page condor_submit,
    "arguments"): whitespace separates; '...' groups; '' inside single
    quotes is a literal '; "" anywhere is a literal "."""
    out, cur, i, n = [], None, 0, len(inner)
    while i < n:
        c = inner[i]
        if c == '"':
            if i + 1 < n and inner[i + 1] == '"':
                cur = (cur or "") + '"'
                i += 2
                continue
            raise SubmitError("\nERROR: %s string contains an unescaped double quote: %s\n" % (what, inner))
        if c in " \t":
            if cur is not None:
                out.append(cur)
                cur = None
            i += 1
            continue
        if c == "'":
            cur = cur or ""
            i += 1
            while True:
                if i >= n:
                    raise SubmitError("\nERROR: %s string has an unterminated single quote: %s\n" % (what, inner))
                if inner[i] == "'":
                    if i + 1 < n and inner[i + 1] == "'":
                        cur += "'"
                        i += 2
                        continue
                    i += 1
                    break
                if inner[i] == '"' and i + 1 < n and inner[i + 1] == '"':
                    cur += '"'
                    i += 2
                    continue
                cur += inner[i]
                i += 1
            continue
        cur = (cur or "") + c
        i += 1
    if cur is not None:
        out.append(cur)
    return out


def parse_arguments(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return split_quoted(v[1:-1], "Arguments")
    # old syntax: whitespace separated, \" is a literal "
    return [a.replace('\\"', '"') for a in v.split()]


def parse_environment(v):
    v = v.strip()
    env = {}
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        entries = split_quoted(v[1:-1], "Environment")
    else:
        entries = [e.strip() for e in v.split(";") if e.strip()]
    for e in entries:
        if "=" not in e or e.startswith("="):
            raise SubmitError("\nERROR: Environment entry %r is not of the form name=value\n" % e)
        k, _, val = e.partition("=")
        env[k] = val
    return env


def parse_size(v, default_unit, target_unit):
    """request_memory/request_disk: a number with an optional K/M/G/T unit
    (man page condor_submit: request_memory defaults to MiB, request_disk to
    KiB). Returns an integer in target_unit ("M" or "K")."""
    m = re.match(r"^\s*(\d+(?:\.\d*)?)\s*([KMGTkmgt])?[Bb]?\s*$", v)
    if not m:
        return None
    units = {"K": 1, "M": 1024, "G": 1024 ** 2, "T": 1024 ** 3}
    kib = float(m.group(1)) * units[(m.group(2) or default_unit).upper()]
    return int(-(-kib // units[target_unit]))


def classad_value_text(v, key, lineno):
    try:
        parse_expr(v)
    except ParseError as e:
        raise SubmitError("\nERROR: on Line %d of submit file: stand-in: %s = %s is outside the ClassAd subset the "
                          "stand-in evaluates (%s)\n" % (lineno, key, v, e))
    return v


def submit_main(argv):
    prog = "condor_submit"
    terse = False
    name = pool = batch_name = None
    files, appends, kv = [], [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "-":
            files.append(a)
        elif a.startswith("-"):
            opt = a.lstrip("-").lower()

            def val():
                nonlocal i
                if i >= len(argv):
                    die("%s: %s requires another argument\n" % (prog, a))
                i += 1
                return argv[i - 1]
            if opt in ("terse",):
                terse = True
            elif opt in ("name", "n"):
                name = val()
            elif opt in ("pool", "p"):
                pool = val()
            elif opt in ("batch-name", "batch_name"):
                batch_name = val()
            elif opt in ("append", "a"):
                appends.append(val())
            elif opt in ("file", "f"):
                files.append(val())
            elif opt in ("verbose", "v", "dry-run", "dry", "remote", "spool", "s", "addr", "interactive", "i",
                         "maxjobs", "single-cluster", "queue", "q", "dump", "debug", "disable", "d", "unused",
                         "u", "allow-crlf-script", "factory", "digest", "password", "remote-submit"):
                standin_refuse(prog, "condor_submit option %s is not emulated" % a)
            elif opt in ("help", "h"):
                print("Usage: condor_submit [options] [cmdfile]\n(test stand-in; see test/htcondor/README.md)")
                return 0
            else:
                die("condor_submit: unknown argument %s\n" % a)
        elif "=" in a:
            kv.append(a)
        else:
            files.append(a)
    del pool  # any pool is the local one (not emulated)
    if len(files) > 1:
        die("condor_submit: only one submit file may be given (test stand-in)\n")
    cfg = load_config()
    schedd = Schedd(cfg, prog)
    fname = files[0] if files else "-"
    shown = "(stdin)" if fname == "-" else fname
    try:
        if fname == "-":
            text = sys.stdin.read()
        else:
            with open(fname, encoding="utf-8", errors="replace") as f:
                text = f.read()
    except OSError as e:
        die("\nERROR: Failed to open command file (%s) (%s)\n" % (fname, e.strerror))
    try:
        items = parse_submit_file(text, shown)
        # -append lines and key=value arguments come before the queue statement
        extra = []
        for a in appends + kv:
            extra.extend(parse_submit_file(a, "(append)"))
        if extra:
            qpos = next((k for k, it in enumerate(items) if it[0] == "queue"), len(items))
            items[qpos:qpos] = [it for it in extra if it[0] == "cmd"]
            if not any(it[0] == "queue" for it in items):
                items.extend(it for it in extra if it[0] == "queue")
        if not any(it[0] == "queue" for it in items):
            raise SubmitError('\nERROR: "%s" doesn\'t contain any "queue" commands -- no jobs queued\n' % shown)
        if schedd.down():
            if name:
                raise SubmitError("\nERROR: Can't find address of schedd %s\n" % name)
            raise SubmitError("\nERROR: Can't find address of local schedd\n")
        if not schedd.name_ok(name):
            raise SubmitError("\nERROR: Can't find address of schedd %s\n" % name)
        if os.getuid() == 0:
            raise SubmitError("\nERROR: Failed to commit job submission into the queue.\n"
                              "ERROR: stand-in: jobs owned by root are refused (a real schedd will not run them)\n")
    except SubmitError as e:
        die(str(e))
    cluster = schedd.new_cluster()
    try:
        jobs = build_jobs(items, schedd, batch_name, cluster)
    except SubmitError as e:
        try:
            os.rmdir(schedd.cluster_dir(cluster))
        except OSError:
            pass
        die(str(e))
    warnings = jobs.pop()
    for w in warnings:
        sys.stderr.write(w)
    if sum(1 for it in items if it[0] == "queue") > 1:
        # condor_submit 24.0.23, seen on the real pool (test/htcondor/README.md)
        sys.stderr.write("\nWarning: Use of multiple queue statements in a single submit file is deprecated.\n"
                         "         This functionality will be removed in the 25.x feature series. To see\n"
                         "         how multiple queue statements can be converted into one visit:\n"
                         "https://htcondor.readthedocs.io/en/latest/auto-redirect.html?category=example&tag="
                         "convert-multi-queue-statements\n")
    owner_uid = os.getuid()
    owner = user_name(owner_uid)
    now = int(time.time())
    records = []
    for job in jobs:
        ad = job["ad"]
        c, p = job["cluster"], job["proc"]
        ad.set("ClusterId", c)
        ad.set("ProcId", p)
        ad.set("Owner", owner)
        ad.set("User", "%s@%s" % (owner, schedd.name))
        ad.set("QDate", now)
        ad.set("EnteredCurrentStatus", now)
        ad.set("JobStatus", IDLE)
        ad.set("LastJobStatus", 0)
        ad.set("NumJobStarts", 0)
        ad.set("JobRunCount", 0)
        ad.set("CompletionDate", 0)
        ad.set("GlobalJobId", "%s#%d.%d#%d" % (schedd.name, c, p, now))
        rec = Record(schedd, {"ad": {}, "hidden": {}})
        rec.ad = ad
        rec.hidden = {"where": "queue", "owner_uid": owner_uid, "args": job["args"], "env": job["env"],
                      "getenv_env": job["getenv_env"], "kill_sig": job["kill_sig"]}
        rec.save()
        records.append(rec)
    for rec in records:
        log = rec.ad.get("UserLog", None)
        if log:
            append_event(log, event_text(0, rec.cluster, rec.proc, "Job submitted from host: %s" % schedd.sinful))
    for rec in records:
        spawn_shadow(schedd, rec.cluster, rec.proc)
    # One answer per cluster, in order (a new executable starts a new one).
    per_cluster = []
    for rec in records:
        if per_cluster and per_cluster[-1][0] == rec.cluster:
            per_cluster[-1][1] += 1
        else:
            per_cluster.append([rec.cluster, 1])
    if terse:
        for c, n in per_cluster:
            sys.stdout.write("%d.%d - %d.%d\n" % (c, 0, c, n - 1))
    else:
        sys.stdout.write("Submitting job(s)" + "." * len(records) + "\n")
        for c, n in per_cluster:
            sys.stdout.write("%d job(s) submitted to cluster %d.\n" % (n, c))
        sys.stderr.write("To monitor your job(s), run: condor_watch_q -clusters %s\n"
                         % ",".join(str(c) for c, _ in per_cluster))
    return 0


def build_jobs(items, schedd, batch_name, cluster):
    """Turn parsed submit items into job dicts, validating like condor_submit.
    The last element of the returned list is the list of warnings. A queue
    statement after the executable changed starts a new cluster (condor_submit
    24.0.23 on the real pool: one block per job script gives one cluster per
    job; the same executable again stays in the cluster); on an error the
    clusters allocated here are given back."""
    extra = []
    try:
        return build_jobs_in(items, schedd, batch_name, cluster, extra)
    except SubmitError:
        for c in extra:
            try:
                os.rmdir(schedd.cluster_dir(c))
            except OSError:
                pass
        raise


def build_jobs_in(items, schedd, batch_name, cluster, extra):
    cmds, keys, lines = {}, {}, {}
    jobs, warnings = [], []
    cwd = os.getcwd()
    proc = 0
    exe = None
    for it in items:
        if it[0] == "cmd":
            _, lineno, key, value = it
            low = key.lower()
            if low.startswith("+"):
                low = "my." + low[1:]
            cmds[low], keys[low], lines[low] = value, key, lineno
            if low in NOT_EMULATED:
                raise SubmitError("\nERROR: on Line %d of submit file: stand-in: submit command %s is not emulated\n"
                                  % (lineno, key))
            continue
        _, qline, count = it
        if exe is not None and cmds.get("executable") != exe and count > 0:
            cluster = schedd.new_cluster()
            extra.append(cluster)
            proc = 0
        exe = cmds.get("executable")
        for _ in range(count):
            pre = {"cluster": str(cluster), "clusterid": str(cluster), "process": str(proc), "procid": str(proc),
                   "step": "0", "row": "0", "node": "0", "item": ""}
            mac = Macros(cmds, pre)
            job = make_job(cmds, keys, lines, mac, qline, cwd, batch_name, proc)
            job["cluster"], job["proc"] = cluster, proc
            jobs.append(job)
            proc += 1
            # unused-macro warnings (submit_utils warn_unused), once
            if len(jobs) == 1:
                for low, key in keys.items():
                    if low not in KNOWN and not low.startswith("my.") and low not in mac.used and \
                            low not in PREDEFINED:
                        warnings.append("\nWARNING: the line '%s = %s' was unused by condor_submit. Is it a typo?\n"
                                        % (key, cmds[low]))
    jobs.append(warnings)
    return jobs


def make_job(cmds, keys, lines, mac, qline, cwd, batch_name, proc):
    def get(*names):
        for n in names:
            if n in cmds:
                return mac.expand(cmds[n])
        return None

    def line_of(*names):
        for n in names:
            if n in lines:
                return lines[n]
        return qline

    ad = Ad()
    univ = (get("universe") or "vanilla").strip()
    if univ.lower() != "vanilla" and univ != "5":
        if univ.lower() in ("scheduler", "local", "grid", "java", "vm", "parallel", "docker", "container",
                            "standard", "globus"):
            raise SubmitError("\nERROR: on Line %d of submit file: stand-in: only the vanilla universe is emulated, "
                              "not %s\n" % (line_of("universe"), univ))
        raise SubmitError("\nERROR: I don't know about the '%s' universe.\n" % univ)
    ad.set("JobUniverse", 5)
    iwd = get("initialdir", "initial_dir", "iwd")
    iwd = os.path.normpath(os.path.join(cwd, iwd.strip())) if iwd and iwd.strip() else cwd
    if not os.path.isdir(iwd):
        raise SubmitError("\nERROR: No such directory: %s\n" % iwd)
    ad.set("Iwd", iwd)

    def path(v, base):
        return os.path.normpath(os.path.join(base, v.strip()))
    exe = get("executable")
    if not exe or not exe.strip():
        raise SubmitError("\nERROR: No 'executable' parameter was provided\n")
    # A relative executable is relative to the directory condor_submit runs
    # in (man page condor_submit, "executable"); the other files to Iwd.
    exe = path(exe, cwd)
    try:
        st = os.stat(exe)
    except OSError as e:
        raise SubmitError("\nERROR: Can't access executable file %s: %s\n" % (exe, e.strerror))
    if st.st_size == 0:
        raise SubmitError("\nERROR: Executable file %s has zero length\n" % exe)
    ad.set("Cmd", exe)
    args = []
    a = get("arguments", "args")
    if a is not None:
        try:
            args = parse_arguments(a)
        except SubmitError:
            raise
        ad.set("Arguments", " ".join(("'" + x.replace("'", "''") + "'") if (not x or re.search(r"[\s'\"]", x))
                                     else x for x in args))
    for key, attr in (("output", "Out"), ("error", "Err"), ("input", "In")):
        v = get(key)
        if v and v.strip():
            ad.set(attr, path(v, iwd))
        else:
            ad.set(attr, "/dev/null")
    log = get("log", "user_log")
    if log and log.strip():
        log = path(log, iwd)
        try:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.close(fd)
        except OSError as e:
            raise SubmitError('\nERROR: Invalid log file: "%s" (%s)\n' % (log, e.strerror))
        ad.set("UserLog", log)
    getenv = (get("getenv") or "false").strip()
    getenv_env = {}
    if getenv.lower() in ("true", "yes", "t", "y", "1"):
        getenv_env = dict(os.environ)
        ad.set("GetEnv", True)
    elif getenv.lower() in ("false", "no", "f", "n", "0", ""):
        ad.set("GetEnv", False)
    else:
        import fnmatch
        pats = [p for p in re.split(r"[\s,]+", getenv) if p]
        getenv_env = {k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, p) for p in pats)}
        ad.set("GetEnv", getenv)
    env = {}
    e = get("environment", "env")
    if e is not None:
        env = parse_environment(e)
        ad.set("Environment", " ".join("%s=%s" % (k, v) if not re.search(r"[\s'\"]", v)
                                       else "%s='%s'" % (k, v.replace("'", "''").replace('"', '""'))
                                       for k, v in env.items()))
    cpus = (get("request_cpus") or "1").strip()
    if not re.match(r"^\d+$", cpus):
        raise SubmitError("\nERROR: on Line %d of submit file: request_cpus = %s: stand-in: only whole numbers are "
                          "emulated\n" % (line_of("request_cpus"), cpus))
    ad.set("RequestCpus", int(cpus))
    # Stand-in defaults; HTCondor's are JOB_DEFAULT_REQUESTMEMORY and
    # JOB_DEFAULT_REQUESTDISK.
    for key, attr, unit, default in (("request_memory", "RequestMemory", "M", 128),
                                     ("request_disk", "RequestDisk", "K", 1024)):
        value = get(key)
        if value is None:
            ad.set(attr, default)
            continue
        size = parse_size(value, unit, unit)
        if size is None:
            ad.set_expr(attr, classad_value_text(value, key, line_of(key)))
        else:
            ad.set(attr, size)
    g = get("accounting_group")
    if g and g.strip():
        g = g.strip()
        u = (get("accounting_group_user") or user_name(os.getuid())).strip()
        ad.set("AcctGroup", g)
        ad.set("AcctGroupUser", u)
        ad.set("AccountingGroup", "%s.%s" % (g, u))
    req = get("requirements")
    if req and req.strip():
        ad.set_expr("Requirements", req.strip())  # stored, never matched
    pr = get("periodic_remove")
    if pr and pr.strip():
        ad.set_expr("PeriodicRemove", classad_value_text(pr.strip(), "periodic_remove", line_of("periodic_remove")))
    for key, attr in (("should_transfer_files", "ShouldTransferFiles"),
                      ("when_to_transfer_output", "WhenToTransferOutput"),
                      ("notification", "JobNotification"), ("notify_user", "NotifyUser"),
                      ("description", "JobDescription"), ("transfer_input_files", "TransferInput"),
                      ("transfer_output_files", "TransferOutput")):
        v = get(key)
        if v is not None and v.strip():
            ad.set(attr, v.strip().upper() if key in ("should_transfer_files", "when_to_transfer_output") else v.strip())
    bn = batch_name if batch_name is not None else get("batch_name")
    if bn:
        ad.set("JobBatchName", bn.strip())
    prio = get("priority")
    if prio and re.match(r"^-?\d+$", prio.strip()):
        ad.set("JobPrio", int(prio))
    else:
        ad.set("JobPrio", 0)
    ks = (get("kill_sig") or "SIGTERM").strip().upper()
    if not ks.startswith("SIG") and not ks.isdigit():
        ks = "SIG" + ks
    kill_sig = int(ks) if ks.isdigit() else getattr(signal, ks, signal.SIGTERM)
    ad.set("KillSig", ks)
    # custom attributes: +Name / MY.Name hold ClassAd expressions
    for low, key in keys.items():
        if low.startswith("my."):
            attr = key[1:] if key.startswith("+") else key.split(".", 1)[1]
            v = mac.expand(cmds[low])
            ad.set_expr(attr, classad_value_text(v, key, lines[low]))
    return {"ad": ad, "args": args, "env": env, "getenv_env": getenv_env, "kill_sig": int(kill_sig)}


def spawn_shadow(schedd, cluster, proc):
    """Start the job's "shadow": a detached process (double fork, new
    session, stdio on /dev/null, no inherited descriptors) of the same user,
    which drives the job's life and survives condor_submit."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        os.waitpid(pid, 0)
        # wait until the shadow has registered itself in the job record (or
        # died): condor_rm right after condor_submit then finds it
        try:
            os.read(r, 1)
        finally:
            os.close(r)
        return
    try:
        os.close(r)
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, w)
        os.closerange(w + 1, 65536)
        os.chdir("/")
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        shadow = Shadow(schedd, cluster, proc)
        try:
            shadow.run(ready_fd=w)
        finally:
            # a shadow that fails (its spool removed under it, ...) takes
            # its job with it rather than leaving it running unowned
            if shadow.job is not None:
                try:
                    os.killpg(shadow.job, signal.SIGKILL)
                except OSError:
                    pass
    except BaseException:
        try:
            import traceback
            with open(os.path.join(schedd.cluster_dir(cluster), "shadow.%d.log" % proc), "a") as f:
                traceback.print_exc(file=f)
        except OSError:
            pass
    os._exit(0)


# ---------------------------------------------------------------------------
# The shadow: one per job, running as the job's owner. It is the only writer
# of the job record and of the events after 000; condor_rm/hold/release
# write request files into the cluster directory after their ownership check
# and wait until the shadow has applied them.
# ---------------------------------------------------------------------------

class Shadow:
    def __init__(self, schedd, cluster, proc):
        self.s = schedd
        self.cluster, self.proc = cluster, proc
        self.rec = schedd.load(cluster, proc)
        self.dir = schedd.cluster_dir(cluster)
        self.job = None  # pid of the running job (its process group leader)
        self.last_pid = 0
        self.job_started = 0
        self.image_logged = False
        self.total_ru = [0.0, 0.0]
        self.host = schedd.name

    def debug(self, msg):
        try:
            with open(os.path.join(self.dir, "shadow.%d.log" % self.proc), "a") as f:
                f.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
        except OSError:
            pass

    def log(self, code, first, lines=()):
        path = self.rec.ad.get("UserLog", None)
        if path:
            try:
                append_event(path, event_text(code, self.cluster, self.proc, first, lines))
            except OSError as e:
                self.debug("cannot write the user log %s: %s" % (path, e))

    def set_status(self, st):
        ad = self.rec.ad
        ad.set("LastJobStatus", ad.get("JobStatus", 0))
        ad.set("JobStatus", st)
        ad.set("EnteredCurrentStatus", int(time.time()))

    def run(self, ready_fd=None):
        rec = self.rec
        rec.hidden["shadow_pid"] = os.getpid()
        rec.hidden["shadow_start"] = proc_start_time(os.getpid())
        rec.save()
        if ready_fd is not None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
        self.debug("shadow %d for %d.%d" % (os.getpid(), self.cluster, self.proc))
        match_at = time.time() + self.s.match_delay
        next_periodic = time.time() + self.s.periodic_interval
        while True:
            for req in self.requests():
                action = req.get("action")
                if action == "remove":
                    self.remove(req["reason"], by_request=True)
                    return
                if action == "hold":
                    self.hold(req["reason"], HOLD_USER_REQUEST, req.get("subcode", 0), kill=True)
                elif action == "release" and rec.status == HELD:
                    self.set_status(IDLE)
                    rec.ad.set("LastHoldReason", rec.ad.get("HoldReason", ""))
                    rec.ad.set("LastHoldReasonCode", rec.ad.get("HoldReasonCode", 0))
                    rec.ad.set("LastHoldReasonSubCode", rec.ad.get("HoldReasonSubCode", 0))
                    for a in ("HoldReason", "HoldReasonCode", "HoldReasonSubCode"):
                        rec.ad.delete(a)
                    rec.ad.set("ReleaseReason", req["reason"])
                    rec.save()
                    self.log(13, "Job was released.", ["\t" + req["reason"]])
                    match_at = time.time() + self.s.match_delay
            if self.job is not None:
                pid, status, ru = os.wait4(self.job, os.WNOHANG)
                if pid:
                    self.terminated(status, ru)
                    return
                if not self.image_logged and time.time() - self.job_started >= 1.0:
                    self.image_size()
            now = time.time()
            if rec.status == IDLE and now >= match_at:
                self.execute()
            if now >= next_periodic:
                next_periodic = now + self.s.periodic_interval
                expr = rec.ad.raw("PeriodicRemove")
                if expr is not None and rec.status in (IDLE, RUNNING, HELD):
                    try:
                        tree = parse_expr(expr)
                    except ParseError:
                        tree = None
                    if tree is not None and rec.ad.matches(tree):
                        # user_job_policy.cpp FiringReason()
                        self.remove("The job attribute PeriodicRemove expression '%s' evaluated to TRUE"
                                    % unparse(tree))
                        return
            time.sleep(POLL)

    def requests(self):
        try:
            names = sorted(n for n in os.listdir(self.dir) if n.startswith("req.%d." % self.proc))
        except OSError:
            return []
        out = []
        for n in names:
            p = os.path.join(self.dir, n)
            try:
                with open(p) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                continue
            try:
                os.unlink(p)
            except OSError:
                pass
        return out

    def kill_job(self, soft):
        if self.job is None:
            return None
        pid = self.job
        sig = self.rec.hidden.get("kill_sig", signal.SIGTERM) if soft else signal.SIGKILL
        try:
            os.killpg(pid, sig)
        except OSError:
            pass
        deadline = time.time() + (self.s.vacate_time if soft else 5)
        while True:
            got, status, ru = os.wait4(pid, os.WNOHANG)
            if got:
                break
            if time.time() >= deadline:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                got, status, ru = os.wait4(pid, 0)
                break
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)  # leftovers of the job's process group
        except OSError:
            pass
        self.job = None
        return ru

    def evicted(self):
        """A real pool logs an eviction (004, without a reason line) when a
        running job is held or removed on request, before the 012 or 009."""
        self.log(4, "Job was evicted.", ["\t(0) Job was not checkpointed.",
                                         usage_line(0, 0, "Run Remote Usage"), usage_line(0, 0, "Run Local Usage"),
                                         "\t0  -  Run Bytes Sent By Job", "\t0  -  Run Bytes Received By Job"])

    def remove(self, reason, by_request=False):
        rec = self.rec
        self.set_status(REMOVED)
        rec.ad.set("RemoveReason", reason)
        rec.save()  # the schedd marks the job X at once; the abort event follows the cleanup
        running = self.job is not None
        self.kill_job(soft=True)
        if running and by_request:
            self.evicted()
        self.log(9, "Job was aborted.", ["\t" + reason])
        self.to_history()

    def hold(self, reason, code, subcode, kill):
        rec = self.rec
        if rec.status in (HELD, REMOVED, COMPLETED):
            return
        self.set_status(HELD)
        rec.ad.set("HoldReason", reason)
        rec.ad.set("HoldReasonCode", code)
        rec.ad.set("HoldReasonSubCode", subcode)
        rec.ad.set("NumHolds", rec.ad.get("NumHolds", 0) + 1)
        rec.save()
        if kill and self.job is not None:
            # condor_hold man page: "A currently running job that is placed
            # in the hold state by condor_hold is sent a hard kill signal."
            self.kill_job(soft=False)
            self.evicted()
        self.log(12, "Job was held.", ["\t" + reason, "\tCode %d Subcode %d" % (code, subcode)])

    def to_history(self):
        rec = self.rec
        rec.hidden["where"] = "history"
        rec.hidden["history_time"] = time.time()
        rec.save()

    def slot(self):
        return "slot1_1@%s" % self.host

    def execute(self):
        rec = self.rec
        ad = rec.ad
        iwd = ad.get("Iwd")
        exe = ad.get("Cmd")
        args = rec.hidden.get("args", [])
        env = dict(rec.hidden.get("getenv_env", {}))
        env.update(rec.hidden.get("env", {}))
        scratch = os.path.join(self.dir, "scratch.%d" % self.proc)
        try:
            os.makedirs(scratch, 0o700, exist_ok=True)
        except OSError:
            scratch = iwd
        # what a starter adds to every job's environment (manual, "Services
        # for Running Jobs" -> "Environment Variables")
        env.setdefault("_CONDOR_SCRATCH_DIR", scratch)
        env.setdefault("_CONDOR_SLOT", "slot1_1")
        env.setdefault("_CONDOR_JOB_IWD", iwd)
        env.setdefault("BATCH_SYSTEM", "HTCondor")
        env.setdefault("OMP_NUM_THREADS", str(ad.get("RequestCpus", 1)))
        for k in ("TMPDIR", "TEMP", "TMP"):
            env.setdefault(k, scratch)
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            stage = ("fork", "")
            try:
                os.close(r)
                os.setsid()  # the job gets its own process group
                stage = ("iwd", iwd)
                os.chdir(iwd)
                stage = ("input", ad.get("In", "/dev/null"))
                fin = os.open(stage[1], os.O_RDONLY)
                out_path, err_path = ad.get("Out", "/dev/null"), ad.get("Err", "/dev/null")
                # Output files are truncated at each start (the starter opens
                # them O_TRUNC); the same file for both is opened once and
                # shared, so stdout and stderr interleave as written.
                stage = ("output", out_path)
                fout = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                if err_path == out_path:
                    ferr = fout
                else:
                    stage = ("error", err_path)
                    ferr = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fin, 0)
                os.dup2(fout, 1)
                os.dup2(ferr, 2)
                os.closerange(3, w)  # w is close-on-exec: it tells the shadow whether exec worked
                os.closerange(w + 1, 65536)
                for s in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGTERM):
                    signal.signal(s, signal.SIG_DFL)
                stage = ("exec", exe)
                os.execve(exe, [exe] + list(args), env)
            except OSError as e:
                try:
                    os.write(w, json.dumps({"stage": stage[0], "path": stage[1], "errno": e.errno}).encode())
                except Exception:
                    pass
            except BaseException:
                pass
            os._exit(127)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            data += chunk
        os.close(r)
        if data:
            os.waitpid(pid, 0)
            fail = json.loads(data.decode())
            en = fail["errno"]
            msg = os.strerror(en)
            self.debug("job start failed: %s" % fail)
            # The starter's failures put the job on hold ("Hold Reason
            # Codes": 6 FailedToCreateProcess, 7 UnableToOpenOutput, 8
            # UnableToOpenInput, 14 IwdError; subcode = errno).
            if fail["stage"] == "exec":
                if args:
                    why = "Failed to execute '%s' with arguments %s: (errno=%d: '%s')" % (
                        exe, " ".join(args), en, msg)
                else:
                    why = "Failed to execute '%s': (errno=%d: '%s')" % (exe, en, msg)
                code = HOLD_FAILED_TO_CREATE_PROCESS
            elif fail["stage"] == "iwd":
                why = "Failed to change to the initial working directory '%s': %s (errno %d)" % (fail["path"], msg, en)
                code = HOLD_IWD_ERROR
            elif fail["stage"] == "input":
                why = "Failed to open '%s' as standard input: %s (errno %d)" % (fail["path"], msg, en)
                code = HOLD_UNABLE_TO_OPEN_INPUT
            else:
                why = "Failed to open '%s' as standard %s: %s (errno %d)" % (fail["path"], fail["stage"], msg, en)
                code = HOLD_UNABLE_TO_OPEN_OUTPUT
            self.hold("Error from %s: %s" % (self.slot(), why), code, en, kill=False)
            return
        now = int(time.time())
        self.job = pid
        self.last_pid = pid
        self.job_started = time.time()
        self.image_logged = False
        self.set_status(RUNNING)
        if ad.get("JobStartDate", None) is None:
            ad.set("JobStartDate", now)
        ad.set("JobCurrentStartDate", now)
        ad.set("NumJobStarts", ad.get("NumJobStarts", 0) + 1)
        ad.set("JobRunCount", ad.get("JobRunCount", 0) + 1)
        ad.set("RemoteHost", self.slot())
        ad.set("LastRemoteHost", self.slot())
        rec.hidden["job_pid"] = pid
        rec.save()
        self.log(1, "Job executing on host: %s" % self.s.startd_sinful, ["\tSlotName: %s" % self.slot()])
        self.debug("job %d started: %s %s" % (pid, exe, args))

    def image_size(self):
        self.image_logged = True
        rss = 0
        try:
            with open("/proc/%d/status" % self.job) as f:
                for l in f:
                    if l.startswith("VmRSS:"):
                        rss = int(l.split()[1])
        except (OSError, ValueError):
            return
        self.log(6, "Image size of job updated: %d" % max(rss, 1),
                 ["\t%d  -  MemoryUsage of job (MB)" % ((rss + 1023) // 1024), "\t%d  -  ResidentSetSize of job (KB)" % rss])

    def terminated(self, status, ru):
        rec, ad = self.rec, self.rec.ad
        self.job = None
        try:
            os.killpg(self.last_pid, signal.SIGKILL)  # the starter kills what the job left running
        except OSError:
            pass
        self.total_ru[0] += ru.ru_utime
        self.total_ru[1] += ru.ru_stime
        now = int(time.time())
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            ad.set("ExitBySignal", True)
            ad.set("ExitSignal", sig)
            ad.delete("ExitCode")
            first = ["\t(0) Abnormal termination (signal %d)" % sig]
            if os.WCOREDUMP(status):
                first.append("\t(1) Corefile in: %s" % os.path.join(ad.get("Iwd"), "core.%d" % self.last_pid))
            else:
                first.append("\t(0) No core file")
        else:
            code = os.WEXITSTATUS(status)
            ad.set("ExitBySignal", False)
            ad.set("ExitCode", code)
            ad.delete("ExitSignal")
            first = ["\t(1) Normal termination (return value %d)" % code]
        ad.set("CompletionDate", now)
        ad.set("RemoteWallClockTime", float(now - ad.get("JobCurrentStartDate", now)))
        self.set_status(COMPLETED)
        rec.save()
        body = first + [
            usage_line(ru.ru_utime, ru.ru_stime, "Run Remote Usage"),
            usage_line(0, 0, "Run Local Usage"),
            usage_line(self.total_ru[0], self.total_ru[1], "Total Remote Usage"),
            usage_line(0, 0, "Total Local Usage"),
            "\t0  -  Run Bytes Sent By Job",
            "\t0  -  Run Bytes Received By Job",
            "\t0  -  Total Bytes Sent By Job",
            "\t0  -  Total Bytes Received By Job",
            "\tPartitionable Resources :    Usage  Request Allocated",
            "\t   Cpus                 :                 %d         %d" % (ad.get("RequestCpus", 1),
                                                                        ad.get("RequestCpus", 1)),
            "\t   Disk (KB)            :        0 %8d %9d" % (ad.get("RequestDisk", 0), ad.get("RequestDisk", 0)),
            "\t   Memory (MB)          : %8d %8d %9d" % ((ru.ru_maxrss + 1023) // 1024, ad.get("RequestMemory", 0),
                                                           ad.get("RequestMemory", 0)),
        ]
        if self.s.down():
            # A real pool writes no terminate event while its schedd is
            # down; when it is back, the shadow reconnects and 022, 023
            # and 005 arrive together.
            while self.s.down():
                time.sleep(0.2)
            # As 24.0.23 wrote them: indented with four blanks, not a tab.
            self.log(22, "Job disconnected, attempting to reconnect",
                     ["    Local schedd and job shadow died, schedd now running again",
                      "    Trying to reconnect to %s %s" % (self.slot(), self.s.startd_sinful)])
            self.log(23, "Job reconnected to %s" % self.slot(),
                     ["    startd address: %s" % self.s.startd_sinful, "    starter address: %s" % self.s.startd_sinful])
        self.log(5, "Job terminated.", body)
        self.to_history()


# ---------------------------------------------------------------------------
# condor_q / condor_history (man pages condor_q, condor_history; source
# src/condor_q.V6/queue.cpp, src/condor_tools/history.cpp; notes section 3)
# ---------------------------------------------------------------------------

def parse_job_arg(a):
    m = re.match(r"^(\d+)(?:\.(\d+))?$", a)
    if m:
        return int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None)
    return None


def format_value(v, quote_strings):
    if isinstance(v, str) and not quote_strings:
        return v
    return literal(v)


class AutoFormat:
    def __init__(self, quals, exprs):
        bad = set(quals) - set("jtlVrng,")
        if bad:
            raise ValueError("stand-in: -af qualifier(s) %s not emulated" % "".join(sorted(bad)))
        self.q = quals
        self.exprs = exprs
        self.trees = []
        for x in exprs:
            try:
                self.trees.append(parse_expr(x))
            except ParseError:
                self.trees.append(None)

    def line(self, rec):
        q = self.q
        fields = []
        if "j" in q:
            fields.append(("ID", "%d.%d" % (rec.cluster, rec.proc)))
        for x, tree in zip(self.exprs, self.trees):
            if "r" in q and tree is not None and tree[0] == "attr":
                raw = rec.ad.raw(x)
                v = raw if raw is not None else "undefined"
            elif "r" in q:
                v = x
            elif tree is None:
                v = "undefined"
            else:
                v = format_value(rec.ad.eval(tree), "V" in q)
            fields.append((x, v))
        parts = [("%s = %s" % (n, v)) if "l" in q else v for n, v in fields]
        if "," in q:
            parts = [p + "," for p in parts]
        if "n" in q:
            out = "".join(p + "\n" for p in parts)
        else:
            out = ("\t" if "t" in q else " ").join(parts) + "\n"
        if "g" in q:
            out += "\n"
        return out


def print_long(rec):
    for name, text in sorted(rec.ad.attrs.items(), key=lambda kv: kv[0].lower()):
        sys.stdout.write("%s = %s\n" % (name, text))
    sys.stdout.write("\n")


def fmt_date(t):
    return time.strftime("%m/%d %H:%M", time.localtime(t))


def fmt_dur(s):
    s = max(0, int(s))
    return "%d+%02d:%02d:%02d" % (s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60)


def query_args(prog, argv, history):
    o = {"allusers": False, "name": None, "pool": None, "constraints": [], "af": None, "long": False,
         "ids": [], "owners": [], "limit": 0, "nobatch": False, "forwards": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("-") and len(a) > 1:
            opt = a.lstrip("-")
            low = opt.lower()

            def val(what="another parameter"):
                nonlocal i
                if i >= len(argv):
                    die("Error: Argument %s requires %s\n" % (a, what))
                i += 1
                return argv[i - 1]
            if low.startswith("af") or low.startswith("autoformat"):
                quals = opt.split(":", 1)[1] if ":" in opt else ""
                exprs = []
                while i < len(argv) and not (argv[i].startswith("-") and len(argv[i]) > 1):
                    exprs.append(argv[i])
                    i += 1
                if not exprs:
                    die("Error: Argument %s requires at last one attribute parameter\n" % a)
                try:
                    o["af"] = AutoFormat(quals, exprs)
                except ValueError as e:
                    standin_refuse(prog, str(e))
            elif low == "allusers" and not history:
                o["allusers"] = True
            elif low in ("name", "n"):
                o["name"] = val("name of a remote schedd")
            elif low in ("pool", "p"):
                o["pool"] = val("name of a pool")
            elif low in ("constraint", "const", "cons", "c", "constr"):
                o["constraints"].append(val())
            elif low in ("long", "l"):
                o["long"] = True
            elif low in ("nobatch",) and not history:
                o["nobatch"] = True
            elif low in ("batch", "wide", "w") or low.startswith("wide:"):
                pass
            elif history and low in ("limit", "lim", "match", "m"):
                v = val("a number value")
                try:
                    o["limit"] = int(v)
                except ValueError:
                    o["limit"] = 0
            elif history and low in ("forwards", "forw", "nobackwards"):
                o["forwards"] = True
            elif history and low in ("backwards", "b"):
                o["forwards"] = False
            elif low in ("help", "h"):
                print("Usage: %s [options] [restrictions]\n(test stand-in; see test/htcondor/README.md)" % prog)
                sys.exit(0)
            elif low in ("json", "xml", "format", "f", "print-format", "pr", "analyze", "better-analyze",
                         "run", "hold", "totals", "dag", "global", "submitter", "jobads", "userlog", "file",
                         "io", "cputime", "grid", "goodput", "attributes", "attr", "stream-results", "debug",
                         "completedsince", "since", "scanlimit", "dir", "epochs", "ads", "schedd-constraint"):
                standin_refuse(prog, "%s option %s is not emulated" % (prog, a))
            else:
                die("Error: unknown argument %s\n" % a if not history else
                    "Usage: %s [source] [restriction-list] [options]\n" % prog)
        else:
            j = parse_job_arg(a)
            if j is not None:
                o["ids"].append(j)
            elif re.match(r"^[A-Za-z_][A-Za-z0-9_.@-]*$", a):
                o["owners"].append(a)
            else:
                die("Error: Argument %d (%s) must be a jobid or user\n" % (i, a))
    return o


def match_filter(o, prog, history):
    """The restriction list: job ids OR'ed, owners OR'ed, -constraint AND'ed
    (man page condor_q, "Restrictions"; history.cpp ORs ids and owners)."""
    trees = []
    for c in o["constraints"]:
        try:
            trees.append(parse_expr(c))
        except ParseError:
            if history:
                die("Error:  could not parse constraint %s\n" % c)
            die('\n-- Parse error in constraint expression "%s"\n' % c)

    def ok(rec):
        if history:
            sel = o["ids"] or o["owners"]
            if sel and not (any(rec.cluster == c and (p is None or rec.proc == p) for c, p in o["ids"]) or
                            any(rec.ad.get("Owner", "") == w for w in o["owners"])):
                return False
        else:
            if o["ids"] and not any(rec.cluster == c and (p is None or rec.proc == p) for c, p in o["ids"]):
                return False
            if o["owners"] and not any(rec.ad.get("Owner", "") == w for w in o["owners"]):
                return False
        return all(rec.ad.matches(t) for t in trees)
    return ok


def q_main(argv):
    prog = "condor_q"
    o = query_args(prog, argv, history=False)
    cfg = load_config()
    schedd = Schedd(cfg, prog)
    if not schedd.name_ok(o["name"]):
        die("Error: Can't find address for schedd %s\n" % o["name"])
    ok = match_filter(o, prog, history=False)
    if schedd.down() and not schedd.crashed():
        die("Error: Can't find address for schedd %s\n" % schedd.name)
    if schedd.down():
        die("\n-- Failed to fetch ads from: %s : %s\nCEDAR:6001:Failed to connect to %s\n"
            % (schedd.sinful, schedd.name, schedd.sinful))
    me = user_name(os.getuid())
    # Only the caller's jobs by default, unless ids/owners or -allusers are
    # given or the caller is a queue superuser (root).
    only_mine = not (o["allusers"] or o["ids"] or o["owners"] or os.getuid() == 0)
    recs = [r for r in schedd.records() if r.in_queue and (not only_mine or r.ad.get("Owner", "") == me) and ok(r)]
    if o["af"]:
        for r in recs:
            sys.stdout.write(o["af"].line(r))
        return 0
    if o["long"]:
        for r in recs:
            print_long(r)
        return 0
    w = sys.stdout.write
    w("\n\n-- Schedd: %s : %s @ %s\n" % (schedd.name, schedd.sinful, time.strftime("%m/%d/%y %H:%M:%S")))
    if o["nobatch"]:
        w(" ID      OWNER            SUBMITTED     RUN_TIME ST PRI SIZE CMD\n")
        for r in recs:
            run = (time.time() - r.ad.get("JobCurrentStartDate", time.time())) if r.status == RUNNING else 0
            w("%-7s %-14s %s %s %-2s %-3d %-4.1f %s\n" % (
                "%d.%d" % (r.cluster, r.proc), r.ad.get("Owner", ""), fmt_date(r.ad.get("QDate", 0)),
                fmt_dur(run), STATUS_LETTER.get(r.status, "?"), r.ad.get("JobPrio", 0), 0.0,
                os.path.basename(r.ad.get("Cmd", ""))))
    else:
        w("OWNER BATCH_NAME    SUBMITTED   DONE   RUN    IDLE   HOLD  TOTAL JOB_IDS\n")
        batches = {}
        for r in recs:
            batches.setdefault((r.ad.get("Owner", ""), r.cluster), []).append(r)
        for (owner, c), rs in batches.items():
            def cnt(st):
                n = sum(1 for x in rs if x.status == st)
                return str(n) if n else "_"
            name = r.ad.get("JobBatchName", None) or "ID: %d" % c
            ids = "%d.%d" % (c, rs[0].proc) if len(rs) == 1 else "%d.%d-%d" % (c, rs[0].proc, rs[-1].proc)
            w("%-5s %-12s %s %6s %6s %6s %6s %6d %s\n" % (owner, name, fmt_date(rs[0].ad.get("QDate", 0)),
                                                          cnt(COMPLETED), cnt(RUNNING), cnt(IDLE), cnt(HELD),
                                                          len(rs), ids))
    def totals(rs):
        c = {s: sum(1 for r in rs if r.status == s) for s in (1, 2, 3, 4, 5, 7)}
        return ("%d jobs; %d completed, %d removed, %d idle, %d running, %d held, %d suspended"
                % (len(rs), c[4], c[3], c[1], c[2], c[5], c[7]))
    w("\nTotal for query: %s \n" % totals(recs))
    allq = [r for r in schedd.records() if r.in_queue]
    w("Total for %s: %s \n" % (me, totals([r for r in allq if r.ad.get("Owner", "") == me])))
    w("Total for all users: %s\n\n" % totals(allq))
    return 0


def history_main(argv):
    prog = "condor_history"
    o = query_args(prog, argv, history=True)
    cfg = load_config()
    schedd = Schedd(cfg, prog)
    ok = match_filter(o, prog, history=True)
    # Without -name/-pool condor_history reads the local history file
    # (history.cpp usage: "If neither -pool, -name, -userlog or -file is
    # specified, then the local history file is used"), so it works while
    # the schedd is down; the remote query needs the schedd.
    if o["name"] is not None or o["pool"] is not None:
        if not schedd.name_ok(o["name"]):
            die("Unable to locate remote schedd (name=%s, pool=%s).\n" % (o["name"] or "", o["pool"] or ""))
        if schedd.down():
            die("Unable to send history command to remote schedd;\n"
                "Typically, either the schedd is not responding, does not authorize you, or does not support "
                "remote history.\n")
    recs = [r for r in schedd.records() if r.hidden.get("where") == "history" and ok(r)]
    recs.sort(key=lambda r: (r.hidden.get("history_time", 0), r.cluster, r.proc), reverse=not o["forwards"])
    if o["limit"] > 0:
        recs = recs[:o["limit"]]
    if o["af"]:
        for r in recs:
            sys.stdout.write(o["af"].line(r))
        return 0
    if o["long"]:
        for r in recs:
            print_long(r)
        return 0
    w = sys.stdout.write
    w(" ID     OWNER          SUBMITTED   RUN_TIME     ST COMPLETED   CMD\n")
    for r in recs:
        done = r.ad.get("CompletionDate", 0) or r.ad.get("EnteredCurrentStatus", 0)
        w(" %-6s %-14s %s %s %-2s %s %s\n" % ("%d.%d" % (r.cluster, r.proc), r.ad.get("Owner", ""),
                                              fmt_date(r.ad.get("QDate", 0)),
                                              fmt_dur(r.ad.get("RemoteWallClockTime", 0)),
                                              STATUS_LETTER.get(r.status, "?"), fmt_date(done),
                                              r.ad.get("Cmd", "")))
    return 0


# ---------------------------------------------------------------------------
# condor_rm / condor_hold / condor_release (man pages; source
# src/condor_rm.V6/rm.cpp and dc_schedd.cpp JobActionResults::getResultString;
# notes section 4)
# ---------------------------------------------------------------------------

AR_SUCCESS, AR_ERROR, AR_NOT_FOUND, AR_BAD_STATUS, AR_ALREADY_DONE, AR_PERMISSION_DENIED = range(6)


def act_main(prog, argv):
    mode = {"condor_rm": "remove", "condor_hold": "hold", "condor_release": "release"}[prog]
    past = {"remove": "marked for removal", "hold": "held", "release": "released"}[mode]
    verb = {"remove": "remove", "hold": "hold", "release": "release"}[mode]
    if not argv:
        die("You did not specify any jobs\n")
    reason = None
    subcode = 0
    name = pool = None
    totals = False
    ids, constraint_parts, user_parts, cluster_parts = [], [], [], []
    all_jobs = False
    had_error = False
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a.startswith("-") and len(a) > 1:
            low = a.lstrip("-").lower()

            def val():
                nonlocal i
                if i >= len(argv) or (low.startswith("c") and argv[i].startswith("-")):
                    die("%s: %s requires another argument\n" % (prog, a))
                i += 1
                return argv[i - 1]
            if "constraint".startswith(low) and low:
                constraint_parts.append(val())
            elif "all".startswith(low) and low:
                all_jobs = True
            elif "reason".startswith(low) and low:
                reason = val()
            elif mode == "hold" and "subcode".startswith(low) and low:
                v = val()
                if not re.match(r"^-?\d+$", v):
                    die("Invalid -subcode %s!\n" % v)
                subcode = int(v)
            elif "name".startswith(low) and low:
                name = val()
            elif "pool".startswith(low) and low:
                pool = val()
            elif low.startswith("tot"):
                totals = True
            elif low in ("forcex", "long", "addr", "debug", "fast"):
                standin_refuse(prog, "%s option %s is not emulated" % (prog, a))
            elif "help".startswith(low):
                sys.stderr.write("Usage: %s [options] [constraints]\n(test stand-in)\n" % prog)
                return 0
            else:
                sys.stderr.write("Unrecognized option: %s\n" % a)
                die("Usage: %s [options] [constraints]\n" % prog)
        else:
            j = parse_job_arg(a)
            if j is not None:
                c, p = j
                if c <= 0:
                    sys.stderr.write("Invalid cluster # from %s.\n" % a)
                    had_error = True
                elif p is None:
                    cluster_parts.append(c)
                else:
                    ids.append((c, p))
            elif re.match(r"^\d", a):
                sys.stderr.write('Warning: unrecognized "%s" skipped.\n' % a)
            else:
                user_parts.append(a)
    del pool
    if not (ids or constraint_parts or user_parts or cluster_parts or all_jobs):
        die("You did not specify any jobs\n")
    cfg = load_config()
    schedd = Schedd(cfg, prog)
    if not schedd.name_ok(name):
        die("%s: Can't find address for schedd %s\n" % (prog, name))
    caller_uid = os.getuid()
    caller = user_name(caller_uid)
    if reason is None:
        reason = "via %s" % prog
    # The schedd appends who asked (schedd.cpp; notes section 4); root's
    # actions are done as the condor account, and a real pool says so.
    full_reason = "%s (by user %s)" % (reason, "condor" if caller_uid == 0 else caller)
    down = schedd.down()
    if down and not schedd.crashed():
        die("%s: Can't find address for schedd %s\n" % (prog, schedd.name))
    # What a real 24.0 pool printed for a schedd that died.
    cedar = "DCSchedd::actOnJobs:6001:Failed to connect to schedd"

    def act(rec):
        """Apply the action to one job; returns an AR_* result."""
        if rec is None or not rec.in_queue:
            return AR_NOT_FOUND
        if caller_uid != 0 and caller_uid != rec.hidden.get("owner_uid"):
            return AR_PERMISSION_DENIED
        st = rec.status
        if mode == "remove" and st == REMOVED:
            return AR_ALREADY_DONE
        if mode == "hold":
            if st == HELD:
                return AR_ALREADY_DONE
            if st in (REMOVED, COMPLETED):
                return AR_BAD_STATUS
        if mode == "release" and st != HELD:
            return AR_BAD_STATUS
        req = {"action": mode, "reason": full_reason, "user": caller, "uid": caller_uid, "subcode": subcode}
        d = schedd.cluster_dir(rec.cluster)
        tmp = os.path.join(d, ".req.%d.%d.tmp" % (rec.proc, os.getpid()))
        final = os.path.join(d, "req.%d.%020d.%d" % (rec.proc, time.time_ns(), os.getpid()))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, json.dumps(req).encode())
            os.fchmod(fd, 0o644)
            os.close(fd)
            os.rename(tmp, final)
        except OSError:
            return AR_ERROR
        # Wait until the shadow has applied it, so the change is visible to
        # condor_q when we return (the schedd changes JobStatus at once).
        if rec.shadow_alive():
            deadline = time.time() + 10
            while time.time() < deadline:
                now = schedd.load(rec.cluster, rec.proc)
                if now is None or not now.in_queue:
                    break
                if (mode == "remove" and now.status == REMOVED) or (mode == "hold" and now.status == HELD) or \
                        (mode == "release" and now.status != HELD):
                    break
                if not now.shadow_alive():
                    break
                time.sleep(0.05)
        return AR_SUCCESS

    # fully qualified ids: one line each (printNewMessages)
    if ids:
        if constraint_parts:
            sys.stderr.write("Warning, -constraint is ignored for fully qualified job ids\n")
        results = []
        if down:
            results = [(c, p, AR_ERROR) for c, p in ids]
            had_error = True
            sys.stderr.write("%s\n" % cedar)
        else:
            for c, p in ids:
                results.append((c, p, act(schedd.load(c, p))))
            if any(r != AR_SUCCESS for _, _, r in results):
                had_error = True
                sys.stderr.write("\n")
        if totals:
            print_totals([r for _, _, r in results])
        for c, p, r in results:
            if r == AR_SUCCESS:
                sys.stdout.write("Job %d.%d %s\n" % (c, p, past))
            elif r == AR_NOT_FOUND:
                sys.stderr.write("Job %d.%d not found\n" % (c, p))
            elif r == AR_PERMISSION_DENIED:
                sys.stderr.write("Permission denied to %s job %d.%d\n" % (verb, c, p))
            elif r == AR_ALREADY_DONE:
                sys.stderr.write(("Job %d.%d already held\n" if mode == "hold" else
                                  "Job %d.%d already marked for removal\n") % (c, p))
            elif r == AR_BAD_STATUS:
                sys.stderr.write(("Job %d.%d not held to be released\n" if mode == "release" else
                                  "Invalid result for job %d.%d\n") % (c, p))
            else:
                sys.stderr.write("No result found for job %d.%d\n" % (c, p))

    # clusters, users and -constraint: one constraint (handleConstraints)
    kind = None
    exprs = []
    if all_jobs:
        kind, text = "all", "ClusterId >= 0"
        if cluster_parts or user_parts or constraint_parts:
            die("%s: can't mix -all with other constraints\n" % prog)
    else:
        uc = ["ClusterId == %d" % c for c in cluster_parts] + ['Owner == "%s"' % u for u in user_parts]
        if uc:
            exprs.append(" || ".join(uc))
            kind = "cluster" if (len(uc) == 1 and cluster_parts) else ("user" if len(uc) == 1 else "complex")
        exprs = constraint_parts + exprs
        if len(exprs) > 1:
            kind = "complex"
            text = "(%s) && (%s)" % (exprs[0], exprs[1])
            for x in exprs[2:]:
                text += " && (%s)" % x
        elif exprs:
            text = exprs[0]
            if kind is None:
                kind = "complex"
    if kind is not None:
        if kind == "cluster":
            cmsg = " in cluster %d" % cluster_parts[0]
        elif kind == "user":
            cmsg = ' of user "%s"' % user_parts[0]
        elif kind == "all":
            cmsg = ""
        else:
            cmsg = " matching constraint (%s)" % text
        if down:
            sys.stderr.write("%s\n" % cedar)
            sys.stderr.write("Couldn't find/%s all jobs%s\n" % (verb, cmsg))
            return 1
        try:
            tree = parse_expr(text)
        except ParseError:
            tree = None
        queue = [r for r in schedd.records() if r.in_queue]
        results = []
        if tree is not None:
            for r in queue:
                if r.ad.matches(tree):
                    results.append(act(r))
        if totals:
            print_totals(results)
        if any(r == AR_SUCCESS for r in results):
            sys.stdout.write("All jobs%s have been %s\n" % (cmsg, past))
        elif not queue and tree is not None:
            # rm.cpp doWorkByConstraint(): an empty queue is not an error
            sys.stderr.write("%s:0:There are no jobs in the queue\n" % prog)
        else:
            sys.stderr.write("\n")
            sys.stderr.write("Couldn't find/%s all jobs%s\n" % (verb, cmsg))
            had_error = True
    return 1 if had_error else 0


def print_totals(results):
    c = [sum(1 for r in results if r == k) for k in range(6)]
    sys.stdout.write("%d Succeeded, %d Failed, %d Not Found, %d Bad Status, %d Already Done, %d Permission Denied\n"
                     % (c[AR_SUCCESS], c[AR_ERROR], c[AR_NOT_FOUND], c[AR_BAD_STATUS], c[AR_ALREADY_DONE],
                        c[AR_PERMISSION_DENIED]))


def main():
    prog = os.path.basename(sys.argv[0])
    argv = sys.argv[1:]
    if prog in ("standin.py", "standin") and argv and argv[0] in PROGRAMS:
        prog, argv = argv[0], argv[1:]
    if prog == "condor_submit":
        return submit_main(argv)
    if prog == "condor_q":
        return q_main(argv)
    if prog == "condor_history":
        return history_main(argv)
    if prog in ("condor_rm", "condor_hold", "condor_release"):
        return act_main(prog, argv)
    die('Unrecognized command name, "%s" (test/htcondor/standin.py stands in for %s)\n' % (prog, ", ".join(PROGRAMS)))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
