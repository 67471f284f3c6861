#include "server/api.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "events/codec.h"
#include "events/hash.h"
#include "events/money.h"
#include "ledger/queries.h"
#include "ledger/reports.h"
#include "ledger/strict_json.h"
#include "projections/invoice.h"
#include "projections/views.h"
#include "replay/replay.h"
#include "server/openapi.h"

namespace subledger::server {

using Json = nlohmann::ordered_json;

namespace {

constexpr size_t kHashBytes = 32;
constexpr int64_t kLimitDefault = 100, kLimitMax = 1000;

Date utc_today() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return Date::from_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse unavailable(const std::string& why) {
  return error_response(503, "UNAVAILABLE", "the ledger cannot write now: " + why +
                                                 "; nothing was applied");
}

// Every occurrence of the caller's scope prefix removed: the partner sees its ids as it sent them.
std::string unscoped_text(std::string text, const std::string& prefix) {
  if (prefix.empty()) return text;
  for (size_t at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at))
    text.erase(at, prefix.size());
  return text;
}

std::string strip(const std::string& id, const std::string& prefix) {
  return !prefix.empty() && id.starts_with(prefix) ? id.substr(prefix.size()) : id;
}

// Removes the scope from every id member (`*_id`, `*_ids`, `cascaded_from`, `stream`).
void unscope(Json& j, const std::string& prefix) {
  if (prefix.empty()) return;
  if (j.is_array()) {
    for (auto& v : j) unscope(v, prefix);
    return;
  }
  if (!j.is_object()) return;
  for (auto& [key, v] : j.items()) {
    if (v.is_string() && (key.ends_with("_id") || key == "cascaded_from")) {
      v = strip(v.get<std::string>(), prefix);
    } else if (v.is_string() && key == "stream") {
      std::string s = v.get<std::string>();
      size_t slash = s.find('/');
      if (slash != std::string::npos) v = s.substr(0, slash + 1) + strip(s.substr(slash + 1), prefix);
    } else if (v.is_array() && key.ends_with("_ids")) {
      for (auto& id : v)
        if (id.is_string()) id = strip(id.get<std::string>(), prefix);
    } else if (v.is_structured()) {
      unscope(v, prefix);
    }
  }
}

std::string unscoped_json(const std::string& text, const std::string& prefix) {
  if (prefix.empty()) return text;
  Json j = Json::parse(text);
  unscope(j, prefix);
  return j.dump();
}

std::string percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

struct Route {
  const char* method;
  const char* pattern;  // segments; {name} captures one
  bool operator_only = false;
  bool operator_too = false;  // the operator key may call it too (invoices: every partner's)
};

// SERVER.md's routes. The pattern is also the metrics label.
const std::vector<Route>& routes() {
  static const std::vector<Route> table = {
      {"POST", "/v1/customers"},
      {"GET", "/v1/customers"},
      {"GET", "/v1/customers/{cid}"},
      {"POST", "/v1/customers/{cid}/orders"},
      {"GET", "/v1/customers/{cid}/orders"},
      {"GET", "/v1/customers/{cid}/orders/{oid}"},
      {"GET", "/v1/customers/{cid}/subscriptions"},
      {"GET", "/v1/customers/{cid}/subscriptions/{sid}"},
      {"PATCH", "/v1/customers/{cid}/subscriptions/{sid}"},
      {"GET", "/v1/customers/{cid}/subscriptions/{sid}/addons"},
      {"GET", "/v1/customers/{cid}/subscriptions/{sid}/conversions"},
      {"POST", "/v1/customers/{cid}/subscriptions/{sid}/conversions"},
      {"POST", "/v1/customers/{cid}/subscriptions/{sid}/renewals"},
      {"POST", "/v1/customers/{cid}/agreements"},
      {"GET", "/v1/customers/{cid}/agreements"},
      {"GET", "/v1/invoices", false, true},
      {"GET", "/v1/invoices/{iid}", false, true},
      {"GET", "/v1/invoices/{iid}/lineitems", false, true},
      {"GET", "/v1/reconciliation", false, true},
      {"GET", "/v1/renewals", false, true},
      {"GET", "/v1/auditrecords"},
      {"POST", "/v1/commands", true},
      {"POST", "/v1/billingruns", true},
  };
  return table;
}

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t at = 1;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return out;
}

}  // namespace

int status_of_code(const std::string& code) {
  if (code == "INVALID_ARGUMENT") return 400;
  if (code == "UNAVAILABLE") return 503;  // the store could not be read: nothing was decided
  if (code == "NOT_FOUND" || code.starts_with("UNKNOWN_")) return 404;
  if (code == "IDEMPOTENCY_CONFLICT" || code == "ALREADY_EXISTS" ||
      code == "AGREEMENT_ALREADY_ACCEPTED")
    return 409;
  return 422;
}

HttpResponse error_response(int status, const std::string& code, const std::string& description) {
  // A description may quote what the client sent: a byte that is not UTF-8 is replaced, never
  // thrown over (an answer must always go out).
  return json_response(status, Json{{"code", code}, {"description", description}}.dump(
                                   -1, ' ', false, Json::error_handler_t::replace));
}

struct Api::Call {
  HttpRequest request;
  Done done;
  const Route* route = nullptr;
  std::map<std::string, std::string> params, query;
  std::string path;
  Principal principal;
  std::string prefix;  // "<partner_id>:" for a partner, "" for the operator
  std::chrono::steady_clock::time_point started;

  std::string scoped(const std::string& id) const { return prefix + id; }
  std::string param(const std::string& name) const { return params.at(name); }
  void answer(HttpResponse r) {
    r.route = route ? route->pattern : r.route;
    r.key_id = principal.key_id;
    if (!prefix.empty() && r.status >= 400 && r.content_type == "application/json") {
      Json j = Json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("description") && j["description"].is_string())
        j["description"] = unscoped_text(j["description"].get<std::string>(), prefix);
      r.body = j.dump();
    }
    Done finish = std::move(done);  // may destroy this Call: nothing of it is used after
    finish(std::move(r));
  }
};

