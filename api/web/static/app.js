// reana-site's own script: refresh parts of a page, follow live logs,
// confirm destructive actions. No framework; the pages work without it.
"use strict";
(function () {
  function bindConfirm(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (f) {
      if (f.dataset.bound) return;
      f.dataset.bound = "1";
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.dataset.confirm)) e.preventDefault();
      });
    });
  }

  function stamp() {
    var el = document.getElementById("refreshed-at");
    if (el) el.textContent = "Refreshed at " + new Date().toISOString().substring(11, 19) + " UTC";
  }

  // Elements with data-refresh-url get their content from it every
  // data-refresh-every seconds, until a .summary inside says it is over.
  function refresh(el) {
    var every = (parseInt(el.dataset.refreshEvery, 10) || 5) * 1000;
    var timer = setInterval(function () {
      if (document.hidden) return;
      fetch(el.dataset.refreshUrl, { credentials: "same-origin" }).then(function (res) {
        if (res.status === 401) {
          location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search);
          return null;
        }
        if (!res.ok) return null;
        var total = res.headers.get("X-Runs-Total"), count = document.getElementById("runs-total");
        if (total !== null && count) count.textContent = total + (total === "1" ? " run" : " runs");
        return res.text();
      }).then(function (html) {
        if (html === null || html === undefined) return;
        el.innerHTML = html;
        stamp();
        bindConfirm(el);
        addNewLogs(el);
        var s = el.querySelector(".summary");
        if (s && s.dataset.live === "false") clearInterval(timer);
      }).catch(function () {});
    }, every);
  }

  // A job that started after the page loaded gets a log section too.
  function addNewLogs(root) {
    var box = document.getElementById("job-logs");
    var details = document.getElementById("details");
    if (!box || !details) return;
    var jobs = "/runs/" + details.dataset.runId + "/jobs/";
    root.querySelectorAll("tr.job[data-running='true']").forEach(function (tr) {
      var id = "log-" + tr.dataset.jobId;
      if (document.getElementById(id)) return;
      var empty = box.querySelector(".empty");
      if (empty) empty.remove();
      var d = document.createElement("details");
      d.className = "job-log";
      d.id = id;
      d.open = true;
      var sum = document.createElement("summary");
      sum.textContent = tr.dataset.step + " · running";
      var tools = document.createElement("div");
      tools.className = "log-tools";
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "log-follow";
      btn.textContent = "Pause";
      var a = document.createElement("a");
      a.className = "log-download";
      a.href = jobs + tr.dataset.jobId + "/log";
      a.textContent = "Download";
      tools.append(btn, a);
      var pre = document.createElement("pre");
      pre.className = "log-tail";
      pre.dataset.tailUrl = jobs + tr.dataset.jobId + "/tail";
      d.append(sum, tools, pre);
      box.append(d);
      tail(pre);
    });
  }

  // A running job's log follows its output over Server-Sent Events.
  function tail(pre) {
    if (pre.dataset.tailing) return;
    pre.dataset.tailing = "1";
    var follow = true;
    var box = pre.closest(".job-log");
    var btn = box && box.querySelector(".log-follow");
    if (btn) {
      btn.addEventListener("click", function () {
        follow = !follow;
        btn.textContent = follow ? "Pause" : "Follow";
        btn.setAttribute("aria-pressed", String(follow));
        if (follow) pre.scrollTop = pre.scrollHeight;
      });
    }
    var es = new EventSource(pre.dataset.tailUrl);
    // Each connection starts with the whole output so far.
    es.addEventListener("open", function () { pre.textContent = ""; });
    es.addEventListener("append", function (e) {
      pre.append(JSON.parse(e.data));
      if (follow) pre.scrollTop = pre.scrollHeight;
    });
    es.addEventListener("reset", function (e) { pre.textContent = JSON.parse(e.data); });
    es.addEventListener("end", function (e) {
      es.close();
      pre.dataset.ended = JSON.parse(e.data);
      if (btn) btn.remove();
    });
  }

  // A finished job's log is fetched when its section is opened.
  function lazyLog(pre) {
    var box = pre.closest("details");
    if (!box) return;
    function load() {
      if (!box.open || pre.dataset.loaded) return;
      pre.dataset.loaded = "1";
      pre.textContent = "Loading…";
      fetch(pre.dataset.logUrl, { credentials: "same-origin" }).then(function (res) {
        return res.ok ? res.text() : "The log could not be loaded (HTTP " + res.status + ").";
      }).then(function (text) { pre.textContent = text; }).catch(function () { delete pre.dataset.loaded; });
    }
    box.addEventListener("toggle", load);
    load();
  }

  function autoSubmit() {
    var f = document.getElementById("runs-filter");
    if (!f) return;
    f.querySelectorAll("select, input[type=checkbox]").forEach(function (el) {
      el.addEventListener("change", function () { f.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindConfirm(document);
    autoSubmit();
    document.querySelectorAll("[data-refresh-url]").forEach(refresh);
    document.querySelectorAll("pre[data-tail-url]").forEach(tail);
    document.querySelectorAll("pre[data-log-url]").forEach(lazyLog);
  });
})();
