#include "runner/ui/ui.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>

#include "runner/base/errors.h"
#include "runner/base/stop_signal.h"
#include "runner/base/text.h"
#include "runner/report/compare.h"
#include "runner/report/html.h"
#include "runner/report/report.h"
#include "runner/report/search_view.h"
#include "runner/store/store.h"

namespace runner {
namespace {

/// A request whose parameters are not acceptable: 400 with the reason.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A run or sweep the database does not have: 404.
struct NotFound : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Request text only ever reaches the store as bound values or as dotted config
// keys checked against these; nothing from a request names a file.
const std::regex kKeys("[A-Za-z0-9_.,]{1,400}");
const std::regex kKey("[A-Za-z0-9_.]{1,120}");
const std::regex kSweepName("[A-Za-z0-9_.,=+-]{1,200}");

std::string checked(const httplib::Request& req, const std::string& name, const std::regex& allowed,
                    const std::string& fallback) {
  if (!req.has_param(name.c_str())) return fallback;
  const std::string value = req.get_param_value(name.c_str());
  if (value.empty()) return fallback;
  if (!std::regex_match(value, allowed))
    throw BadRequest(name + ": '" + value + "' is not a config key list (letters, digits, _ . ,)");
  return value;
}

const char* const kUiCss = R"CSS(
#runs td:nth-child(2),#runs td:nth-child(3),#runs th:nth-child(2),#runs th:nth-child(3){text-align:left}
nav{display:flex;gap:16px;align-items:baseline;border-bottom:1px solid #ddd;padding-bottom:6px}nav b{font-size:1.2em}
.bar{display:inline-block;width:80px;height:8px;background:#eee;border-radius:4px;vertical-align:middle}
.bar i{display:block;height:100%;background:#ff7f0e;border-radius:4px}
form.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:end}form.controls label{display:flex;flex-direction:column;font-size:.85em}
.error{background:#fdecea;border:1px solid #d62728;padding:8px;border-radius:4px}.muted{color:#777}
)CSS";

// Polls /api/state; when the database changed, fetches this page's content
// again and swaps it in. Quiet polling (10 s) while nothing runs, 1.5 s while runs do.
const char* const kLiveJs = R"JS(
(function () {
  var main = document.getElementById('live');
  if (!main) return;
  var token = main.getAttribute('data-token');
  var running = Number(main.getAttribute('data-running')) || 0;
  function schedule() { setTimeout(poll, running > 0 ? 1500 : 10000); }
  function poll() {
    fetch('/api/state', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (s) {
      running = s.running || 0;
      if (s.token === token) return;
      return fetch(main.getAttribute('data-part'), {cache: 'no-store'}).then(function (r) { return r.text(); })
        .then(function (html) {
          main.innerHTML = html;
          token = s.token;
          main.setAttribute('data-token', token);
          main.setAttribute('data-updates', String(Number(main.getAttribute('data-updates') || 0) + 1));
        });
    }).catch(function () {}).then(schedule);
  }
  schedule();
})();
)JS";

struct Context {
  std::string db;
};

/// The database, opened read-only for this request; StoreError when it cannot be read.
std::unique_ptr<Store> open_store(const Context& ctx) { return Store::open_read_only(ctx.db); }

std::string page(const std::string& title, const std::string& content, const std::string& part_url,
                 const Store::Activity& activity) {
  std::ostringstream s;
  s << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
       "content=\"width=device-width, initial-scale=1\"><title>"
    << html_escape(title) << " · runner ui</title><style>" << report_css() << kUiCss
    << "</style></head><body><nav><b>runner ui</b><a href=\"/\">runs</a><a href=\"/compare\">compare</a></nav>"
    << "<main id=\"live\" data-part=\"" << html_escape(part_url) << "\" data-token=\"" << html_escape(activity.token)
    << "\" data-running=\"" << activity.running << "\" data-updates=\"0\">" << content << "</main><script>" << kLiveJs
    << "</script></body></html>";
  return s.str();
}

std::string status_badge(RunStatus status) {
  return std::string("<span class=\"status ") + status_text(status) + "\">" + status_text(status) + "</span>";
}

/// The runs table: all runs, or one sweep's; the running ones with their epoch, latest accuracy and ETA.
std::string runs_table(const Store& store, const std::string& sweep) {
  std::ostringstream s;
  const std::vector<RunRow> runs = store.runs();
  size_t shown = 0, running = 0;
  s << "<div class=\"scroll\"><table id=\"runs\"><tr><th>run</th><th>name</th><th>sweep</th><th>status</th>"
       "<th>epoch</th><th>ETA</th><th>test %</th><th>val %</th><th>params</th><th>s/epoch</th><th>started</th></tr>";
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {  // newest first
    const RunRow& r = *it;
    if (!sweep.empty() && r.record.sweep != sweep) continue;
    ++shown;
    std::optional<double> test = r.final_test_acc, val = r.final_val_acc;
    double eta = -1;
    if (r.status == RunStatus::Running) {
      ++running;
      const std::vector<EpochRow> epochs = store.epochs(r.id);
      if (!epochs.empty()) test = epochs.back().test_acc, val = epochs.back().val_acc;
      eta = static_cast<double>(std::max<int64_t>(0, r.record.epochs - r.epochs_done)) * r.seconds_per_epoch;
      if (r.epochs_done == 0) eta = -1;
    }
    const double done =
        r.record.epochs > 0 ? 100.0 * static_cast<double>(r.epochs_done) / static_cast<double>(r.record.epochs) : 0;
    s << "<tr data-run=\"" << r.id << "\"><td><a href=\"/run/" << r.id << "\">" << r.id << "</a></td><td>"
      << html_escape(r.record.name) << "</td><td>"
      << (r.record.sweep.empty()
              ? ""
              : "<a href=\"/sweep/" + html_escape(r.record.sweep) + "\">" + html_escape(r.record.sweep) + "</a>")
      << "</td><td>" << status_badge(r.status) << "</td><td class=\"epoch\">" << r.epochs_done << "/" << r.record.epochs
      << (r.status == RunStatus::Running
              ? " <span class=\"bar\"><i style=\"width:" + fixed_text(done, 0) + "%\"></i></span>"
              : "")
      << "</td><td class=\"eta\">" << (r.status == RunStatus::Running ? format_hms(eta) : "")
      << "</td><td class=\"test-acc\">" << (test ? fixed_text(*test) : "-") << "</td><td>"
      << (val ? fixed_text(*val) : "-") << "</td><td>" << format_thousands(r.record.params) << "</td><td>"
      << fixed_text(r.seconds_per_epoch, 1) << "</td><td>" << html_escape(r.started_at) << "</td></tr>";
  }
  s << "</table></div>";
  std::ostringstream head;
  head << "<p>" << shown << " run" << (shown == 1 ? "" : "s") << ", " << running << " running; from <code>"
       << html_escape(store.path()) << "</code> (read-only). This page updates itself as epochs are recorded.</p>";
  return head.str() + (shown == 0 ? "<p class=\"muted\">no runs yet</p>" : s.str());
}

/// A comparison as an HTML table (the `runner compare` table, same rows and columns).
std::string compare_html(const std::vector<RunRow>& runs, const CompareOptions& options) {
  const CompareTable table = compare_table(runs, options);
  std::ostringstream s;
  if (table.rows.empty()) return "<p class=\"muted\">no finished runs match</p>";
  s << "<div class=\"scroll\"><table id=\"comparison\"><tr>";
  for (const auto& h : table.header) s << "<th>" << html_escape(h) << "</th>";
  s << "</tr>";
  for (const auto& row : table.rows) {
    s << "<tr>";
    for (const auto& cell : row) s << "<td>" << html_escape(cell) << "</td>";
    s << "</tr>";
  }
  s << "</table></div>";
  if (!table.note.empty()) s << "<p class=\"note\">" << html_escape(table.note) << "</p>";
  return s.str();
}

std::string compare_content(const Store& store, const httplib::Request& req, std::string& part_url) {
  CompareOptions options;
  options.by = checked(req, "by", kKeys, "model.norm");
  options.rank = req.has_param("rank") ? req.get_param_value("rank") : "";
  if (options.rank != "" && options.rank != "val" && options.rank != "test")
    throw BadRequest("rank: expected val or test");
  const size_t filters = req.get_param_value_count("where");
  std::string query = "by=" + httplib::detail::encode_query_param(options.by);
  for (size_t i = 0; i < filters; ++i) {
    const std::string w = req.get_param_value("where", i);
    if (w.empty()) continue;
    const size_t eq = w.find('=');
    if (eq == std::string::npos || !std::regex_match(w.substr(0, eq), kKey) || w.size() > 300)
      throw BadRequest("where: expected KEY=VALUE with a dotted config key, e.g. model.norm=batch");
    for (char c : w)
      if (static_cast<unsigned char>(c) < 0x20) throw BadRequest("where: control characters are not allowed");
    options.where.push_back(w);
    query += "&where=" + httplib::detail::encode_query_param(w);
  }
  if (!options.rank.empty()) query += "&rank=" + options.rank;
  part_url = "/compare?" + query + "&part=1";
  std::ostringstream s;
  s << "<h1>Compare</h1><form class=\"controls\" method=\"get\" action=\"/compare\"><label>--by<input name=\"by\" "
       "value=\""
    << html_escape(options.by) << "\"></label>";
  for (size_t i = 0; i <= options.where.size(); ++i)
    s << "<label>--where<input name=\"where\" placeholder=\"KEY=VALUE\" value=\""
      << (i < options.where.size() ? html_escape(options.where[i]) : "") << "\"></label>";
  s << "<label>--rank<select name=\"rank\">";
  for (const char* r : {"", "val", "test"})
    s << "<option value=\"" << r << "\"" << (options.rank == r ? " selected" : "") << ">" << (*r ? r : "(by key)")
      << "</option>";
  s << "</select></label><button>compare</button></form>";
  try {
    s << compare_html(store.runs(), options);
  } catch (const ConfigError& e) {  // a --where the compare stage refuses
    throw BadRequest(e.what());
  }
  return s.str();
}

std::string sweep_content(const Store& store, const std::string& sweep) {
  std::ostringstream s;
  s << "<h1>Sweep " << html_escape(sweep) << "</h1>";
  if (const auto view = load_search_view(store, sweep)) {
    s << search_html(*view);
  } else {
    CompareOptions options;
    options.sweep = sweep;
    const std::vector<RunRow> runs = store.runs();
    bool any = false;
    for (const auto& r : runs) any = any || r.record.sweep == sweep;
    if (!any && store.sweep_points(sweep).empty()) throw NotFound("no sweep named " + sweep + " in " + store.path());
    s << "<h2>Comparison</h2>" << compare_html(runs, options);
  }
  s << "<h2>Runs</h2>" << runs_table(store, sweep);
  return s.str();
}

/// Renders one page: the whole page, or with ?part=1 only what the live script swaps in.
void respond(const Context& ctx, const httplib::Request& req, httplib::Response& res, const std::string& title,
             const std::function<std::string(const Store&, std::string& part_url)>& content) {
  std::string part_url = req.path + "?part=1";
  Store::Activity activity{"none", 0};
  std::string body;
  int status = 200;
  try {
    const auto store = open_store(ctx);
    activity = store->activity();
    body = content(*store, part_url);
  } catch (const BadRequest& e) {
    status = 400, body = "<p class=\"error\">bad request: " + html_escape(e.what()) + "</p>";
  } catch (const NotFound& e) {
    status = 404, body = "<p class=\"error\">" + html_escape(e.what()) + "</p>";
  } catch (const StoreError& e) {
    // A missing, empty, newer or replaced database: say so, and keep polling until it can be read.
    body = "<p class=\"error\">" + html_escape(e.what()) + "</p><p class=\"muted\">This page retries by itself.</p>";
    activity.token = "unreadable";
  } catch (const std::exception& e) {
    status = 500, body = "<p class=\"error\">cannot show this page: " + html_escape(e.what()) + "</p>";
  }
  res.status = status;
  if (req.has_param("part"))
    res.set_content(body, "text/html; charset=utf-8");
  else
    res.set_content(page(title, body, part_url, activity), "text/html; charset=utf-8");
  res.set_header("Cache-Control", "no-store");
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

}  // namespace

int cmd_ui(const UiArgs& args) {
  const Context ctx{args.db};
  httplib::Server server;
  // httplib's default adds SO_REUSEPORT, which lets a second ui share a port in use: only SO_REUSEADDR.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.Get("/", [&](const httplib::Request& req, httplib::Response& res) {
    respond(ctx, req, res, "runs",
            [](const Store& store, std::string&) { return "<h1>Runs</h1>" + runs_table(store, ""); });
  });
  server.Get(R"(/run/(\d{1,12}))", [&](const httplib::Request& req, httplib::Response& res) {
    const int64_t id = std::stoll(req.matches[1].str());
    respond(ctx, req, res, "run " + std::to_string(id), [id](const Store& store, std::string&) {
      try {
        store.run(id);
      } catch (const StoreError&) {
        throw NotFound("no run " + std::to_string(id) + " in " + store.path());
      }
      return run_page_html(store, id);
    });
  });
  server.Get("/compare", [&](const httplib::Request& req, httplib::Response& res) {
    respond(ctx, req, res, "compare",
            [&req](const Store& store, std::string& part_url) { return compare_content(store, req, part_url); });
  });
  server.Get(R"(/sweep/([^/]+))", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string sweep = req.matches[1].str();
    if (!std::regex_match(sweep, kSweepName)) {
      res.status = 400;
      res.set_content("bad request: a sweep name has letters, digits and _ . , = + -", "text/plain; charset=utf-8");
      return;
    }
    respond(ctx, req, res, "sweep " + sweep,
            [sweep](const Store& store, std::string&) { return sweep_content(store, sweep); });
  });
  server.Get("/api/state", [&](const httplib::Request&, httplib::Response& res) {
    try {
      const Store::Activity a = open_store(ctx)->activity();
      res.set_content("{\"token\":\"" + a.token + "\",\"running\":" + std::to_string(a.running) + "}",
                      "application/json");
    } catch (const std::exception& e) {
      res.status = 503;
      res.set_content("{\"token\":\"unreadable\",\"running\":1}", "application/json");
    }
    res.set_header("Cache-Control", "no-store");
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    res.set_content(res.status == 404
                        ? "not found: " + html_escape(req.path) + " (pages: /, /run/ID, /compare, /sweep/NAME)"
                        : "error " + std::to_string(res.status),
                    "text/plain; charset=utf-8");
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("internal error", "text/plain; charset=utf-8");
  });