Api::Api(CommandStream& stream, const KeyRing& keys, Metrics& metrics, ApiOptions options)
    : stream_(stream),
      keys_(keys),
      metrics_(metrics),
      options_(std::move(options)),
      reads_(options_.read_rate),
      writes_(options_.write_rate),
      customers_(options_.customer_rate) {
  if (!options_.today) options_.today = utc_today;
}

void Api::handle(HttpRequest request, Done done) {
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->done = std::move(done);
  call->started = std::chrono::steady_clock::now();
  std::string_view target = call->request.target;
  size_t q = target.find('?');
  call->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      size_t eq = pair.find('=');
      std::string key = percent_decode(pair.substr(0, eq));
      std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1));
      if (!key.empty()) call->query[key] = value;
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  const std::string& method = call->request.method;
  // Unauthenticated operations routes.
  if (method == "GET" && call->path == "/healthz") {
    HttpResponse r = json_response(200, R"({"status":"ok"})");
    r.route = "/healthz";
    return call->done(std::move(r));
  }
  if (method == "GET" && call->path == "/openapi.json") {
    HttpResponse r = json_response(200, std::string(openapi_document()));
    r.route = "/openapi.json";
    return call->done(std::move(r));
  }
  if (method == "GET" && call->path == "/readyz") {
    std::string failure = stream_.failure();
    HttpResponse r = draining_      ? error_response(503, "UNAVAILABLE", "shutting down")
                     : failure.empty() ? json_response(200, R"({"status":"ready"})")
                                       : unavailable(failure);
    r.route = "/readyz";
    return call->done(std::move(r));
  }
  if (method == "GET" && call->path == "/metrics") {
    HttpResponse r;
    r.body = metrics_.render();
    r.content_type = "text/plain; version=0.0.4";
    r.route = "/metrics";
    return call->done(std::move(r));
  }
  // Route match.
  auto parts = segments(call->path);
  bool path_known = false;
  for (const auto& route : routes()) {
    auto pattern = segments(route.pattern);
    if (pattern.size() != parts.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i) {
      if (pattern[i].starts_with('{'))
        params[std::string(pattern[i].substr(1, pattern[i].size() - 2))] = std::string(parts[i]);
      else
        match = pattern[i] == parts[i];
    }
    if (!match) continue;
    path_known = true;
    if (method != route.method) continue;
    call->route = &route;
    call->params = std::move(params);
    break;
  }
  if (!call->route) {
    HttpResponse r = path_known ? error_response(405, "METHOD_NOT_ALLOWED",
                                                 method + " is not served on " + call->path)
                                : error_response(404, "NOT_FOUND", "no route " + call->path);
    return call->done(std::move(r));
  }
  // Authentication: Authorization: Bearer <key_id>.<secret>.
  std::string_view auth = call->request.authorization;
  std::optional<Principal> principal;
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer "))
    principal = keys_.authenticate(auth.substr(7));
  if (!principal)
    return call->answer(error_response(
        401, "UNAUTHENTICATED",
        auth.empty() ? "no key: send Authorization: Bearer <key>" : "unknown or revoked key"));
  call->principal = *principal;
  if (call->route->operator_only && !principal->operator_key())
    return call->answer(error_response(403, "FORBIDDEN", "this route needs the operator key"));
  if (!call->route->operator_only && !call->route->operator_too && principal->operator_key())
    return call->answer(error_response(
        403, "FORBIDDEN", "partner routes need a partner key; the operator uses the CLI"));
  call->prefix = principal->operator_key() ? "" : principal->partner_id + ":";
  // Ids in the path are the caller's own: never another scope, never a malformed id.
  for (const auto& [name, id] : call->params) {
    if (!id_error(name, id).empty() || id.find(':') != std::string::npos)
      return call->answer(error_response(404, "NOT_FOUND", "no " + name + " '" + id + "'"));
  }
  const bool is_write = method != "GET";
  // Throttling: a partner's reads and writes apart, and each of its customers.
  if (!principal->operator_key()) {
    auto now = std::chrono::steady_clock::now();
    int wait = (is_write ? writes_ : reads_).take(principal->partner_id, now);
    if (wait == 0 && call->params.count("cid"))
      wait = customers_.take(principal->partner_id + "/" + call->params.at("cid"), now);
    if (wait > 0) {
      metrics_.throttled();
      HttpResponse r = error_response(
          429, "THROTTLED",
          std::string("over the ") + (is_write ? "write" : "read") +
              " rate of this partner or customer; retry after " + std::to_string(wait) + " s");
      r.headers.emplace_back("Retry-After", std::to_string(wait));
      return call->answer(std::move(r));
    }
  }
  if (is_write && std::string(call->route->pattern) != "/v1/commands") {
    const std::string& rid = call->request.request_id;
    if (rid.empty())
      return call->answer(
          error_response(400, "INVALID_ARGUMENT", "a write needs an MS-RequestId header"));
    if (std::string why = id_error("MS-RequestId", rid);
        !why.empty() || rid.find(':') != std::string::npos)
      return call->answer(error_response(
          400, "INVALID_ARGUMENT",
          why.empty() ? "MS-RequestId must not contain ':' (it separates a partner's scope)" : why));
  }
  if (draining_)
    return call->answer(error_response(503, "UNAVAILABLE", "shutting down"));
  // The call lives in the closures from here on.
  Call& ref = *call;
  auto keep = call;
  ref.done = [keep, done = std::move(ref.done)](HttpResponse r) mutable {
    keep.reset();  // breaks the cycle call -> done -> call
    done(std::move(r));
  };
  dispatch(ref);
}

