#include "server/api.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cctype>
#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "events/codec.h"
#include "events/hash.h"
#include "events/money.h"
#include "ledger/queries.h"
#include "ledger/rejection.h"
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
constexpr size_t kCsvInvoicesPerPiece = 32;  // a streamed CSV holds this many invoices at a time

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

std::optional<HttpResponse> bad(const std::string& message) {
  return error_response(400, "INVALID_ARGUMENT", message);
}

HttpResponse not_found(const std::string& what, const std::string& id) {
  return error_response(404, "NOT_FOUND", "no " + what + " '" + id + "'");
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

bool valid_utf8(const std::string& s) {
  try {
    (void)Json(s).dump();  // the JSON library refuses what is not UTF-8
    return true;
  } catch (const Json::exception&) {
    return false;
  }
}

// RFC 3986 percent-decoding (and '+' as a space in a query). nullopt for an escape that is not
// '%' and two hex digits, or for bytes that are not UTF-8 once decoded.
std::optional<std::string> percent_decode(std::string_view s, bool query) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return std::nullopt;
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(query && s[i] == '+' ? ' ' : s[i]);
    }
  }
  if (!valid_utf8(out)) return std::nullopt;
  return out;
}

// A query value as a URI carries it: unreserved characters as they are, every other byte %XX.
std::string percent_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string query_string(const std::map<std::string, std::string>& query) {
  std::string out;
  for (const auto& [k, v] : query)
    out += (out.empty() ? "?" : "&") + percent_encode(k) + "=" + percent_encode(v);
  return out;
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

// The request body as a JSON object, or the 400 to answer. Read as strictly as a command line
// (ledger/strict_json.h): no NUL byte, UTF-8, bounded nesting, no key twice in an object.
std::optional<HttpResponse> body_object(const std::string& body, Json& out) {
  std::string error;
  std::optional<Json> parsed = parse_json_strictly<Json>(
      body.empty() ? std::string_view("{}") : std::string_view(body), error);
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

// A body of at most this many bytes makes a command object whose text is under
// kCommandBytesMax: a value prints at most 8 times the bytes it was read from (a 3-byte "1e9"
// prints as "1000000000.0"; strings and integers print no longer), plus the few ids a handler
// adds. Such an object is checked as it is, without printing it and reading it again.
constexpr size_t kBodyBytesReadAsIs = 64 << 10;
static_assert(8 * kBodyBytesReadAsIs + (64 << 10) <= kCommandBytesMax);

// Parses a command object built from a request body of `body_bytes`; the actor is the key.
std::optional<HttpResponse> to_command(const Json& doc, size_t body_bytes, const Principal& p,
                                       Command& out) {
  ParsedCommand parsed = body_bytes <= kBodyBytesReadAsIs
                             ? parse_command_object(nlohmann::json(doc))
                             : parse_command(doc.dump());
  if (!parsed.command)
    return error_response(status_of_code(parsed.rejection.code), parsed.rejection.code,
                          parsed.rejection.message);
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

// Whether an If-Match field value matches the current strong `etag` ("\"<version>\""): "*", or a
// list of entity tags of which one is that strong tag (RFC 9110 13.1.1: a weak tag never matches
// If-Match). A bare version without quotes is taken as its strong tag, as it always was here.
bool if_match_matches(std::string_view field, const std::string& etag) {
  while (!field.empty()) {
    size_t comma = field.find(',');
    std::string_view member = field.substr(0, comma);
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t'))
      member.remove_prefix(1);
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t'))
      member.remove_suffix(1);
    if (member == "*" || member == etag) return true;
    if (!member.starts_with("W/") && !member.starts_with('"') &&
        "\"" + std::string(member) + "\"" == etag)
      return true;
    field = comma == std::string_view::npos ? std::string_view() : field.substr(comma + 1);
  }
  return false;
}

// A list page: {"total_count", "items", "links": {"next"}}: `total` items, of which `shown` are
// those from `offset` on (at most `limit`).
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

// A page of `total` items rendered by `item(i)`: only the page's items are rendered.
HttpResponse page_by_index(size_t total, const std::function<std::string(size_t)>& item,
                           int64_t limit, int64_t offset, const std::string& path,
                           std::map<std::string, std::string> query, const std::string& prefix) {
  std::vector<std::string> shown;
  for (size_t i = static_cast<size_t>(offset); i < total && shown.size() < static_cast<size_t>(limit);
       ++i)
    shown.push_back(item(i));
  return page_of(shown, total, limit, offset, path, std::move(query), prefix);
}

HttpResponse page(const std::vector<std::string>& all, int64_t limit, int64_t offset,
                  const std::string& path, std::map<std::string, std::string> query,
                  const std::string& prefix) {
  return page_by_index(
      all.size(), [&](size_t i) { return all[i]; }, limit, offset, path, std::move(query), prefix);
}

std::string etag_of(const LedgerState& state, const std::string& subscription_id) {
  return "\"" +
         std::to_string(state.stream_version(Stream{StreamKind::kSubscription, subscription_id})) +
         "\"";
}

HttpResponse subscription_response(const LedgerState& state, const std::string& id,
                                   const std::string& prefix) {
  HttpResponse r = json_response(200, subscription_json(*state.subscription(id), Date(), prefix));
  r.headers.emplace_back("ETag", etag_of(state, id));
  return r;
}

// The customer, when the caller may see it: the operator any; a partner only a customer created
// for it in its scope (so whatever it lists it can fetch, and the reverse).
const Customer* owned_customer(const LedgerState& state, const std::string& partner,
                               const std::string& id) {
  const Customer* c = state.catalog().customer(id);
  if (!c || (!partner.empty() && (c->def.partner_id != partner || !id.starts_with(partner + ":"))))
    return nullptr;
  return c;
}

// The customer's subscription, or nullptr (also for another customer's).
const Subscription* owned_subscription(const LedgerState& state, const std::string& customer,
                                       const std::string& id) {
  const Subscription* sub = state.subscription(id);
  return sub && sub->customer_id == customer ? sub : nullptr;
}

// An agreement as `partner` sees it ("": the operator). A partner's view has no event_seq: the
// log's number would tell of other partners' events (issue 17 class 9), and the answer to its POST
// is made before the event is durable, so no position exists yet; its audit record
// (type=AgreementAccepted) numbers it.
Json agreement_view(const Customer& c, const Agreement& a, bool with_contact,
                    const std::string& partner) {
  Json j = Json::parse(agreement_json(c.def.customer_id, a, with_contact));
  if (!partner.empty()) j.erase("event_seq");
  return j;
}

// Issue 17 class 9: what a partner reads carries nothing derived from other partners' events. In
// `j` (an invoice, an explain line, a renewal), each sequence number of the log
// becomes the event's position in the partner's activity (the `seq` its audit records show; null
// for an event outside it) and the hash chain is left out. The operator (partner "") reads the
// log's own numbers and hashes.
void in_partner_positions(Json& j, const ActivityIndex& index, const std::string& partner) {
  if (partner.empty() || !j.is_structured()) return;
  if (j.is_array()) {
    for (auto& v : j) in_partner_positions(v, index, partner);
    return;
  }
  j.erase("chain_position");
  j.erase("prev_hash");
  j.erase("hash");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    Json& v = it.value();
    if (key == "event_seq" || key == "issued_in_event" || key == "defined_in_event" ||
        key == "seq") {
      if (v.is_number_unsigned()) {
        std::optional<uint64_t> position = index.position_of(partner, v.get<uint64_t>());
        v = position ? Json(*position) : Json(nullptr);
      }
    } else {
      in_partner_positions(v, index, partner);
    }
  }
}

std::string in_partner_positions(const std::string& text, const ActivityIndex& index,
                                 const std::string& partner) {
  if (partner.empty()) return text;
  Json j = Json::parse(text);
  in_partner_positions(j, index, partner);
  return j.dump();
}

// The partner's view of one of its events at `position` in its activity: its own position, not
// the log's sequence number, and nothing of the hash chain (both would tell of other partners'
// events); no personal data.
std::string audit_view(const Event& e, const std::string& partner, uint64_t position) {
  const std::string prefix = partner + ":";
  Json j = Json::parse(event_json(e));
  j["seq"] = position;
  j.erase("prev_hash");
  j.erase("hash");
  if (j.contains("data") && j["data"].is_object()) {
    if (std::holds_alternative<AgreementAccepted>(e.payload)) j["data"].erase("contact");
    j["data"].erase("chain_head");
  }
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

// The answer kept for a retried MS-RequestId, after the request's hash: kAnswerRecord, the status
// (2 bytes), then the body and each header's name and value as a 4-byte length and its bytes (all
// big-endian). Records written before this form are a JSON object {"status", "body", "headers"}.
constexpr char kAnswerRecord = '\x01';

void put_length_prefixed(std::string& out, std::string_view bytes) {
  const auto n = static_cast<uint32_t>(bytes.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  out.append(bytes);
}

std::string answer_record(const std::string& hash, const HttpResponse& r) {
  std::string out = hash;
  out.push_back(kAnswerRecord);
  out.push_back(static_cast<char>(r.status >> 8));
  out.push_back(static_cast<char>(r.status & 0xff));
  put_length_prefixed(out, r.body);
  for (const auto& [name, value] : r.headers) {
    put_length_prefixed(out, name);
    put_length_prefixed(out, value);
  }
  return out;
}

// The answer a record keeps (the bytes after the hash), replayed; nullopt when they are neither
// form (a damaged record).
std::optional<HttpResponse> replayed_answer(std::string_view kept) {
  HttpResponse r;
  if (!kept.empty() && kept.front() == '{') {
    std::string error;
    auto original = parse_json_strictly<Json>(kept, error);
    if (!original || !original->is_object()) return std::nullopt;
    auto status = original->find("status"), body = original->find("body");
    auto headers = original->find("headers");
    if (status == original->end() || !status->is_number_integer() || body == original->end() ||
        !body->is_string() || headers == original->end() || !headers->is_object())
      return std::nullopt;
    r.status = status->get<int>();
    r.body = body->get<std::string>();
    for (const auto& [name, value] : headers->items()) {
      if (!value.is_string()) return std::nullopt;
      r.headers.emplace_back(name, value.get<std::string>());
    }
  } else {
    if (kept.size() < 3 || kept.front() != kAnswerRecord) return std::nullopt;
    r.status = (static_cast<uint8_t>(kept[1]) << 8) | static_cast<uint8_t>(kept[2]);
    kept.remove_prefix(3);
    auto take = [&kept](std::string& out) {
      if (kept.size() < 4) return false;
      uint32_t n = 0;
      for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(kept[i]);
      if (kept.size() - 4 < n) return false;
      out.assign(kept.substr(4, n));
      kept.remove_prefix(4 + size_t{n});
      return true;
    };
    if (!take(r.body)) return std::nullopt;
    while (!kept.empty()) {
      std::string name, value;
      if (!take(name) || !take(value)) return std::nullopt;
      r.headers.emplace_back(std::move(name), std::move(value));
    }
  }
  r.headers.emplace_back("Idempotent-Replayed", "true");
  return r;
}

std::optional<size_t> event_type_index(const std::string& name) {
  auto names = event_type_names();
  auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) return std::nullopt;
  return static_cast<size_t>(it - names.begin());
}

}  // namespace

// The one table of ledger/rejection.h (SERVER.md "Errors").
int status_of_code(const std::string& code) { return http_status_of_code(code); }

HttpResponse error_response(int status, const std::string& code, const std::string& description) {
  // A description may quote what the client sent: a byte that is not UTF-8 is replaced, never
  // thrown over (an answer must always go out).
  return json_response(status, Json{{"code", code}, {"description", description}}.dump(
                                   -1, ' ', false, Json::error_handler_t::replace));
}

struct Api::Route {
  const char* method;
  const char* pattern;  // segments; {name} captures one. Also the metrics label.
  void (Api::*handler)(Call&);
  bool operator_only = false;
  bool operator_too = false;  // the operator key may call it too (invoices: every partner's)
};

// SERVER.md's routes, each with its handler.
const std::vector<Api::Route>& Api::routes() {
  static const std::vector<Route> table = {
      {"POST", "/v1/customers", &Api::create_customer},
      {"GET", "/v1/customers", &Api::list_customers},
      {"GET", "/v1/customers/{cid}", &Api::get_customer},
      {"PATCH", "/v1/customers/{cid}", &Api::update_customer},
      {"POST", "/v1/customers/{cid}/orders", &Api::place_order},
      {"GET", "/v1/customers/{cid}/orders", &Api::list_orders},
      {"GET", "/v1/customers/{cid}/orders/{oid}", &Api::get_order},
      {"GET", "/v1/customers/{cid}/subscriptions", &Api::list_subscriptions},
      {"GET", "/v1/customers/{cid}/subscriptions/{sid}", &Api::get_subscription},
      {"PATCH", "/v1/customers/{cid}/subscriptions/{sid}", &Api::patch_subscription},
      {"GET", "/v1/customers/{cid}/subscriptions/{sid}/addons", &Api::list_addons},
      {"GET", "/v1/customers/{cid}/subscriptions/{sid}/conversions", &Api::list_conversions},
      {"POST", "/v1/customers/{cid}/subscriptions/{sid}/conversions", &Api::convert_trial},
      {"POST", "/v1/customers/{cid}/subscriptions/{sid}/renewals", &Api::renew},
      {"POST", "/v1/customers/{cid}/agreements", &Api::accept_agreement},
      {"GET", "/v1/customers/{cid}/agreements", &Api::list_agreements},
      {"GET", "/v1/invoices", &Api::list_invoices, false, true},
      {"GET", "/v1/invoices/{iid}", &Api::get_invoice, false, true},
      {"GET", "/v1/invoices/{iid}/lineitems", &Api::invoice_lines, false, true},
      {"GET", "/v1/reconciliation", &Api::reconciliation, false, true},
      {"GET", "/v1/renewals", &Api::list_renewals, false, true},
      {"GET", "/v1/auditrecords", &Api::audit_records},
      {"POST", "/v1/commands", &Api::operator_command, true},
      {"POST", "/v1/billingruns", &Api::billing_run, true},
  };
  return table;
}

struct Api::Call {
  HttpRequest request;
  Done done;
  const Route* route = nullptr;
  std::map<std::string, std::string> params, query;
  std::string path;
  Principal principal;
  std::string prefix;  // "<partner_id>:" for a partner, "" for the operator
  int64_t limit = kLimitDefault, offset = 0;
  Json body;  // of a write: its handler moves it out, once
  Date today;

  std::string scoped(const std::string& id) const { return prefix + id; }
  std::string param(const std::string& name) const { return params.at(name); }
  // The customer / subscription of the path, scoped.
  std::string cid() const { return params.count("cid") ? scoped(params.at("cid")) : ""; }
  std::string sid() const { return params.count("sid") ? scoped(params.at("sid")) : ""; }
  std::string rid() const { return prefix + request.request_id; }
  const std::string& partner() const { return principal.partner_id; }
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
  void fail(std::optional<HttpResponse> r) { answer(std::move(*r)); }
};

Api::Api(LedgerHost& host, const KeyRing& keys, Metrics& metrics, ApiOptions options)
    : host_(host),
      keys_(keys),
      metrics_(metrics),
      options_(std::move(options)),
      reads_(options_.read_rate),
      writes_(options_.write_rate),
      customers_(options_.customer_rate),
      readers_(static_cast<size_t>(std::max(1, options_.reader_threads))) {
  if (!options_.today) options_.today = utc_today;
  metrics_.set_buckets([this] { return reads_.size() + writes_.size() + customers_.size(); });
}

void Api::handle(HttpRequest request, Done done) {
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->done = std::move(done);
  std::string_view target = call->request.target;
  size_t q = target.find('?');
  call->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      size_t eq = pair.find('=');
      auto key = percent_decode(pair.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                                : percent_decode(pair.substr(eq + 1), true);
      if (!key || !value)
        return call->fail(bad("the query has an invalid percent-escape (each % must be followed by "
                              "two hex digits, and the decoded text must be UTF-8)"));
      if (!key->empty()) call->query[*key] = *value;
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
  }
  const std::string& method = call->request.method;
  // Unauthenticated operations routes: GET only (RFC 9110 15.5.6: a 405 lists what is allowed).
  if (method != "GET" && (call->path == "/healthz" || call->path == "/openapi.json" ||
                          call->path == "/readyz" || call->path == "/metrics")) {
    HttpResponse r = error_response(405, "METHOD_NOT_ALLOWED",
                                    method + " is not served on " + call->path + "; use GET");
    r.headers.emplace_back("Allow", "GET");
    return call->done(std::move(r));
  }
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
    std::string failure = host_.current()->failure();
    HttpResponse r = draining_         ? error_response(503, "UNAVAILABLE", "shutting down")
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
  // Route match; path parameters are percent-decoded (an operator's scoped id may come as
  // P1%3AC1-...).
  // Each route's pattern is split once. The literal segments choose the route; only its own
  // parameters are decoded (a literal never holds '%', so no other route could have matched a
  // segment whose escape is bad).
  static const std::vector<std::vector<std::string_view>> patterns = [] {
    std::vector<std::vector<std::string_view>> out;
    for (const auto& route : routes()) out.push_back(segments(route.pattern));
    return out;
  }();
  auto parts = segments(call->path);
  bool path_known = false, bad_escape = false;
  std::string allowed;  // the methods served on this path, for a 405's Allow
  for (size_t r = 0; r < routes().size(); ++r) {
    const Route& route = routes()[r];
    const std::vector<std::string_view>& pattern = patterns[r];
    if (pattern.size() != parts.size()) continue;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i)
      match = pattern[i].starts_with('{') || pattern[i] == parts[i];
    if (!match) continue;
    path_known = true;
    if (method != route.method) {
      allowed += std::string(allowed.empty() ? "" : ", ") + route.method;
      continue;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!pattern[i].starts_with('{')) continue;
      auto decoded = percent_decode(parts[i], false);
      if (!decoded) bad_escape = true;
      call->params[std::string(pattern[i].substr(1, pattern[i].size() - 2))] =
          decoded.value_or("");
    }
    call->route = &route;
    break;
  }
  if (!call->route) {
    HttpResponse r = path_known
                         ? error_response(405, "METHOD_NOT_ALLOWED",
                                          method + " is not served on " + call->path + "; use " +
                                              allowed)
                         : error_response(404, "NOT_FOUND", "no route " + call->path);
    if (path_known) r.headers.emplace_back("Allow", allowed);
    return call->done(std::move(r));
  }
  if (bad_escape)
    return call->fail(bad("the path has an invalid percent-escape (each % must be followed by two "
                          "hex digits, and the decoded text must be UTF-8)"));
  // Authentication: Authorization: Bearer <key_id>.<secret>.
  std::string_view auth = call->request.authorization;
  std::optional<Principal> principal;
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer "))
    principal = keys_.authenticate(auth.substr(7));
  if (!principal) {
    HttpResponse r = error_response(
        401, "UNAUTHENTICATED",
        auth.empty() ? "no key: send Authorization: Bearer <key>" : "unknown or revoked key");
    // RFC 9110 11.6.1: a 401 says how to authenticate (RFC 6750 for bearer keys).
    r.headers.emplace_back("WWW-Authenticate", auth.empty()
                                                   ? "Bearer realm=\"subledger\""
                                                   : "Bearer realm=\"subledger\", error=\"invalid_token\"");
    return call->answer(std::move(r));
  }
  call->principal = *principal;
  if (call->route->operator_only && !principal->operator_key())
    return call->answer(error_response(403, "FORBIDDEN", "this route needs the operator key"));
  if (!call->route->operator_only && !call->route->operator_too && principal->operator_key())
    return call->answer(error_response(
        403, "FORBIDDEN", "partner routes need a partner key; the operator uses the CLI"));
  call->prefix = principal->operator_key() ? "" : principal->partner_id + ":";
  // Ids in the path are the caller's own: never another scope, never a malformed id. The
  // operator names invoices by their full (scoped) ids.
  for (const auto& [name, id] : call->params) {
    bool scoped_ok = principal->operator_key() && name == "iid";
    if (!id_error(name, scoped_ok ? id.substr(id.find(':') + 1) : id).empty() ||
        (!scoped_ok && id.find(':') != std::string::npos))
      return call->answer(error_response(404, "NOT_FOUND", "no " + name + " '" + id + "'"));
  }
  const bool is_write = method != "GET";
  // Throttling: a partner's reads and writes apart, and each of its customers (only customers
  // that exist get a bucket: an unknown id is answered 404 by its handler).
  if (!principal->operator_key()) {
    auto now = TokenBuckets::Clock::now();
    int wait = (is_write ? writes_ : reads_).take(principal->partner_id, now);
    if (wait == 0 && call->params.count("cid") &&
        host_.index().owns_customer(principal->partner_id, call->cid()))
      wait = customers_.take(call->cid(), now);
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
  if (draining_) return call->answer(error_response(503, "UNAVAILABLE", "shutting down"));
  if (!is_write) {
    if (auto r = parse_limit(call->query, call->limit, call->offset)) return call->fail(r);
  } else if (std::string(call->route->pattern) != "/v1/commands") {
    if (auto r = body_object(call->request.body, call->body)) return call->fail(r);
  }
  call->today = options_.today();
  // The call lives in the closures from here on.
  Call& ref = *call;
  auto keep = call;
  ref.done = [keep, done = std::move(ref.done)](HttpResponse r) mutable {
    keep.reset();  // breaks the cycle call -> done -> call
    done(std::move(r));
  };
  (this->*(ref.route->handler))(ref);
}

void Api::charge_read(const Call& call, double tokens) {
  if (!call.principal.operator_key())
    reads_.charge(call.partner(), tokens, TokenBuckets::Clock::now());
}

void Api::read(Call& call, std::function<HttpResponse(ReadView&)> work, bool uses_index,
               ReadKind kind) {
  read_attempt(&call, std::make_shared<std::function<HttpResponse(ReadView&)>>(std::move(work)),
               uses_index, true, kind);
}

void Api::read_attempt(Call* c, std::shared_ptr<std::function<HttpResponse(ReadView&)>> work,
                       bool uses_index, bool may_retry, ReadKind kind) {
  if (kind == ReadKind::kInMemory && !uses_index &&
      answer_read(c, work, uses_index, may_retry, /*only_if_free=*/true))
    return;
  boost::asio::post(readers_, [this, c, work, uses_index, may_retry] {
    // Readers run at a lower CPU priority than the deciding thread and the I/O threads: on a
    // busy machine a flood of reads slows the reads, not the writes.
    thread_local const bool lowered =
        setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10) == 0;
    (void)lowered;
    answer_read(c, work, uses_index, may_retry, /*only_if_free=*/false);
  });
}