  // Ctrl-C and SIGTERM go to one thread that stops the server; the others never see them.
  StopSignalWaiter stop;  // before the server's threads start: they inherit the blocked signals

  const int port = args.port == 0 ? server.bind_to_any_port(args.host.c_str())
                                  : (server.bind_to_port(args.host.c_str(), args.port) ? args.port : -1);
  if (port < 0)
    throw ExternalError("runner ui: cannot listen on " + args.host + ":" + std::to_string(args.port) +
                        " (in use, or not an address of this machine); try another --port");
  if (!is_loopback(args.host))
    std::cerr << "runner ui: warning: listening on " << args.host
              << ", not only on this machine (127.0.0.1): anyone who can reach it can read the results\n";
  std::cerr << "runner ui: serving " << args.db << " read-only on http://" << args.host << ":" << port
            << "/ (Ctrl-C stops)" << std::endl;
  std::atomic<bool> signalled{false}, listening_over{false};
  std::thread stopper([&] {
    stop.wait();
    if (listening_over) return;  // woken by the main thread below
    signalled = true;
    // httplib's stop() only stops a server that is listening already: a SIGTERM
    // right after the line above (a test, an impatient Ctrl-C) came before the
    // listen, was lost and left the process serving forever.
    while (!listening_over && !server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    server.stop();
  });
  const bool served = server.listen_after_bind();
  listening_over = true;
  if (!signalled) StopSignalWaiter::wake(stopper);  // the server ended by itself: wake the stopper
  stopper.join();
  if (!served && !signalled) throw ExternalError("runner ui: the server stopped: cannot accept connections");
  std::cerr << "runner ui: stopped" << std::endl;
  return kExitOk;
}

}  // namespace runner