void Api::run(Call& call, std::function<HttpResponse(Ledger&)> work) {
  Call* c = &call;
  bool queued = stream_.try_submit([c, work = std::move(work)](Ledger* ledger) -> CommitPipeline::Ack {
    if (!ledger) return [c](const std::string& e) { c->answer(unavailable(e)); };
    HttpResponse r;
    try {
      r = work(*ledger);
    } catch (const std::exception& e) {
      r = error_response(500, "INTERNAL", e.what());
    }
    return [c, r = std::move(r)](const std::string& e) mutable {
      c->answer(e.empty() ? std::move(r) : unavailable(e));
    };
  });
  if (!queued) c->answer(error_response(503, "UNAVAILABLE", "the ledger's queue is full"));
}

namespace {

std::optional<HttpResponse> bad(const std::string& message) {
  return error_response(400, "INVALID_ARGUMENT", message);
}

// The request body as a JSON object, or the 400 to answer. Read as strictly as a command line
// (ledger/strict_json.h): no NUL byte, UTF-8, bounded nesting, no key twice in an object.
std::optional<HttpResponse> body_object(const std::string& body, Json& out) {
  std::string error;
  std::optional<Json> parsed =
      parse_json_strictly<Json>(body.empty() ? std::string_view("{}") : std::string_view(body), error);
  if (!parsed) return bad("the body is not accepted: " + error);
  out = std::move(*parsed);
  if (!out.is_object()) return bad("the body must be a JSON object");
  return std::nullopt;
}

std::optional<HttpResponse> only_fields(const Json& body, std::initializer_list<const char*> allowed,
                                        const char* what) {
  for (const auto& [key, value] : body.items()) {
    if (std::find_if(allowed.begin(), allowed.end(),
                     [&k = key](const char* a) { return k == a; }) == allowed.end()) {
      std::string names;
      for (const char* a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
      return bad("unknown field \"" + key + "\" in " + what + "; accepted: " + names);
    }
  }
  return std::nullopt;
}

// Puts the caller's scope on an id member of a command; a malformed id is the 400 to answer.
std::optional<HttpResponse> scope_member(Json& obj, const char* field, const std::string& prefix) {
  auto it = obj.find(field);
  if (it == obj.end() || !it->is_string()) return std::nullopt;  // the parser says what is wrong
  std::string id = it->get<std::string>();
  if (std::string why = id_error(field, id); !why.empty()) return bad(why);
  if (id.find(':') != std::string::npos)
    return bad(std::string(field) + " must not contain ':' (it separates a partner's scope)");
  *it = prefix + id;
  return std::nullopt;
}

// Parses a command object built from a request; the actor is the key.
std::optional<HttpResponse> to_command(const Json& doc, const Principal& p, Command& out) {
  ParsedCommand parsed = parse_command(doc.dump());
  if (!parsed.command) return error_response(status_of_code(parsed.rejection.code),
                                             parsed.rejection.code, parsed.rejection.message);
  out = std::move(*parsed.command);
  out.actor = std::string(kKeyActorPrefix) + p.key_id;
  return std::nullopt;
}

std::optional<HttpResponse> parse_limit(const std::map<std::string, std::string>& query,
                                        int64_t& limit, int64_t& offset) {
  limit = kLimitDefault;
  offset = 0;
  auto number = [](const std::string& s, int64_t& v) {
    if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), ::isdigit)) return false;
    v = std::stoll(s);
    return true;
  };
  if (auto it = query.find("limit"); it != query.end())
    if (!number(it->second, limit) || limit < 1 || limit > kLimitMax)
      return bad("limit must be a whole number from 1 to 1000; got '" + it->second + "'");
  if (auto it = query.find("offset"); it != query.end())
    if (!number(it->second, offset)) return bad("offset must be a whole number from 0");
  return std::nullopt;
}

std::optional<HttpResponse> parse_date_param(const std::map<std::string, std::string>& query,
                                             const char* name, std::optional<Date>& out,
                                             bool required) {
  auto it = query.find(name);
  if (it == query.end()) {
    if (required) return bad(std::string(name) + " is required: a date YYYY-MM-DD");
    return std::nullopt;
  }
  out = Date::parse(it->second);
  if (!out) return bad(std::string(name) + " must be a date YYYY-MM-DD; got '" + it->second + "'");
  return std::nullopt;
}

std::string query_string(const std::map<std::string, std::string>& query) {
  std::string out;
  for (const auto& [k, v] : query) out += (out.empty() ? "?" : "&") + k + "=" + v;
  return out;
}

// A list page: {"total_count", "items", "links": {"next"}} of `all` from `offset`.
// A page of `total` items: `shown` are the items from `offset` on, at most `limit` of them.
HttpResponse page_of(const std::vector<std::string>& shown, size_t total, int64_t limit,
                     int64_t offset, const std::string& path,
                     std::map<std::string, std::string> query, const std::string& prefix) {
  Json j;
  j["total_count"] = total;
  Json items = Json::array();
  for (const std::string& text : shown) {
    Json item = Json::parse(text);
    unscope(item, prefix);
    items.push_back(std::move(item));
  }
  j["items"] = std::move(items);
  Json links = Json::object();
  if (static_cast<size_t>(offset + limit) < total) {
    query["limit"] = std::to_string(limit);
    query["offset"] = std::to_string(offset + limit);
    links["next"] = path + query_string(query);
  }
  j["links"] = std::move(links);
  return json_response(200, j.dump());
}

// Whether the item at `index` (0-based, in listing order) is on the page.
bool on_page(size_t index, int64_t limit, int64_t offset) {
  return index >= static_cast<size_t>(offset) && index < static_cast<size_t>(offset + limit);
}

HttpResponse page(const std::vector<std::string>& all, int64_t limit, int64_t offset,
                  const std::string& path, std::map<std::string, std::string> query,
                  const std::string& prefix) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < all.size(); ++i)
    if (on_page(i, limit, offset)) shown.push_back(all[i]);
  return page_of(shown, all.size(), limit, offset, path, std::move(query), prefix);
}