bool Api::answer_read(Call* c, const std::shared_ptr<std::function<HttpResponse(ReadView&)>>& work,
                      bool uses_index, bool may_retry, bool only_if_free) {
  std::shared_ptr<Generation> g = host_.current();
  if (only_if_free && (!g->ledger || (g->writable() && !g->failure().empty())))
    return false;  // the reader's path says why, or reads from what is durable
  if (g->writable() && !g->failure().empty()) {
    // The writer just failed: its memory is ahead of the disk. Read from what is durable.
    host_.supervise();
    g = host_.current();
  }
  if (!g->ledger) {
    c->answer(unavailable(g->why_read_only));
    return true;
  }
  HttpResponse r;
  uint64_t seen = 0;
  double cost = 0;
  if (uses_index) {
    if (absl::Status s = host_.index().catch_up(g->ledger->store()); !s.ok()) {
      c->answer(error_response(503, "UNAVAILABLE", std::string(s.message())));
      return true;
    }
  }
  if (only_if_free) {
    if (!g->state_mutex.ReaderTryLock()) return false;
  } else {
    g->state_mutex.ReaderLock();
  }
  {
    ReadView view{*g->ledger, host_.index()};
    try {
      r = (*work)(view);
    } catch (const std::exception& e) {
      r = error_response(500, "INTERNAL", e.what());
    }
    seen = g->ledger->state().last_seq();
    cost = view.cost;
  }
  g->state_mutex.ReaderUnlock();
  charge_read(*c, cost);
  if (seen <= g->durable_seq.load() || !g->writable()) {
    c->answer(std::move(r));
    return true;
  }
  // It saw an event not durable yet: answer once the batch holding it is (if that batch fails,
  // read again from what is durable).
  bool queued = g->stream->try_submit(
      [this, c, g, seen, work, uses_index, may_retry,
       r = std::move(r)](Ledger*) mutable -> CommitPipeline::Ack {
        return [this, c, g, seen, work, uses_index, may_retry,
                r = std::move(r)](const std::string& e) mutable {
          if (!e.empty()) {
            if (may_retry) return read_attempt(c, work, uses_index, false);
            return c->answer(unavailable(e));
          }
          uint64_t d = g->durable_seq.load();
          while (d < seen && !g->durable_seq.compare_exchange_weak(d, seen)) {
          }
          c->answer(std::move(r));
        };
      });
  if (!queued) {
    if (may_retry && !g->failure().empty())
      read_attempt(c, work, uses_index, false);
    else
      c->answer(error_response(503, "UNAVAILABLE", "the ledger's queue is full"));
  }
  return true;
}

