// Added to every formgrader page on the course hub (deploy/coursehub_instructor.py).
(function () {
    "use strict";
    var hub = window.COURSEHUB || {base: ""};
    // JupyterHub wants the XSRF token on every cookie-authenticated API request, GET included
    function xsrf() {
        var m = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
        return m ? decodeURIComponent(m[1]) : "";
    }
    function getJSON(url) {
        return $.ajax({url: url, dataType: "json", cache: false, headers: {"X-XSRFToken": xsrf()}});
    }

    // -- progress of the operation running now --------------------------------------------------------
    var bar = document.createElement("div");
    bar.id = "coursehub-progress";
    bar.style.cssText = "position:fixed;left:0;right:0;bottom:0;z-index:2000;padding:6px 14px;" +
        "background:#fcf8e3;border-top:1px solid #d6c27a;font:13px monospace;display:none;white-space:pre-wrap";
    document.addEventListener("DOMContentLoaded", function () { document.body.appendChild(bar); });

    function poll() {
        getJSON(hub.base + "/coursehub/progress").done(function (p) {
            if (p.running) {
                var last = p.lines.length ? p.lines[p.lines.length - 1] : "started";
                bar.textContent = "Working: " + p.operation + " \u2014 " + Math.round(p.elapsed) + " s \u2014 " + last;
                bar.style.display = "block";
                $("td, span").filter(function () {
                    return this.childElementCount === 0 && /^Please wait\.\.\./.test($(this).text());
                }).text("Please wait... " + last.slice(0, 40));
            } else {
                bar.style.display = "none";
            }
        }).always(function () { setTimeout(poll, 1000); });
    }
    setTimeout(poll, 500);

    // -- a finished operation with per-student problems is a problem, not a green "Success" -------------
    if (typeof window.createLogModal === "function") {
        var original = window.createLogModal;
        window.createLogModal = function (id, title, message, log, error) {
            var lines = (log || "").split("\n");
            var problems = lines.filter(function (l) { return l.indexOf("PROBLEM") !== -1 && l.indexOf("PROBLEM summary") === -1; });
            var summary = lines.filter(function (l) { return l.indexOf("PROBLEM summary") !== -1; });
            if (id === "success-modal" && problems.length) {
                var body = $("<div/>");
                body.append($("<p/>").text(message.replace(/^Successfully /, "Done: ")));
                var panel = $("<div/>").addClass("panel panel-danger");
                panel.append($("<div/>").addClass("panel-heading")
                    .text(problems.length + " student(s) need a look \u2014 everyone else was done"));
                var list = $("<ul/>").addClass("list-group coursehub-problems");
                problems.forEach(function (p) {
                    list.append($("<li/>").addClass("list-group-item").text(p.replace(/^\[ERROR\]\s*/, "")));
                });
                panel.append(list);
                body.append(panel);
                if (summary.length) { body.append($("<p/>").addClass("text-danger").text(summary[0].replace(/^\[ERROR\]\s*PROBLEM summary:\s*/, ""))); }
                var logPanel = $("<div/>").addClass("panel panel-default");
                logPanel.append($("<div/>").addClass("panel-heading").text("Log Output"));
                logPanel.append($("<div/>").addClass("panel-body").append($("<pre/>").text(log)));
                body.append(logPanel);
                var modal = createModal("problem-modal", "Done, with problems (" + problems.length + ")", body);
                modal.find(".modal-header").css({"background": "#f2dede", "color": "#a94442"});
                return modal;
            }
            return original.apply(this, arguments);
        };
    }

    // -- how late each submission arrived (the exchange's clock) -----------------------------------------
    var match = window.location.pathname.match(/\/formgrader\/manage_submissions\/([^\/]+)/);
    if (match) {
        var assignment = decodeURIComponent(match[1]);
        var tries = 0;
        var mark = function () {
            var rows = $("tbody tr");
            if (!rows.length || !rows.find("td.student-id").text()) {
                if (tries++ < 60) { setTimeout(mark, 500); }
                return;
            }
            getJSON(hub.base + "/coursehub/api/lateness/" + encodeURIComponent(assignment)).done(function (late) {
                rows.each(function () {
                    var row = $(this);
                    var id = row.find("td.student-id").text().trim();
                    var info = late[id];
                    if (!info || row.find(".coursehub-late").length) { return; }
                    var cell = row.find("td.timestamp");
                    var label = $("<span/>").addClass("label coursehub-late").css("margin-left", "6px");
                    if (info.seconds_late > 0) {
                        var s = info.seconds_late, h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
                        var by = h ? h + " h " + m + " min" : (m ? m + " min" : s + " s");
                        label.addClass("label-danger").text("late " + by)
                            .attr("title", "due " + info.duedate + ", received " + info.submitted_at);
                    } else {
                        label.addClass("label-success").text("on time")
                            .attr("title", info.duedate ? "due " + info.duedate : "no due date");
                    }
                    cell.text(info.submitted_at || cell.text()).append(label);
                });
            });
        };
        $(mark);
        // the table is drawn again after each autograde: label the new rows too
        setInterval(function () { if ($("tbody tr td.timestamp").length && !$(".coursehub-late").length) { tries = 0; mark(); } }, 2000);
    }
})();