// The `state` view with the caller's ids as it sent them: scoped ids stripped on a copy, so the
// hot GET renders once instead of rendering, parsing and rendering again.
std::string view_of_subscription(Subscription sub, const std::string& prefix) {
  sub.id = strip(sub.id, prefix);
  sub.customer_id = strip(sub.customer_id, prefix);
  sub.parent_id = strip(sub.parent_id, prefix);
  return subscription_json(sub);
}

HttpResponse subscription_response(const Ledger& ledger, const std::string& id,
                                   const std::string& prefix, int status = 200) {
  const Subscription* sub = ledger.state().subscription(id);
  HttpResponse r = json_response(status, view_of_subscription(*sub, prefix));
  r.headers.emplace_back(
      "ETag", "\"" +
                  std::to_string(ledger.state().stream_version(
                      Stream{StreamKind::kSubscription, id})) +
                  "\"");
  return r;
}

// The customer's subscription, or the 404 to answer (also for another customer's).
const Subscription* owned_subscription(const Ledger& ledger, const std::string& customer,
                                       const std::string& id) {
  const Subscription* sub = ledger.state().subscription(id);
  return sub && sub->customer_id == customer ? sub : nullptr;
}

HttpResponse not_found(const std::string& what, const std::string& id) {
  return error_response(404, "NOT_FOUND", "no " + what + " '" + id + "'");
}

Json agreement_view(const Customer& c, const Agreement& a, bool with_contact) {
  return Json::parse(agreement_json(c.def.customer_id, a, with_contact));
}

// The partner's view of an event in the activity log: nullopt when it is not the partner's to
// see (another partner's, or a billing run, which sums every partner).
std::optional<std::string> audit_view(const Event& e, const std::string& partner) {
  const std::string prefix = partner + ":";
  switch (e.stream.kind) {
    case StreamKind::kPartner:
      if (e.stream.id != partner) return std::nullopt;
      break;
    case StreamKind::kCustomer:
    case StreamKind::kSubscription:
      if (!e.stream.id.starts_with(prefix)) return std::nullopt;
      break;
    case StreamKind::kOffer:
      break;
    default:
      return std::nullopt;
  }
  if (std::holds_alternative<BillingRun>(e.payload)) return std::nullopt;
  Json j = Json::parse(event_json(e));
  // Personal data stays out of partner-facing audit records.
  if (std::holds_alternative<AgreementAccepted>(e.payload) && j.contains("data"))
    j["data"].erase("contact");
  unscope(j, prefix);
  if (j.contains("request_id") && j["request_id"].is_string()) {
    std::string rid = j["request_id"].get<std::string>();
    j["request_id"] = rid.substr(0, rid.find('#'));
  }
  return j.dump();
}

std::string http_record_key(const Principal& p, const std::string& request_id) {
  // A space never occurs in an id, so these keys never meet a command's request id.
  return p.operator_key() ? "http operator " + request_id
                          : "http " + p.partner_id + ":" + request_id;
}

}  // namespace

void Api::write(Call& call, std::vector<Command> commands,
                std::function<std::optional<HttpResponse>(Ledger&)> precheck,
                std::function<HttpResponse(Ledger&, const Ledger::GroupResult&)> render,
                bool line_indexed) {
  const std::string key = http_record_key(call.principal, call.request.request_id);
  const std::string hash =
      sha256(call.request.method + " " + call.path + "\n" + call.request.body);
  // Group members get distinct request ids the id grammar cannot produce ('#').
  if (commands.size() > 1)
    for (size_t i = 0; i < commands.size(); ++i)
      commands[i].request_id += "#" + std::to_string(i);
  run(call, [key, hash, commands = std::move(commands), precheck = std::move(precheck),
             render = std::move(render), line_indexed](Ledger& ledger) -> HttpResponse {
    auto record = ledger.request_record(key);
    if (!record.ok() && !absl::IsNotFound(record.status()))
      return unavailable(std::string(record.status().message()));
    if (record.ok()) {
      // SERVER.md: the same MS-RequestId with the same body answers the original again.
      if (record->compare(0, kHashBytes, hash) != 0)
        return error_response(409, "IDEMPOTENCY_CONFLICT",
                              "this MS-RequestId was used for a different request; use a new one");
      Json original = Json::parse(record->substr(kHashBytes));
      HttpResponse r = json_response(original.at("status").get<int>(),
                                     original.at("body").get<std::string>());
      for (const auto& [name, value] : original.at("headers").items())
        r.headers.emplace_back(name, value.get<std::string>());
      r.headers.emplace_back("Idempotent-Replayed", "true");
      return r;
    }
    if (precheck)
      if (auto refused = precheck(ledger)) return *refused;
    Ledger::GroupResult result = ledger.submit_group(commands);
    if (result.rejected_index) {
      const CommandResult& r = result.rejection;
      HttpResponse out = error_response(status_of_code(r.code), r.code, r.message);
      if (line_indexed) {
        Json j = Json::parse(out.body);
        j["line_index"] = *result.rejected_index;
        out.body = j.dump();
      }
      return out;
    }
    HttpResponse out = render(ledger, result);
    Json headers = Json::object();
    for (const auto& [name, value] : out.headers) headers[name] = value;
    ledger.remember_record(
        key, hash + Json{{"status", out.status}, {"body", out.body}, {"headers", headers}}.dump());
    return out;
  });
}