void Api::run(Call& call, std::function<HttpResponse(Ledger&)> work) {
  Call* c = &call;
  std::shared_ptr<Generation> g = host_.current();
  if (!g->writable()) return c->answer(unavailable(g->why_read_only));
  bool queued = g->stream->try_submit([c, g, work = std::move(work)](
                                          Ledger* ledger) -> CommitPipeline::Ack {
    if (!ledger) return [c](const std::string& e) { c->answer(unavailable(e)); };
    HttpResponse r;
    uint64_t staged_through = 0;
    {
      absl::WriterMutexLock lock(&g->state_mutex);
      try {
        r = work(*ledger);
      } catch (const std::exception& e) {
        r = error_response(500, "INTERNAL", e.what());
      }
      staged_through = ledger->state().last_seq();
    }
    return [c, g, staged_through, r = std::move(r)](const std::string& e) mutable {
      if (!e.empty()) return c->answer(unavailable(e));
      uint64_t d = g->durable_seq.load();
      while (d < staged_through && !g->durable_seq.compare_exchange_weak(d, staged_through)) {
      }
      c->answer(std::move(r));
    };
  });
  if (!queued) c->answer(error_response(503, "UNAVAILABLE", "the ledger's queue is full"));
}

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
      auto answer = replayed_answer(std::string_view(*record).substr(kHashBytes));
      if (!answer)
        return unavailable("the answer kept for this MS-RequestId cannot be read (a damaged "
                           "record)");
      return *answer;
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
    ledger.remember_record(key, answer_record(hash, out));
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
  readers_.join();
  std::lock_guard lock(background_mutex_);
  if (background_.joinable()) background_.join();
}

// ---- customers ----

void Api::create_customer(Call& call) {
  Json body = std::move(call.body);
  if (auto r = only_fields(body, {"customer_id", "country", "currency", "company_name",
                                  "organization_registration_number", "phone", "middle_name"},
                           "a customer"))
    return call.fail(r);
  if (auto r = scope_member(body, "customer_id", call.prefix)) return call.fail(r);
  body["cmd"] = "create_customer";
  body["request_id"] = call.rid();
  body["partner_id"] = call.partner();
  Command c;
  if (auto r = to_command(body, call.request.body.size(), call.principal, c)) return call.fail(r);
  std::string id = c.customer_id, prefix = call.prefix;
  write(call, {c}, nullptr, [id, prefix](Ledger& l, const Ledger::GroupResult&) {
    const Customer* customer = l.state().catalog().customer(id);
    HttpResponse r = json_response(201, unscoped_json(customer_json(customer->def), prefix));
    r.headers.emplace_back("Location", "/v1/customers/" + strip(id, prefix));
    return r;
  });
}

void Api::list_customers(Call& call) {
  read(call, [&call](ReadView& v) {
    std::vector<const Customer*> owned;
    if (const Partner* p = v.state().catalog().partner(call.partner()))
      for (const auto& id : p->customer_ids)
        if (const Customer* c = owned_customer(v.state(), call.partner(), id)) owned.push_back(c);
    v.cost = static_cast<double>(owned.size()) / kEntriesPerToken;
    return page_by_index(
        owned.size(), [&](size_t i) { return customer_json(owned[i]->def); }, call.limit,
        call.offset, call.path, call.query, call.prefix);
  });
}