// A dry billing run (`bill --dry-run`): computed over a read-only ledger as of the last durable
// event, on a thread of its own so the writer and the I/O threads go on; nothing is recorded.
void Api::dry_run(Call& call, Command command) {
  if (options_.db_dir.empty())
    return call.answer(error_response(503, "UNAVAILABLE", "dry runs are not served here"));
  if (dry_run_busy_.exchange(true)) {
    HttpResponse busy = error_response(
        429, "THROTTLED", "a dry billing run is in progress (each holds a copy of the ledger); retry");
    busy.headers.emplace_back("Retry-After", "5");
    return call.answer(std::move(busy));
  }
  std::lock_guard lock(background_mutex_);
  if (background_.joinable()) background_.join();  // the previous dry run, already answered
  Call* c = &call;
  background_ = std::thread([this, c, command = std::move(command)] {
    HttpResponse r;
    try {
      Ledger::Options options;
      options.preview = true;
      options.create_if_missing = false;
      auto opened = Ledger::open(options_.db_dir, std::move(options));
      if (!opened.ok()) {
        r = unavailable(std::string(opened.status().message()));
      } else {
        Ledger& ledger = **opened;
        CommandResult result = ledger.submit(command);
        if (!ledger.io_failure().empty())
          r = unavailable(ledger.io_failure());
        else if (!result.ok)
          r = error_response(status_of_code(result.code), result.code, result.message);
        else
          r = json_response(200, result.duplicate ? result.to_json()
                                                  : ledger.last_billing().to_json());
      }
    } catch (const std::exception& e) {
      r = error_response(500, "INTERNAL", e.what());
    }
    dry_run_busy_ = false;
    c->answer(std::move(r));
  });
}

void Api::join_background() {
  std::lock_guard lock(background_mutex_);
  if (background_.joinable()) background_.join();
}

void Api::dispatch(Call& call) {
  const std::string route = call.route->pattern;
  const std::string& method = call.request.method;
  const std::string prefix = call.prefix;
  const Principal principal = call.principal;
  const std::string rid = call.prefix + call.request.request_id;
  auto fail = [&](std::optional<HttpResponse> r) { call.answer(std::move(*r)); };
  int64_t limit = 0, offset = 0;
  if (method == "GET")
    if (auto r = parse_limit(call.query, limit, offset)) return fail(r);
  const std::string cid = call.params.count("cid") ? call.scoped(call.param("cid")) : "";
  const std::string sid = call.params.count("sid") ? call.scoped(call.param("sid")) : "";
  const std::string path = call.path;
  const auto query = call.query;
  Json body;
  if (method != "GET" && route != "/v1/commands")
    if (auto r = body_object(call.request.body, body)) return fail(r);
  const Date today = options_.today();
  auto date_of = [&](Json& obj) {
    if (!obj.contains("date")) obj["date"] = today.iso();
  };

  if (route == "/v1/customers" && method == "POST") {
    if (auto r = only_fields(body, {"customer_id", "country", "currency", "company_name",
                                    "organization_registration_number", "phone", "middle_name"},
                             "a customer"))
      return fail(r);
    if (auto r = scope_member(body, "customer_id", prefix)) return fail(r);
    body["cmd"] = "create_customer";
    body["request_id"] = rid;
    body["partner_id"] = principal.partner_id;
    Command c;
    if (auto r = to_command(body, principal, c)) return fail(r);
    std::string id = c.customer_id;
    return write(call, {c}, nullptr, [id, prefix](Ledger& l, const Ledger::GroupResult&) {
      const Customer* customer = l.state().catalog().customer(id);
      HttpResponse r = json_response(201, unscoped_json(customer_json(customer->def), prefix));
      r.headers.emplace_back("Location", "/v1/customers/" + strip(id, prefix));
      return r;
    });
  }
  if (route == "/v1/customers" && method == "GET") {
    std::string partner = principal.partner_id;
    return run(call, [=](Ledger& l) {
      std::vector<std::string> items;
      if (const Partner* p = l.state().catalog().partner(partner))
        for (const auto& id : p->customer_ids)
          items.push_back(customer_json(l.state().catalog().customer(id)->def));
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/customers/{cid}") {
    return run(call, [=](Ledger& l) {
      const Customer* c = l.state().catalog().customer(cid);
      if (!c) return not_found("customer", strip(cid, prefix));
      return json_response(200, unscoped_json(customer_json(c->def), prefix));
    });
  }
  if (route == "/v1/customers/{cid}/orders" && method == "POST") {
    if (auto r = only_fields(body, {"date", "line_items"}, "an order")) return fail(r);
    date_of(body);
    auto items = body.find("line_items");
    if (items == body.end() || !items->is_array() || items->empty() || items->size() > 100)
      return fail(bad("line_items must be a list of 1 to 100 line items"));
    std::vector<Command> commands;
    for (size_t i = 0; i < items->size(); ++i) {
      Json line = (*items)[i];
      auto at = [&](std::optional<HttpResponse> r) {
        Json j = Json::parse(r->body);
        j["line_index"] = i;
        r->body = j.dump();
        return r;
      };
      if (!line.is_object()) return fail(at(bad("a line item must be a JSON object")));
      if (auto r = only_fields(line,
                               {"subscription_id", "offer_id", "seats", "billing_frequency",
                                "parent_subscription_id", "trial"},
                               "a line item"))
        return fail(at(r));
      if (!line.contains("subscription_id"))
        line["subscription_id"] = call.request.request_id + "-" + std::to_string(i);
      bool trial = false;
      if (auto t = line.find("trial"); t != line.end()) {
        if (!t->is_boolean()) return fail(at(bad("trial must be true or false")));
        trial = t->get<bool>();
        line.erase(t);
      }
      if (trial && (line.contains("seats") || line.contains("billing_frequency") ||
                    line.contains("parent_subscription_id")))
        return fail(at(bad("a trial line takes no seats (trials have 25), billing_frequency or "
                           "parent_subscription_id")));
      for (const char* f : {"subscription_id", "parent_subscription_id"})
        if (auto r = scope_member(line, f, prefix)) return fail(at(r));
      line["cmd"] = trial ? "start_trial" : "create_subscription";
      line["request_id"] = rid;
      line["customer_id"] = cid;
      line["date"] = body["date"];
      Command c;
      if (auto r = to_command(line, principal, c)) return fail(at(r));
      commands.push_back(std::move(c));
    }
    std::string order_id = call.request.request_id;
    auto precheck = [cid, prefix](Ledger& l) -> std::optional<HttpResponse> {
      if (!l.state().catalog().customer(cid)) return not_found("customer", strip(cid, prefix));
      return std::nullopt;
    };
    auto render = [order_id, cid, prefix, commands](Ledger& l, const Ledger::GroupResult&) {
      std::vector<OrderLine> lines;
      for (const auto& c : commands) {
        const Subscription* s = l.state().subscription(c.subscription_id);
        bool trial = c.type == CommandType::kStartTrial;
        lines.push_back(OrderLine{c.subscription_id, c.offer_id, c.parent_subscription_id,
                                  s->seats, trial ? std::nullopt : std::optional(s->frequency),
                                  trial});
      }
      HttpResponse r = json_response(
          201, unscoped_json(order_json(order_id, cid, commands.front().date, lines), prefix));
      r.headers.emplace_back("Location", "/v1/customers/" + strip(cid, prefix) + "/orders/" +
                                             order_id);
      return r;
    };
    return write(call, std::move(commands), precheck, render, /*line_indexed=*/true);
  }
  if (route == "/v1/customers/{cid}/orders" || route == "/v1/customers/{cid}/orders/{oid}") {
    std::string oid = call.params.count("oid") ? call.param("oid") : "";
    return run(call, [=](Ledger& l) {
      const Customer* c = l.state().catalog().customer(cid);
      if (!c) return not_found("customer", strip(cid, prefix));
      // Orders from the subscriptions' opening events: grouped by the request that opened them.
      std::vector<std::string> ids;
      std::map<std::string, std::pair<Date, std::vector<OrderLine>>> orders;
      EventDecoder decoder;
      Event e;
      for (const auto& id : c->subscription_ids) {
        auto seqs = l.store().stream_seqs(Stream{StreamKind::kSubscription, id});
        if (!seqs.ok() && !absl::IsNotFound(seqs.status()))
          return error_response(503, "UNAVAILABLE", std::string(seqs.status().message()));
        if (!seqs.ok() || seqs->empty()) continue;  // not durable yet
        auto bytes = l.store().event_bytes(seqs->front());
        if (!bytes.ok() || !decoder.decode(*bytes, e).empty())
          return error_response(503, "UNAVAILABLE",
                                "event " + std::to_string(seqs->front()) + " cannot be read");
        auto line = order_line_of(e);
        if (!line) continue;
        std::string order = strip(e.request_id.substr(0, e.request_id.find('#')), prefix);
        auto [it, fresh] = orders.try_emplace(order, e.effective_date, std::vector<OrderLine>{});
        if (fresh) ids.push_back(order);
        it->second.second.push_back(*line);
      }
      if (!oid.empty()) {
        auto it = orders.find(oid);
        if (it == orders.end()) return not_found("order", oid);
        return json_response(200, unscoped_json(order_json(oid, cid, it->second.first,
                                                           it->second.second),
                                                prefix));
      }
      std::vector<std::string> items;
      for (const auto& id : ids)
        items.push_back(order_json(id, cid, orders[id].first, orders[id].second));
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/customers/{cid}/subscriptions") {
    return run(call, [=](Ledger& l) {
      const Customer* c = l.state().catalog().customer(cid);
      if (!c) return not_found("customer", strip(cid, prefix));
      std::vector<std::string> items;
      for (const auto& id : c->subscription_ids)
        items.push_back(subscription_json(*l.state().subscription(id)));
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/customers/{cid}/subscriptions/{sid}" && method == "GET") {
    std::optional<Date> as_of;
    if (auto r = parse_date_param(query, "as_of", as_of, false)) return fail(r);
    return run(call, [=](Ledger& l) {
      if (!owned_subscription(l, cid, sid)) return not_found("subscription", strip(sid, prefix));
      if (!as_of) return subscription_response(l, sid, prefix);
      std::string error;
      auto sub = subscription_as_of(l.store(), l.state().catalog(), sid, *as_of, error);
      if (!error.empty()) return error_response(500, "INTERNAL", error);
      if (!sub)
        return error_response(404, "NOT_FOUND", "subscription '" + strip(sid, prefix) +
                                                    "' did not exist yet on " + as_of->iso());
      return json_response(200, unscoped_json(subscription_json(*sub, *as_of), prefix));
    });
  }
  auto owned_check = [cid, sid, prefix](Ledger& l) -> std::optional<HttpResponse> {
    if (!owned_subscription(l, cid, sid)) return not_found("subscription", strip(sid, prefix));
    return std::nullopt;
  };
  auto render_subscription = [sid, prefix](Ledger& l, const Ledger::GroupResult&) {
    return subscription_response(l, sid, prefix);
  };
  auto subscription_command = [&](const char* cmd, Json fields) -> std::optional<Command> {
    fields["cmd"] = cmd;
    fields["request_id"] = rid;
    fields["subscription_id"] = sid;
    Command c;
    if (auto r = to_command(fields, principal, c)) {
      fail(r);
      return std::nullopt;
    }
    return c;
  };
  if (route == "/v1/customers/{cid}/subscriptions/{sid}" && method == "PATCH") {
    if (auto r = only_fields(body, {"status", "seats", "auto_renew", "date"}, "a subscription patch"))
      return fail(r);
    date_of(body);
    Json date = body["date"];
    std::vector<Command> commands;
    std::string status;
    if (body.contains("status")) {
      if (body["status"] == "active")
        status = "active";
      else if (body["status"] == "cancelled")
        status = "cancelled";
      else
        return fail(bad("status must be \"active\" (reactivate) or \"cancelled\" (cancel)"));
    }
    // SERVER.md's order: reactivate, seats, auto_renew, cancel.
    if (status == "active") {
      auto c = subscription_command("reactivate", {{"date", date}});
      if (!c) return;
      commands.push_back(*c);
    }
    if (body.contains("seats")) {
      auto c = subscription_command("change_seats", {{"seats", body["seats"]}, {"date", date}});
      if (!c) return;
      commands.push_back(*c);
    }
    if (body.contains("auto_renew")) {
      auto c =
          subscription_command("set_auto_renew", {{"enabled", body["auto_renew"]}, {"date", date}});
      if (!c) return;
      commands.push_back(*c);
    }
    if (status == "cancelled") {
      auto c = subscription_command("cancel", {{"date", date}});
      if (!c) return;
      commands.push_back(*c);
    }
    if (commands.empty()) return fail(bad("a patch needs status, seats or auto_renew"));
    std::string if_match = call.request.if_match;
    auto precheck = [owned_check, if_match, sid](Ledger& l) -> std::optional<HttpResponse> {
      if (auto r = owned_check(l)) return r;
      if (if_match.empty() || if_match == "*") return std::nullopt;
      std::string etag =
          "\"" + std::to_string(l.state().stream_version(Stream{StreamKind::kSubscription, sid})) +
          "\"";
      std::string given = if_match.starts_with("W/") ? if_match.substr(2) : if_match;
      if (given != etag && given != etag.substr(1, etag.size() - 2))
        return error_response(412, "PRECONDITION_FAILED",
                              "If-Match " + if_match + " does not match the subscription's ETag " +
                                  etag + "; GET it again");
      return std::nullopt;
    };
    return write(call, std::move(commands), precheck, render_subscription);
  }
  if (route == "/v1/customers/{cid}/subscriptions/{sid}/addons") {
    return run(call, [=](Ledger& l) {
      if (!owned_subscription(l, cid, sid)) return not_found("subscription", strip(sid, prefix));
      std::vector<std::string> items;
      for (const auto& id : l.state().catalog().customer(cid)->subscription_ids) {
        const Subscription* s = l.state().subscription(id);
        if (s->parent_id == sid) items.push_back(subscription_json(*s));
      }
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/customers/{cid}/subscriptions/{sid}/conversions" && method == "GET") {
    return run(call, [=](Ledger& l) {
      const Subscription* s = owned_subscription(l, cid, sid);
      if (!s) return not_found("subscription", strip(sid, prefix));
      std::vector<std::string> items;
      if (s->status == Status::kTrial) {
        // A trial has no currency of its own yet: it converts in its customer's.
        const std::string& currency = l.state().catalog().customer(cid)->def.currency;
        auto price = l.state().catalog().price_at(s->offer_id, currency, today);
        for (Frequency f : {Frequency::kMonthly, Frequency::kAnnual})
          items.push_back(Json{{"billing_frequency", to_string(f)},
                               {"offer_id", s->offer_id},
                               {"unit_price", price ? Json(format_price(*price)) : Json(nullptr)},
                               {"currency", currency}}
                              .dump());
      }
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/customers/{cid}/subscriptions/{sid}/conversions") {
    if (auto r = only_fields(body, {"billing_frequency", "date"}, "a conversion")) return fail(r);
    date_of(body);
    auto c = subscription_command("convert_trial", body);
    if (!c) return;
    return write(call, {*c}, owned_check, render_subscription);
  }
  if (route == "/v1/customers/{cid}/subscriptions/{sid}/renewals") {
    if (auto r = only_fields(body, {"date"}, "a renewal")) return fail(r);
    date_of(body);
    auto c = subscription_command("renew", body);
    if (!c) return;
    return write(call, {*c}, owned_check, render_subscription);
  }
  if (route == "/v1/customers/{cid}/agreements" && method == "POST") {
    if (auto r = only_fields(body, {"customer_id", "agreement_type", "date_agreed", "contact"},
                             "an agreement"))
      return fail(r);
    if (body.contains("customer_id") && body["customer_id"] != call.param("cid"))
      return fail(bad("customer_id in the body must be the customer of the path, or absent"));
    body["cmd"] = "accept_agreement";
    body["request_id"] = rid;
    body["customer_id"] = cid;
    Command c;
    if (auto r = to_command(body, principal, c)) return fail(r);
    std::string type = c.agreement_type;
    auto precheck = [cid, prefix](Ledger& l) -> std::optional<HttpResponse> {
      if (!l.state().catalog().customer(cid)) return not_found("customer", strip(cid, prefix));
      return std::nullopt;
    };
    return write(call, {c}, precheck, [cid, type, prefix](Ledger& l, const Ledger::GroupResult&) {
      const Customer* customer = l.state().catalog().customer(cid);
      const Agreement* a = customer->agreement(type);
      HttpResponse r = json_response(
          201, unscoped_json(agreement_view(*customer, *a, true).dump(), prefix));
      r.headers.emplace_back("Location", "/v1/customers/" + strip(cid, prefix) + "/agreements");
      return r;
    });
  }
  if (route == "/v1/customers/{cid}/agreements") {
    return run(call, [=](Ledger& l) {
      const Customer* c = l.state().catalog().customer(cid);
      if (!c) return not_found("customer", strip(cid, prefix));
      std::vector<std::string> items;
      for (const auto& a : c->agreements) items.push_back(agreement_view(*c, a, true).dump());
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/invoices" || route == "/v1/reconciliation") {
    std::optional<Date> from, to;
    bool csv = route == "/v1/reconciliation";
    if (auto r = parse_date_param(query, "from", from, csv)) return fail(r);
    if (auto r = parse_date_param(query, "to", to, csv)) return fail(r);
    std::string customer;
    if (auto it = query.find("customer_id"); it != query.end()) {
      if (!id_error("customer_id", it->second).empty() || it->second.find(':') != std::string::npos)
        if (!prefix.empty()) return fail(bad("customer_id is not one of your ids"));
      customer = prefix + it->second;
    }
    std::string partner = principal.partner_id;
    return run(call, [=](Ledger& l) {
      // Streamed in listing order: only the page's invoices (or the CSV's rows) are held, not
      // every invoice of the ledger.
      InvoiceSelection selection{customer, partner, from.value_or(Date()), to.value_or(Date())};
      std::vector<std::string> shown;
      size_t total = 0;
      std::string text = csv ? reconciliation_header() : "";
      absl::Status read =
          for_each_issued_invoice(l.store(), selection, [&](const IssuedInvoice& issued) {
            const size_t index = total++;
            if (csv) {
              // The caller's ids as it knows them, in the same rows the CLI writes.
              Invoice inv = issued.invoice;
              inv.invoice_id = strip(inv.invoice_id, prefix);
              inv.customer_id = strip(inv.customer_id, prefix);
              for (auto& line : inv.lines)
                line.subscription_id = strip(line.subscription_id, prefix);
              append_reconciliation_rows(text, inv);
            } else if (on_page(index, limit, offset)) {
              shown.push_back(invoice_json(issued.invoice));
            }
            return true;
          });
      if (!read.ok())
        return error_response(503, "UNAVAILABLE", std::string(read.message()));
      if (!csv) return page_of(shown, total, limit, offset, path, query, prefix);
      HttpResponse r = json_response(200, text);
      r.content_type = "text/csv";
      return r;
    });
  }
  if (route == "/v1/invoices/{iid}" || route == "/v1/invoices/{iid}/lineitems") {
    std::string iid = call.scoped(call.param("iid"));
    std::string partner = principal.partner_id;
    bool lines = route.ends_with("lineitems");
    return run(call, [=](Ledger& l) {
      auto issued = issued_invoice(l.store(), iid);
      if (!issued.ok() && !absl::IsNotFound(issued.status()))
        return error_response(503, "UNAVAILABLE", std::string(issued.status().message()));
      if (!issued.ok() || (!partner.empty() && issued->invoice.partner_id != partner))
        return not_found("invoice", strip(iid, prefix));
      if (!lines) return json_response(200, unscoped_json(invoice_json(issued->invoice), prefix));
      auto explained = explain_lines(l.store(), *issued);
      if (!explained.ok())
        return error_response(503, "UNAVAILABLE", std::string(explained.status().message()));
      return page(*explained, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/renewals") {
    std::optional<Date> from, to;
    if (auto r = parse_date_param(query, "from", from, true)) return fail(r);
    if (auto r = parse_date_param(query, "to", to, true)) return fail(r);
    return run(call, [=](Ledger& l) {
      auto items = renewal_lines(l.state(), *from, *to, [&](const Subscription& s) {
        return prefix.empty() || s.id.starts_with(prefix);
      });
      return page(items, limit, offset, path, query, prefix);
    });
  }
  if (route == "/v1/auditrecords") {
    uint64_t after = 0;
    if (auto it = query.find("after_seq"); it != query.end()) {
      const std::string& s = it->second;
      if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), ::isdigit))
        return fail(bad("after_seq must be a whole number from 0"));
      after = std::stoull(s);
    }
    std::string type = query.count("type") ? query.at("type") : "";
    std::string partner = principal.partner_id;
    return run(call, [=](Ledger& l) {
      Json items = Json::array();
      EventDecoder decoder;
      Event e;
      uint64_t last = after;
      bool more = false;
      std::string decode_error;
      std::string scan = l.store().scan_events(after, [&](uint64_t seq, std::string_view bytes) {
        decode_error = decoder.decode(bytes, e);
        if (!decode_error.empty()) return false;
        if (!type.empty() && event_type_name(e.payload) != type) return true;
        auto view = audit_view(e, partner);
        if (!view) return true;
        if (static_cast<int64_t>(items.size()) == limit) {
          more = true;
          return false;
        }
        items.push_back(Json::parse(*view));
        last = seq;
        return true;
      });
      if (!scan.empty() || !decode_error.empty())
        return error_response(500, "INTERNAL", scan + decode_error);
      Json j;
      j["items"] = std::move(items);
      Json links = Json::object();
      if (more) {
        auto q = query;
        q["after_seq"] = std::to_string(last);
        q["limit"] = std::to_string(limit);
        links["next"] = path + query_string(q);
      }
      j["links"] = std::move(links);
      return json_response(200, j.dump());
    });
  }
  if (route == "/v1/commands") {
    ParsedCommand parsed = parse_command(call.request.body);
    std::string body_text = call.request.body;
    std::string actor = std::string(kKeyActorPrefix) + principal.key_id;
    return run(call, [parsed, actor](Ledger& l) {
      CommandResult result;
      if (!parsed.command) {
        result.request_id = parsed.request_id;
        result.code = parsed.rejection.code;
        result.message = parsed.rejection.message;
      } else {
        Command c = *parsed.command;
        c.actor = actor;
        result = l.submit(c);
      }
      return json_response(200, result.to_json());
    });
  }
  if (route == "/v1/billingruns") {
    if (auto r = only_fields(body, {"through", "dry_run"}, "a billing run")) return fail(r);
    if (body.contains("dry_run") && !body["dry_run"].is_boolean())
      return fail(bad("dry_run must be true or false"));
    Json cmd{{"cmd", "run_billing"}, {"request_id", call.request.request_id}};
    if (body.contains("through")) cmd["through"] = body["through"];
    Command c;
    if (auto r = to_command(cmd, principal, c)) return fail(r);
    if (body.value("dry_run", false)) return dry_run(call, std::move(c));
    return write(call, {c}, nullptr, [](Ledger& l, const Ledger::GroupResult& g) {
      if (g.results.front().duplicate) return json_response(200, g.results.front().to_json());
      return json_response(200, l.last_billing().to_json());
    });
  }
  call.answer(error_response(404, "NOT_FOUND", "no route " + call.path));
}

}  // namespace subledger::server