void Api::get_customer(Call& call) {
  read(
      call,
      [&call](ReadView& v) {
        const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
        if (!c) return not_found("customer", call.param("cid"));
        return json_response(200, unscoped_json(customer_json(c->def), call.prefix));
      },
      false, ReadKind::kInMemory);
}

void Api::update_customer(Call& call) {
  Json body = std::move(call.body);
  if (auto r = only_fields(body, {"company_name", "organization_registration_number", "phone",
                                  "middle_name", "segment"},
                           "a customer update"))
    return call.fail(r);
  if (body.empty())
    return call.fail(bad("a customer update needs one of company_name, "
                         "organization_registration_number, phone, middle_name, segment"));
  body["cmd"] = "update_customer";
  body["request_id"] = call.rid();
  body["customer_id"] = call.cid();
  Command c;
  if (auto r = to_command(body, call.request.body.size(), call.principal, c)) return call.fail(r);
  std::string cid = call.cid(), partner = call.partner(), prefix = call.prefix;
  auto precheck = [cid, partner, prefix](Ledger& l) -> std::optional<HttpResponse> {
    if (!owned_customer(l.state(), partner, cid)) return not_found("customer", strip(cid, prefix));
    return std::nullopt;
  };
  write(call, {c}, precheck, [cid, prefix](Ledger& l, const Ledger::GroupResult&) {
    const Customer* customer = l.state().catalog().customer(cid);
    return json_response(200, unscoped_json(customer_json(customer->def), prefix));
  });
}

// ---- orders ----

void Api::place_order(Call& call) {
  Json body = std::move(call.body);
  if (auto r = only_fields(body, {"date", "line_items"}, "an order")) return call.fail(r);
  if (!body.contains("date")) body["date"] = call.today.iso();
  auto items = body.find("line_items");
  if (items == body.end() || !items->is_array() || items->empty() || items->size() > 100)
    return call.fail(bad("line_items must be a list of 1 to 100 line items"));
  const std::string cid = call.cid(), prefix = call.prefix, partner = call.partner();
  std::vector<Command> commands;
  for (size_t i = 0; i < items->size(); ++i) {
    Json line = std::move((*items)[i]);
    auto at = [&](std::optional<HttpResponse> r) {
      Json j = Json::parse(r->body);
      j["line_index"] = i;
      r->body = j.dump();
      return r;
    };
    if (!line.is_object()) return call.fail(at(bad("a line item must be a JSON object")));
    if (auto r = only_fields(line,
                             {"subscription_id", "offer_id", "seats", "billing_frequency",
                              "parent_subscription_id", "trial"},
                             "a line item"))
      return call.fail(at(r));
    if (!line.contains("subscription_id"))
      line["subscription_id"] = call.request.request_id + "-" + std::to_string(i);
    bool trial = false;
    if (auto t = line.find("trial"); t != line.end()) {
      if (!t->is_boolean()) return call.fail(at(bad("trial must be true or false")));
      trial = t->get<bool>();
      line.erase(t);
    }
    if (trial && (line.contains("seats") || line.contains("billing_frequency") ||
                  line.contains("parent_subscription_id")))
      return call.fail(at(bad("a trial line takes no seats (trials have 25), billing_frequency "
                              "or parent_subscription_id")));
    for (const char* f : {"subscription_id", "parent_subscription_id"})
      if (auto r = scope_member(line, f, prefix)) return call.fail(at(r));
    line["cmd"] = trial ? "start_trial" : "create_subscription";
    line["request_id"] = call.rid();
    line["customer_id"] = cid;
    line["date"] = body["date"];
    Command c;
    if (auto r = to_command(line, call.request.body.size(), call.principal, c))
      return call.fail(at(r));
    commands.push_back(std::move(c));
  }
  std::string order_id = call.request.request_id;
  auto precheck = [cid, partner, prefix](Ledger& l) -> std::optional<HttpResponse> {
    if (!owned_customer(l.state(), partner, cid)) return not_found("customer", strip(cid, prefix));
    return std::nullopt;
  };
  auto render = [order_id, cid, prefix, commands](Ledger& l, const Ledger::GroupResult&) {
    std::vector<OrderLine> lines;
    for (const auto& c : commands) {
      const Subscription* s = l.state().subscription(c.subscription_id);
      bool trial = c.type == CommandType::kStartTrial;
      lines.push_back(OrderLine{c.subscription_id, c.offer_id, c.parent_subscription_id, s->seats,
                                trial ? std::nullopt : std::optional(s->frequency), trial});
    }
    HttpResponse r =
        json_response(201, order_json(order_id, cid, commands.front().date, lines, prefix));
    r.headers.emplace_back("Location",
                           "/v1/customers/" + strip(cid, prefix) + "/orders/" + order_id);
    return r;
  };
  write(call, std::move(commands), precheck, render, /*line_indexed=*/true);
}

namespace {

// The customer's orders (the ledger groups them), or the answer when they cannot be read.
std::optional<HttpResponse> orders_of_customer(const Store& store, const Customer& c,
                                               std::vector<Order>& out, double& cost) {
  cost = static_cast<double>(c.subscription_ids.size()) / Api::kRowsPerToken;
  auto orders = orders_of(store, c.subscription_ids);
  if (!orders.ok()) return error_response(503, "UNAVAILABLE", std::string(orders.status().message()));
  out = std::move(*orders);
  return std::nullopt;
}

}  // namespace

void Api::list_orders(Call& call) {
  read(call, [&call](ReadView& v) {
    const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
    if (!c) return not_found("customer", call.param("cid"));
    std::vector<Order> orders;
    if (auto r = orders_of_customer(v.store(), *c, orders, v.cost)) return *r;
    return page_by_index(
        orders.size(),
        [&](size_t i) {
          return order_json(strip(orders[i].id, call.prefix), call.cid(), orders[i].date,
                            orders[i].lines);
        },
        call.limit, call.offset, call.path, call.query, call.prefix);
  });
}

void Api::get_order(Call& call) {
  read(call, [&call](ReadView& v) {
    const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
    if (!c) return not_found("customer", call.param("cid"));
    std::vector<Order> orders;
    if (auto r = orders_of_customer(v.store(), *c, orders, v.cost)) return *r;
    const std::string oid = call.param("oid");
    for (const Order& o : orders)
      if (o.id == call.scoped(oid))
        return json_response(200, order_json(oid, call.cid(), o.date, o.lines, call.prefix));
    return not_found("order", oid);
  });
}

// ---- subscriptions ----

void Api::list_subscriptions(Call& call) {
  read(call, [&call](ReadView& v) {
    const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
    if (!c) return not_found("customer", call.param("cid"));
    v.cost = static_cast<double>(std::min<size_t>(c->subscription_ids.size(), call.limit)) /
             kRowsPerToken;
    return page_by_index(
        c->subscription_ids.size(),
        [&](size_t i) { return subscription_json(*v.state().subscription(c->subscription_ids[i])); },
        call.limit, call.offset, call.path, call.query, call.prefix);
  });
}

void Api::get_subscription(Call& call) {
  std::optional<Date> as_of;
  if (auto r = parse_date_param(call.query, "as_of", as_of, false)) return call.fail(r);
  read(call, [&call, as_of](ReadView& v) {
    const std::string sid = call.sid();
    if (!owned_customer(v.state(), call.partner(), call.cid()) ||
        !owned_subscription(v.state(), call.cid(), sid))
      return not_found("subscription", call.param("sid"));
    if (!as_of) return subscription_response(v.state(), sid, call.prefix);
    std::string error;
    auto sub =
        subscription_as_of(v.store(), v.state().catalog(), sid, *as_of, error, &v.state());
    v.cost = 1;
    if (!error.empty()) return error_response(500, "INTERNAL", error);
    if (!sub)
      return error_response(404, "NOT_FOUND", "subscription '" + call.param("sid") +
                                                  "' did not exist yet on " + as_of->iso());
    return json_response(200, unscoped_json(subscription_json(*sub, *as_of), call.prefix));
  }, false, as_of ? ReadKind::kReadsStore : ReadKind::kInMemory);
}

bool Api::subscription_command(Call& call, const char* cmd, Json fields,
                               std::vector<Command>& out) {
  fields["cmd"] = cmd;
  fields["request_id"] = call.rid();
  fields["subscription_id"] = call.sid();
  Command c;
  if (auto r = to_command(fields, call.request.body.size(), call.principal, c)) {
    call.fail(r);
    return false;
  }
  out.push_back(std::move(c));
  return true;
}

namespace {

std::function<std::optional<HttpResponse>(Ledger&)> subscription_owned(std::string partner,
                                                                       std::string cid,
                                                                       std::string sid,
                                                                       std::string prefix) {
  return [=](Ledger& l) -> std::optional<HttpResponse> {
    if (!owned_customer(l.state(), partner, cid) || !owned_subscription(l.state(), cid, sid))
      return not_found("subscription", strip(sid, prefix));
    return std::nullopt;
  };
}

}  // namespace

void Api::patch_subscription(Call& call) {
  Json body = std::move(call.body);
  if (auto r = only_fields(body, {"status", "seats", "auto_renew", "date"}, "a subscription patch"))
    return call.fail(r);
  Json date = body.contains("date") ? body["date"] : Json(call.today.iso());
  std::vector<Command> commands;
  std::string status;
  if (body.contains("status")) {
    if (body["status"] == "active")
      status = "active";
    else if (body["status"] == "cancelled")
      status = "cancelled";
    else
      return call.fail(bad("status must be \"active\" (reactivate) or \"cancelled\" (cancel)"));
  }
  // SERVER.md's order: reactivate, seats, auto_renew, cancel.
  if (status == "active" && !subscription_command(call, "reactivate", {{"date", date}}, commands))
    return;
  if (body.contains("seats") &&
      !subscription_command(call, "change_seats", {{"seats", body["seats"]}, {"date", date}},
                            commands))
    return;
  if (body.contains("auto_renew") &&
      !subscription_command(call, "set_auto_renew",
                            {{"enabled", body["auto_renew"]}, {"date", date}}, commands))
    return;
  if (status == "cancelled" && !subscription_command(call, "cancel", {{"date", date}}, commands))
    return;
  if (commands.empty()) return call.fail(bad("a patch needs status, seats or auto_renew"));
  auto owned = subscription_owned(call.partner(), call.cid(), call.sid(), call.prefix);
  std::string if_match = call.request.if_match, sid = call.sid(), prefix = call.prefix;
  auto precheck = [owned, if_match, sid](Ledger& l) -> std::optional<HttpResponse> {
    if (auto r = owned(l)) return r;
    if (if_match.empty()) return std::nullopt;
    std::string etag = etag_of(l.state(), sid);
    if (!if_match_matches(if_match, etag))
      return error_response(412, "PRECONDITION_FAILED",
                            "If-Match " + if_match + " does not match the subscription's ETag " +
                                etag + " (a weak tag never matches); GET it again");
    return std::nullopt;
  };
  write(call, std::move(commands), precheck, [sid, prefix](Ledger& l, const Ledger::GroupResult&) {
    return subscription_response(l.state(), sid, prefix);
  });
}

void Api::list_addons(Call& call) {
  read(call, [&call](ReadView& v) {
    const std::string sid = call.sid();
    const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
    if (!c || !owned_subscription(v.state(), call.cid(), sid))
      return not_found("subscription", call.param("sid"));
    std::vector<std::string> items;
    for (const auto& id : c->subscription_ids) {
      const Subscription* s = v.state().subscription(id);
      if (s->parent_id == sid) items.push_back(subscription_json(*s));
    }
    v.cost = static_cast<double>(c->subscription_ids.size()) / kEntriesPerToken;
    return page(items, call.limit, call.offset, call.path, call.query, call.prefix);
  });
}

void Api::list_conversions(Call& call) {
  read(call, [&call](ReadView& v) {
    const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
    const Subscription* s = c ? owned_subscription(v.state(), call.cid(), call.sid()) : nullptr;
    if (!s) return not_found("subscription", call.param("sid"));
    std::vector<std::string> items;
    if (s->status == Status::kTrial) {
      // A trial has no currency of its own yet: it converts in its customer's.
      const std::string& currency = c->def.currency;
      auto price = v.state().catalog().price_at(s->offer_id, currency, call.today);
      for (Frequency f : {Frequency::kMonthly, Frequency::kAnnual})
        items.push_back(Json{{"billing_frequency", to_string(f)},
                             {"offer_id", s->offer_id},
                             {"unit_price", price ? Json(format_price(*price)) : Json(nullptr)},
                             {"currency", currency}}
                            .dump());
    }
    return page(items, call.limit, call.offset, call.path, call.query, call.prefix);
  });
}

void Api::convert_trial(Call& call) {
  single_subscription_command(call, "convert_trial", {"billing_frequency", "date"},
                              "a conversion");
}

void Api::renew(Call& call) { single_subscription_command(call, "renew", {"date"}, "a renewal"); }

void Api::single_subscription_command(Call& call, const char* cmd,
                                      std::initializer_list<const char*> fields,
                                      const char* what) {
  Json body = std::move(call.body);
  if (auto r = only_fields(body, fields, what)) return call.fail(r);
  if (!body.contains("date")) body["date"] = call.today.iso();
  std::vector<Command> commands;
  if (!subscription_command(call, cmd, body, commands)) return;
  std::string sid = call.sid(), prefix = call.prefix;
  write(call, std::move(commands),
        subscription_owned(call.partner(), call.cid(), sid, prefix),
        [sid, prefix](Ledger& l, const Ledger::GroupResult&) {
          return subscription_response(l.state(), sid, prefix);
        });
}

// ---- agreements ----

void Api::accept_agreement(Call& call) {
  Json body = std::move(call.body);
  if (auto r = only_fields(body, {"customer_id", "agreement_type", "date_agreed", "contact"},
                           "an agreement"))
    return call.fail(r);
  if (body.contains("customer_id") && body["customer_id"] != call.param("cid"))
    return call.fail(bad("customer_id in the body must be the customer of the path, or absent"));
  const std::string cid = call.cid(), partner = call.partner(), prefix = call.prefix;
  body["cmd"] = "accept_agreement";
  body["request_id"] = call.rid();
  body["customer_id"] = cid;
  Command c;
  if (auto r = to_command(body, call.request.body.size(), call.principal, c)) return call.fail(r);
  std::string type = c.agreement_type;
  auto precheck = [cid, partner, prefix](Ledger& l) -> std::optional<HttpResponse> {
    if (!owned_customer(l.state(), partner, cid)) return not_found("customer", strip(cid, prefix));
    return std::nullopt;
  };
  write(call, {c}, precheck, [cid, type, prefix, partner](Ledger& l, const Ledger::GroupResult&) {
    const Customer* customer = l.state().catalog().customer(cid);
    const Agreement* a = customer->agreement(type);
    HttpResponse r = json_response(
        201, unscoped_json(agreement_view(*customer, *a, true, partner).dump(), prefix));
    r.headers.emplace_back("Location", "/v1/customers/" + strip(cid, prefix) + "/agreements");
    return r;
  });
}

void Api::list_agreements(Call& call) {
  read(call, [&call](ReadView& v) {
    const Customer* c = owned_customer(v.state(), call.partner(), call.cid());
    if (!c) return not_found("customer", call.param("cid"));
    std::vector<std::string> items;
    for (const auto& a : c->agreements)
      items.push_back(agreement_view(*c, a, true, call.partner()).dump());
    return page(items, call.limit, call.offset, call.path, call.query, call.prefix);
  });
}

// ---- invoices and reports ----

namespace {

// The invoices a listing selects: the caller's (the operator: every partner's), a customer's, a
// date range. nullopt, or the 400 to answer.
std::optional<HttpResponse> invoice_selection(const std::map<std::string, std::string>& query,
                                              const std::string& partner,
                                              const std::string& prefix, bool dates_required,
                                              InvoiceSelection& out) {
  std::optional<Date> from, to;
  if (auto r = parse_date_param(query, "from", from, dates_required)) return r;
  if (auto r = parse_date_param(query, "to", to, dates_required)) return r;
  out = InvoiceSelection{"", partner, from.value_or(Date()), to.value_or(Date())};
  if (auto it = query.find("customer_id"); it != query.end()) {
    if (!prefix.empty() &&
        (!id_error("customer_id", it->second).empty() || it->second.find(':') != std::string::npos))
      return bad("customer_id is not one of your ids");
    out.customer_id = prefix + it->second;
  }
  return std::nullopt;
}

}  // namespace

void Api::list_invoices(Call& call) {
  InvoiceSelection selection;
  if (auto r = invoice_selection(call.query, call.partner(), call.prefix, false, selection))
    return call.fail(r);
  read(call, [&call, selection](ReadView& v) {
    // The index counts and pages; only the page's invoices are read.
    std::vector<ActivityIndex::InvoiceRef> refs;
    size_t total = v.index.invoices(selection, static_cast<size_t>(call.offset),
                                    static_cast<size_t>(call.limit), refs);
    std::vector<std::string> shown;
    for (const auto& ref : refs) {
      auto issued = issued_invoice(v.store(), ref.invoice_id);
      if (!issued.ok())
        return error_response(503, "UNAVAILABLE", std::string(issued.status().message()));
      shown.push_back(in_partner_positions(invoice_json(issued->invoice), v.index, call.partner()));
    }
    v.cost = static_cast<double>(refs.size()) / kRowsPerToken;
    return page_of(shown, total, call.limit, call.offset, call.path, call.query, call.prefix);
  }, /*uses_index=*/true);
}

namespace {

// The caller's issued invoice `iid` (a partner's own id, the operator's scoped one), or the 404.
absl::StatusOr<IssuedInvoice> caller_invoice(const Store& store, const std::string& iid,
                                             const std::string& partner) {
  auto issued = issued_invoice(store, iid);
  if (!issued.ok()) return issued.status();
  if (!partner.empty() && (issued->invoice.partner_id != partner ||
                           !issued->invoice.customer_id.starts_with(partner + ":")))
    return absl::NotFoundError("not the caller's");
  return issued;
}

}  // namespace

void Api::get_invoice(Call& call) {
  read(call, [&call](ReadView& v) {
    auto issued = caller_invoice(v.store(), call.scoped(call.param("iid")), call.partner());
    if (absl::IsNotFound(issued.status())) return not_found("invoice", call.param("iid"));
    if (!issued.ok())
      return error_response(503, "UNAVAILABLE", std::string(issued.status().message()));
    v.cost = 1 / kRowsPerToken;
    return json_response(200, unscoped_json(in_partner_positions(invoice_json(issued->invoice),
                                                                 v.index, call.partner()),
                                            call.prefix));
  }, /*uses_index=*/true);
}

void Api::invoice_lines(Call& call) {
  read(call, [&call](ReadView& v) {
    auto issued = caller_invoice(v.store(), call.scoped(call.param("iid")), call.partner());
    if (absl::IsNotFound(issued.status())) return not_found("invoice", call.param("iid"));
    if (!issued.ok())
      return error_response(503, "UNAVAILABLE", std::string(issued.status().message()));
    auto explained = explain_lines(v.store(), *issued);
    if (!explained.ok())
      return error_response(503, "UNAVAILABLE", std::string(explained.status().message()));
    v.cost = static_cast<double>(explained->size() + 1) / kRowsPerToken;
    for (std::string& line : *explained) line = in_partner_positions(line, v.index, call.partner());
    return page(*explained, call.limit, call.offset, call.path, call.query, call.prefix);
  }, /*uses_index=*/true);
}

void Api::reconciliation(Call& call) {
  InvoiceSelection selection;
  if (auto r = invoice_selection(call.query, call.partner(), call.prefix, true, selection))
    return call.fail(r);
  read(call, [this, &call, selection](ReadView&) {
    // Streamed: the header now, then a few invoices' rows at a time, each piece made only once the
    // one before it was written (memory does not grow with the answer or a slow reader).
    HttpResponse r = json_response(200, reconciliation_header());
    r.content_type = "text/csv";
    struct Cursor {
      std::optional<std::pair<Date, std::string>> after;
    };
    auto cursor = std::make_shared<Cursor>();
    std::string partner = call.partner(), prefix = call.prefix;
    bool charged = !call.principal.operator_key();
    r.stream = [this, selection, cursor, partner, prefix,
                charged](std::string& out) -> absl::StatusOr<bool> {
      std::shared_ptr<Generation> g = host_.current();
      if (!g->ledger) return absl::UnavailableError(g->why_read_only);
      auto refs = host_.index().invoices_after(selection, cursor->after, kCsvInvoicesPerPiece);
      if (refs.empty()) return false;
      for (const auto& ref : refs) {
        auto issued = issued_invoice(g->ledger->store(), ref.invoice_id);
        if (!issued.ok()) return issued.status();
        // The caller's ids as it knows them, in the same rows the CLI writes.
        Invoice inv = std::move(issued->invoice);
        inv.invoice_id = strip(inv.invoice_id, prefix);
        inv.customer_id = strip(inv.customer_id, prefix);
        for (auto& line : inv.lines) {
          line.subscription_id = strip(line.subscription_id, prefix);
          if (!partner.empty())  // its position in the partner's activity (class 9)
            line.event_seq = host_.index().position_of(partner, line.event_seq).value_or(0);
        }
        append_reconciliation_rows(out, inv);
      }
      cursor->after = std::make_pair(refs.back().date, refs.back().invoice_id);
      if (charged)
        reads_.charge(partner, static_cast<double>(refs.size()) / kRowsPerToken,
                      TokenBuckets::Clock::now());
      return true;
    };
    return r;
  }, /*uses_index=*/true);
}

void Api::list_renewals(Call& call) {
  std::optional<Date> from, to;
  if (auto r = parse_date_param(call.query, "from", from, true)) return call.fail(r);
  if (auto r = parse_date_param(call.query, "to", to, true)) return call.fail(r);
  read(call, [&call, from, to](ReadView& v) {
    std::vector<std::string> items;
    if (call.principal.operator_key()) {
      items = renewal_lines(v.state(), *from, *to);
      v.cost = static_cast<double>(v.state().subscription_ids().size()) / kEntriesPerToken;
    } else {
      // Only the partner's own subscriptions are looked at: the work grows with them.
      std::vector<std::string> mine;
      if (const Partner* p = v.state().catalog().partner(call.partner()))
        for (const auto& id : p->customer_ids)
          if (const Customer* c = owned_customer(v.state(), call.partner(), id))
            mine.insert(mine.end(), c->subscription_ids.begin(), c->subscription_ids.end());
      items = renewal_lines(v.state(), *from, *to, mine);
      v.cost = static_cast<double>(mine.size()) / kEntriesPerToken;
    }
    v.cost += static_cast<double>(std::min<size_t>(items.size(), call.limit)) / kRowsPerToken;
    for (std::string& item : items) item = in_partner_positions(item, v.index, call.partner());
    return page(items, call.limit, call.offset, call.path, call.query, call.prefix);
  }, /*uses_index=*/true);
}

void Api::audit_records(Call& call) {
  uint64_t after = 0;
  if (auto it = call.query.find("after_seq"); it != call.query.end()) {
    const std::string& s = it->second;
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), ::isdigit))
      return call.fail(bad("after_seq must be a whole number from 0"));
    after = std::stoull(s);
  }
  std::optional<size_t> type;
  if (auto it = call.query.find("type"); it != call.query.end()) {
    type = event_type_index(it->second);
    if (!type) {
      std::string names;
      for (const auto& n : event_type_names()) names += (names.empty() ? "" : ", ") + n;
      return call.fail(bad("type must be an event type: " + names));
    }
  }
  read(call, [&call, after, type](ReadView& v) {
    // The partner's own activity through the index: the work grows with the page, whatever the
    // filter and whatever other partners write.
    auto activity = v.index.activity(call.partner(), after, type, static_cast<size_t>(call.limit));
    Json items = Json::array();
    EventDecoder decoder;
    Event e;
    for (const auto& a : activity.items) {
      auto bytes = v.store().event_bytes(a.seq);
      if (!bytes.ok())
        return error_response(503, "UNAVAILABLE", std::string(bytes.status().message()));
      if (absl::Status bad = decoder.decode(*bytes, e); !bad.ok())
        return error_response(500, "INTERNAL", std::string(at_event(a.seq, bad).message()));
      items.push_back(Json::parse(audit_view(e, call.partner(), a.position)));
    }
    v.cost = static_cast<double>(activity.items.size()) / kRowsPerToken;
    Json j;
    j["items"] = std::move(items);
    Json links = Json::object();
    if (activity.more) {
      auto q = call.query;
      q["after_seq"] = std::to_string(activity.items.back().position);
      q["limit"] = std::to_string(call.limit);
      links["next"] = call.path + query_string(q);
    }
    j["links"] = std::move(links);
    return json_response(200, j.dump());
  }, /*uses_index=*/true);
}

// ---- operator ----

void Api::operator_command(Call& call) {
  ParsedCommand parsed = parse_command(call.request.body);
  std::string actor = std::string(kKeyActorPrefix) + call.principal.key_id;
  run(call, [parsed, actor](Ledger& l) {
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

void Api::billing_run(Call& call) {
  const Json& body = call.body;
  if (auto r = only_fields(body, {"through", "dry_run"}, "a billing run")) return call.fail(r);
  if (body.contains("dry_run") && !body["dry_run"].is_boolean())
    return call.fail(bad("dry_run must be true or false"));
  Json cmd{{"cmd", "run_billing"}, {"request_id", call.request.request_id}};
  if (body.contains("through")) cmd["through"] = body["through"];
  Command c;
  if (auto r = to_command(cmd, call.request.body.size(), call.principal, c)) return call.fail(r);
  if (body.value("dry_run", false)) return dry_run(call, std::move(c));
  write(call, {c}, nullptr, [](Ledger& l, const Ledger::GroupResult& g) {
    if (g.results.front().duplicate) return json_response(200, g.results.front().to_json());
    return json_response(200, l.last_billing().to_json());
  });
}

}  // namespace subledger::server
